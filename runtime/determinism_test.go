package runtime_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
)

// jitter sleeps a pseudo-random 0-3ms, different for every item and every run, so
// that items finish in a different order each time.
func jitter() *action.Spec {
	return testAction("test.jitter", []action.Param{{Name: "value", Type: action.Any}},
		[]action.Field{{Name: "value"}},
		func(ctx context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
			h := fnv.New64a()
			fmt.Fprint(h, c.Item, time.Now().UnixNano())
			d := time.Duration(rand.New(rand.NewPCG(h.Sum64(), 1)).IntN(3000)) * time.Microsecond
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return map[string]any{"value": c.Params["value"]}, nil
		})
}

// TestDeterministicMerge runs a nested fan-out whose items finish in random order
// and checks the final state is byte-identical at any concurrency: updates merge in
// item order (parent, then child), never in completion order.
func TestDeterministicMerge(t *testing.T) {
	reg := testRegistry(t, jitter())
	wf := loadArchive(t, reg, "determinism", "deterministic-merge.yaml")
	want := ""
	for _, workers := range []int{1, 3, 64, 1, 64} {
		got := runJSON(t, wf, nil, runtime.Options{MaxWorkers: workers})
		if want == "" {
			want = got
			continue
		}
		if got != want {
			t.Fatalf("output at --max-workers %d differs:\n got %s\nwant %s", workers, got, want)
		}
	}
	// The merged order is the item order, whatever the timing.
	const log = `"log":["0.0=1","0.1=2","0.2=3","group 0 done","1.0=4","1.1=5","group 1 done","2.0=6","2.1=7","2.2=8","2.3=9","group 2 done","3.0=10","group 3 done","4.0=11","4.1=12","group 4 done","all 12"]`
	if !contains(want, log) || !contains(want, `"order":[1,2,3,4,5,6,7,8,9,10,11,12]`) ||
		!contains(want, `"total":117`) || !contains(want, `"seen":[1,2,3,0]`) ||
		!contains(want, `"text":"1,2,3,4,5,6,7,8,9,10,11,12,"`) || !contains(want, `"lowest":1`) ||
		!contains(want, `"highest":12`) || !contains(want, `"byitem":{"0":10,"1":11,"2":12,"3":8,"4":9}`) {
		t.Errorf("unexpected state: %s", want)
	}
	// weighted: fold of current*2+update over 1..12 from 0.
	w := 0
	for i := 1; i <= 12; i++ {
		w = w*2 + i
	}
	if !contains(want, fmt.Sprintf(`"weighted":%d`, w)) {
		t.Errorf("weighted: want %d in %s", w, want)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}
