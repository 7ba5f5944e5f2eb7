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
		src    string
		inputs map[string]any
		want   string
	}{
		{
			name: "items read the snapshot taken when the map started",
			src: `version: 1
state:
  n: {type: integer, default: 10}
  seen: {type: array, reducer: add}
nodes:
  fan:
    map: {over: "[1, 2, 3]", to: work}
  work:
    update:
      n: "${{ state.n + input.item }}"
      seen: "${{ [state.n] }}"
`,
			want: `{"n":13,"seen":[10,10,10]}`,
		},
		{
			name: "top-level next sees the node's own update",
			src: `version: 1
state:
  count: {type: integer, reducer: sum}
  trail: {type: array, reducer: append}
nodes:
  step:
    update: {count: 1, trail: "${{ state.count }}"}
    next:
      - when: state.count < 3
        to: step
      - to: finish
  finish:
    update: {trail: done}
`,
			want: `{"count":3,"trail":[0,1,2,"done"]}`,
		},
		{
			name: "a map's next runs once, after every item including nested maps",
			src: `version: 1
state:
  events: {type: array, reducer: add}
nodes:
  outer:
    map: {over: "[[1, 2], [3]]", as: xs, to: inner, with: {xs: "${{ xs }}"}}
    next: barrier
  inner:
    map: {over: input.xs, as: x, to: leaf}
    next: inner_done
  leaf:
    update: {events: "${{ ['leaf ' + string(input.x)] }}"}
  inner_done:
    update: {events: "${{ ['inner done'] }}"}
  barrier:
    update: {events: "${{ ['barrier after ' + string(len(state.events)) + ' events'] }}"}
`,
			want: `{"events":["leaf 1","leaf 2","inner done","leaf 3","inner done","barrier after 5 events"]}`,
		},
		{
			name: "batch, batch by bytes and chunks",
			src: `version: 1
state:
  batches: {type: array, reducer: append}
  bytes: {type: array, reducer: append}
  chunks: {type: array, reducer: append}
nodes:
  by_count:
    map: {over: "1..7", batch: 3, to: b1}
    next: by_bytes
  b1:
    update: {batches: "${{ input.item }}"}
  by_bytes:
    map: {over: "['aaaa', 'bb', 'cc', 'dddddddddd', 'e']", batch: {max_items: 5, max_bytes: 14}, to: b2}
    next: by_chunks
  b2:
    update: {bytes: "${{ input.item }}"}
  by_chunks:
    map: {over: "1..7", chunks: 3, to: b3}
  b3:
    update: {chunks: "${{ input.item }}"}
`,
			want: `{"batches":[[1,2,3],[4,5,6],[7]],"bytes":[["aaaa","bb"],["cc"],["dddddddddd"],["e"]],"chunks":[[1,2,3],[4,5],[6,7]]}`,
		},
		{
			name: "route picks the first matching case; END drops an item",
			src: `version: 1
state:
  out: {type: array, reducer: add}
nodes:
  fan:
    map:
      over: "[1, 5, 12, 30]"
      as: n
      route:
        - {when: n > 20, to: END}
        - {when: n > 10, to: big}
        - to: small
  big:
    update: {out: "${{ ['big ' + string(input.n)] }}"}
  small:
    update: {out: "${{ ['small ' + string(input.n)] }}"}
`,
			want: `{"out":["small 1","small 5","big 12"]}`,
		},
		{
			name: "set passes values along an item's chain; index and item reach workers through with",
			src: `version: 1
state:
  out: {type: array, reducer: add}
nodes:
  fan:
    map: {over: "['a', 'b']", as: letter, to: first}
  first:
    set: {upper: "${{ upper(input.letter) }}"}
    next: second
  second:
    update: {out: "${{ [string(input.index) + ':' + input.letter + input.upper] }}"}
`,
			want: `{"out":["0:aA","1:bB"]}`,
		},
		{
			name: "parallel branches read one snapshot and merge in branch order",
			src: `version: 1
state:
  n: {type: integer, default: 1}
  out: {type: array, reducer: add}
nodes:
  both:
    parallel: [left, right]
    next: after
  left:
    update: {out: "${{ ['left saw ' + string(state.n)] }}", n: 10}
    next: left2
  left2:
    update: {out: "${{ ['left2'] }}"}
  right:
    update: {out: "${{ ['right saw ' + string(state.n)] }}", n: 20}
  after:
    update: {out: "${{ ['n is ' + string(state.n)] }}"}
`,
			want: `{"n":20,"out":["left saw 1","left2","right saw 1","n is 20"]}`,
		},
		{
			name: "expression-built values are normalised to JSON types",
			src: `version: 1
state:
  pairs: {type: object}
  groups: {type: object}
  range: {type: array}
  ratio: {type: number}
output: [pairs, groups, range, ratio]
nodes:
  only:
    update:
      pairs: "${{ fromPairs([['a', 1], ['b', 2]]) }}"
      groups: "${{ groupBy(1..6, # % 2 == 0 ? 'even' : 'odd') }}"
      range: "${{ 1..3 }}"
      ratio: "${{ 7 / 2 }}"
`,
			want: `{"groups":{"even":[2,4,6],"odd":[1,3,5]},"pairs":{"a":1,"b":2},"range":[1,2,3],"ratio":3.5}`,
		},
		{
			name: "inputs: integers stay integers; env() reads the environment with a default",
			src: `version: 1
state:
  n: {type: integer, required: true}
  odd: {type: boolean}
  workers: {type: integer}
  who: {type: string}
nodes:
  only:
    update:
      odd: "${{ state.n % 2 == 1 }}"
      workers: "${{ int(env('FLOWRUN_TEST_WORKERS', '5')) }}"
      who: "${{ env('FLOWRUN_TEST_UNSET', 'nobody') }} via ${{ run.name }}"
`,
			inputs: map[string]any{"n": 7},
			want:   `{"n":7,"odd":true,"who":"nobody via workflow","workers":3}`,
		},
		{
			name: "a workflow node runs a sub-workflow; its output fields are the result",
			src: `version: 1
state:
  counts: {type: array, reducer: add}
nodes:
  fan:
    map: {over: "['one two', 'three four five']", as: text, to: count}
  count:
    workflow: ./lib/count.yaml
    with: {text: "${{ input.text }}"}
    update: {counts: "${{ [output.words] }}"}
`,
			want: `{"counts":[2,3]}`,
		},
		{
			name: "cycles run until their condition ends them",
			src: `version: 1
state:
  i: {type: integer, reducer: sum}
nodes:
  loop:
    update: {i: 1}
    next:
      - {when: state.i < 50, to: loop}
`,
			want: `{"i":50}`,
		},
	}
	os.Setenv("FLOWRUN_TEST_WORKERS", "3")
	defer os.Unsetenv("FLOWRUN_TEST_WORKERS")
	reg := testRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf := load(t, reg, map[string]string{"workflow.yaml": tt.src, "lib/count.yaml": countWorkflow})
			for _, workers := range []int{1, 8} {
				if got := runJSON(t, wf, tt.inputs, runtime.Options{MaxWorkers: workers}); got != tt.want {
					t.Errorf("workers %d:\n got %s\nwant %s", workers, got, tt.want)
				}
			}
		})
	}
}
