package runtime_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
)

// tracker counts actions in flight and remembers the most seen at once.
type tracker struct {
	now, peak  atomic.Int64
	goroutines atomic.Int64 // the most goroutines seen by an action
	calls      atomic.Int64
}

func (tr *tracker) action() *action.Spec {
	return testAction("test.track", []action.Param{{Name: "ms", Type: action.Integer, Default: 10}}, nil,
		func(ctx context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
			tr.calls.Add(1)
			n := tr.now.Add(1)
			defer tr.now.Add(-1)
			for p := tr.peak.Load(); n > p && !tr.peak.CompareAndSwap(p, n); p = tr.peak.Load() {
			}
			if g := int64(goruntime.NumGoroutine()); g > tr.goroutines.Load() {
				tr.goroutines.Store(g)
			}
			ms := c.Params.Int("ms")
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return map[string]any{}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
}

func TestConcurrencyLimits(t *testing.T) {
	tests := []struct {
		name    string
		file    string // in testdata/limits.txtar, beside sub.yaml
		workers int
		want    int64 // the most actions in flight
	}{
		{"a map's concurrency", "map-concurrency.yaml", 16, 3},
		{"--max-workers caps a wider map", "max-workers-caps-a-map.yaml", 5, 5},
		{"limits.concurrency when --max-workers is not given", "limits-concurrency.yaml", 0, 4},
		{"the run-wide cap counts nested maps and sub-workflows", "run-wide-cap.yaml", 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &tracker{}
				reg := testRegistry(t, tr.action())
				wf := loadArchive(t, reg, "limits", tt.file)
				runJSON(t, wf, nil, runtime.Options{MaxWorkers: tt.workers})
				if got := tr.peak.Load(); got != tt.want {
					t.Errorf("at most %d actions in flight, want %d", got, tt.want)
				}
			})
		})
	}
}

// TestLazyItems checks that a large map pulls items as workers free up: the number
// of goroutines stays bounded by the concurrency, not by the number of items.
func TestLazyItems(t *testing.T) {
	tr := &tracker{}
	reg := testRegistry(t, tr.action())
	wf := loadArchive(t, reg, "limits", "lazy-items.yaml")
	before := goruntime.NumGoroutine()
	if got := runJSON(t, wf, nil, runtime.Options{MaxWorkers: 8}); got != `{"n":20000}` {
		t.Fatalf("got %s", got)
	}
	// 8 workers, each with its action's goroutine, and goroutines that have
	// handed back their result but not yet exited (many under -race): tens, never
	// the 20,000 a goroutine per item would make.
	if peak := tr.goroutines.Load(); peak > int64(before)+10*8 {
		t.Errorf("%d goroutines at the peak (%d before the run): items are not pulled lazily", peak, before)
	}
}

func TestRunawayLimits(t *testing.T) {
	tests := []struct {
		name, file, want string // file in testdata/limits.txtar
	}{
		{"max_items", "max-items.yaml", "the map fans out to 6 items; limits.max_items is 5"},
		{"max_steps", "max-steps.yaml", "more than 20 steps in one chain: is next looping? raise limits.max_steps if the loop is meant"},
		{"max_steps inside an item", "max-steps-inside-an-item.yaml", "more than 20 steps in one chain"},
	}
	reg := testRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf := loadArchive(t, reg, "limits", tt.file)
			_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
			var re *runtime.RunError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a RunError", err)
			}
			if text := err.Error() + "\n" + runtime.Report(re.Failures); !strings.Contains(text, tt.want) {
				t.Errorf("error and report do not say %q:\n%s", tt.want, text)
			}
		})
	}
}

// TestStragglerBoundsTheWindow: while item 0 hangs (a slow or redelivered call),
// the other workers run on only so far past it, so the items waiting to be merged
// in order take bounded memory; when it ends, the map ends with every item.
func TestStragglerBoundsTheWindow(t *testing.T) {
	const window = 1 << 16 // runtime.reorderWindow
	const n, workers = window + 5000, 8
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var highest atomic.Int64
		hold := &action.Spec{Name: "test.hold", Summary: "holds item 0", Params: []action.Param{{Name: "x", Type: action.Integer, Required: true}},
			Func: func(ctx context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
				x := int64(c.Params.Int("x"))
				for h := highest.Load(); x > h && !highest.CompareAndSwap(h, x); h = highest.Load() {
				}
				if x == 0 {
					<-release
				}
				return map[string]any{}, nil
			}}
		wf := loadSrc(t, testRegistry(t, hold), fmt.Sprintf(`version: 1
state:
  total: {type: integer, reducer: sum}
nodes:
  fan:
    map: {over: "0..%d", as: x, to: hold}
  hold:
    action: test.hold
    with: {x: "${{ input.x }}"}
    update: {total: "${{ input.x }}"}
`, n-1))
		done := make(chan *runtime.Result, 1)
		go func() {
			res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r", MaxWorkers: workers})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		synctest.Wait() // every worker but item 0's waits for it
		if h := highest.Load(); h >= window+workers {
			t.Errorf("item %d started while item 0 had not finished; want fewer than %d", h, window+workers)
		}
		if h := highest.Load(); h < window-workers {
			t.Errorf("only items up to %d started; the window should let %d run", h, window)
		}
		close(release)
		if res := <-done; res == nil || res.Output["total"] != n*(n-1)/2 {
			t.Fatalf("output %v", res)
		}
	})
}

// TestWidth checks what a run reports of its limits: the action slots it had,
// and per map and parallel the items one run of it may have in flight.
func TestWidth(t *testing.T) {
	tests := []struct {
		file    string // in testdata/limits.txtar
		workers int
		slots   int
		width   map[string]int64 // workflow/node → width
	}{
		{"map-concurrency.yaml", 16, 16, map[string]int64{"workflow/fan": 3}},
		{"limits-concurrency.yaml", 0, 4, map[string]int64{"workflow/fan": 30}},
		{"run-wide-cap.yaml", 7, 7, map[string]int64{"workflow/outer": 6, "workflow/both": 2, "workflow/inner": 6, "sub/fan": 6}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tr := &tracker{}
			wf := loadArchive(t, testRegistry(t, tr.action()), "limits", tt.file)
			res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{MaxWorkers: tt.workers})
			if err != nil {
				t.Fatal(err)
			}
			if res.MaxWorkers != tt.slots {
				t.Errorf("MaxWorkers %d, want %d", res.MaxWorkers, tt.slots)
			}
			got := map[string]int64{}
			for _, ns := range res.Stats.Nodes() {
				if ns.Kind == "map" || ns.Kind == "parallel" {
					got[ns.Workflow+"/"+ns.Node] = ns.Width.Load()
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.width) {
				t.Errorf("widths %v, want %v", got, tt.width)
			}
		})
	}
}
