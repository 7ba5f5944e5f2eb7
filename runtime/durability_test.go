package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/runtime"
)

// TestTopLevelNodeDurableBeforeTheNext: finished top-level nodes were journalled
// with no barrier, so a kill re-ran up to 607 of a fast loop. Each top-level
// action node's record is now on disk before the next node starts: the executor
// finds the previous step's record in the file every time it is called.
func TestTopLevelNodeDurableBeforeTheNext(t *testing.T) {
	reg := testRegistry(t)
	wf := loadArchive(t, reg, "resume", "loop.yaml")
	path := filepath.Join(t.TempDir(), "journal.log")
	j, err := journal.Open(path, time.Hour) // only barriers write
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	local := reg.Local(action.Env{Dir: wf.Dir})
	step := 0
	check := action.ExecutorFunc(func(ctx context.Context, call *action.Call) (map[string]any, error) {
		step++
		if step > 1 {
			text, _ := os.ReadFile(path)
			if want := fmt.Sprintf(`"n":"@%d:step"`, step-1); !strings.Contains(string(text), want) {
				return nil, fmt.Errorf("step %d started before step %d was on disk", step, step-1)
			}
		}
		return local.Execute(ctx, call)
	})
	res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Journal: j, Executor: check})
	if err != nil {
		t.Fatal(err)
	}
	if res.Output["i"] != 20 {
		t.Errorf("output %v", res.Output)
	}
}
