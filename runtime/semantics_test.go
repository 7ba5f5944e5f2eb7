package runtime_test

import (
	"os"
	"testing"

	"github.com/flowrun/flowrun/runtime"
)

// TestSemantics runs small workflows and compares their whole output.
func TestSemantics(t *testing.T) {
	tests := []struct {
		name   string
		file   string // in testdata/semantics.txtar, beside lib/count.yaml
		inputs map[string]any
		want   string
	}{
		{
			name: "items read the snapshot taken when the map started",
			file: "items-read-the-snapshot.yaml",
			want: `{"n":13,"seen":[10,10,10]}`,
		},
		{
			name: "top-level next sees the node's own update",
			file: "top-level-next-sees-own-update.yaml",
			want: `{"count":3,"trail":[0,1,2,"done"]}`,
		},
		{
			name: "a map's next runs once, after every item including nested maps",
			file: "map-next-runs-once.yaml",
			want: `{"events":["leaf 1","leaf 2","inner done","leaf 3","inner done","barrier after 5 events"]}`,
		},
		{
			name: "batch, batch by bytes and chunks",
			file: "batch-and-chunks.yaml",
			want: `{"batches":[[1,2,3],[4,5,6],[7]],"bytes":[["aaaa","bb"],["cc"],["dddddddddd"],["e"]],"chunks":[[1,2,3],[4,5],[6,7]]}`,
		},
		{
			name: "route picks the first matching case; END drops an item",
			file: "route.yaml",
			want: `{"out":["small 1","small 5","big 12"]}`,
		},
		{
			name: "set passes values along an item's chain; index and item reach workers through with",
			file: "set-along-a-chain.yaml",
			want: `{"out":["0:aA","1:bB"]}`,
		},
		{
			name: "parallel branches read one snapshot and merge in branch order",
			file: "parallel-branches.yaml",
			want: `{"n":20,"out":["left saw 1","left2","right saw 1","n is 20"]}`,
		},
		{
			name: "expression-built values are normalised to JSON types",
			file: "json-types.yaml",
			want: `{"groups":{"even":[2,4,6],"odd":[1,3,5]},"pairs":{"a":1,"b":2},"range":[1,2,3],"ratio":3.5}`,
		},
		{
			name:   "inputs: integers stay integers; env() reads the environment with a default",
			file:   "inputs-and-env.yaml",
			inputs: map[string]any{"n": 7},
			want:   `{"n":7,"odd":true,"who":"nobody via workflow","workers":3}`,
		},
		{
			name: "a workflow node runs a sub-workflow; its output fields are the result",
			file: "sub-workflow.yaml",
			want: `{"counts":[2,3]}`,
		},
		{
			name: "cycles run until their condition ends them",
			file: "cycles.yaml",
			want: `{"i":50}`,
		},
	}
	os.Setenv("FLOWRUN_TEST_WORKERS", "3")
	defer os.Unsetenv("FLOWRUN_TEST_WORKERS")
	reg := testRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf := loadArchive(t, reg, "semantics", tt.file)
			for _, workers := range []int{1, 8} {
				if got := runJSON(t, wf, tt.inputs, runtime.Options{MaxWorkers: workers}); got != tt.want {
					t.Errorf("workers %d:\n got %s\nwant %s", workers, got, tt.want)
				}
			}
		})
	}
}
