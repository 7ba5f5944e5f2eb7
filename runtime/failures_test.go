package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
)

// flaky fails the first `fails` attempts of every item (with a permanent error when
// asked), records when each attempt started, and sleeps `ms` honouring ctx (or
// ignoring it, when `stubborn`).
type flaky struct {
	mu       sync.Mutex
	attempts map[string][]time.Duration // item → attempt start times since t0
	t0       time.Time
	started  atomic.Int64
}

func newFlaky() *flaky { return &flaky{attempts: map[string][]time.Duration{}, t0: time.Now()} }

func (f *flaky) action() *action.Spec {
	return testAction("test.flaky", []action.Param{
		{Name: "fails", Type: action.Integer, Default: 0},
		{Name: "permanent", Type: action.Boolean, Default: false},
		{Name: "ms", Type: action.Integer, Default: 0},
		{Name: "stubborn", Type: action.Boolean, Default: false},
		{Name: "panic", Type: action.Boolean, Default: false},
	}, []action.Field{{Name: "attempt"}}, func(ctx context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
		f.started.Add(1)
		f.mu.Lock()
		f.attempts[c.Item] = append(f.attempts[c.Item], time.Since(f.t0))
		f.mu.Unlock()
		if c.Params["panic"] == true {
			panic("boom")
		}
		ms := c.Params.Int("ms")
		if c.Params["stubborn"] == true {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		} else if ms > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		fails := c.Params.Int("fails")
		if c.Attempt <= fails {
			if c.Params["permanent"] == true {
				return nil, &action.Error{Msg: fmt.Sprintf("attempt %d: bad request", c.Attempt), Permanent: true, Fields: map[string]any{"status": 400}}
			}
			return nil, action.Errorf("attempt %d failed", c.Attempt)
		}
		return map[string]any{"attempt": c.Attempt}, nil
	})
}

func (f *flaky) times(item string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.attempts[item]...)
}

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, x := range n {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// TestRetryBackoff checks when retries start. Its workflow is built here, not
// read from testdata: each case fills in the node's with and retry, which the table
// shows beside the attempt times they make.
func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		name  string
		retry string
		with  string
		want  []time.Duration // attempt start times
		ok    bool
	}{
		{"delays grow by backoff and stop at max_delay",
			"{max_attempts: 5, delay: 100ms, backoff: 2, max_delay: 250ms, jitter: false}", "{fails: 4}",
			ms(0, 100, 300, 550, 800), true},
		{"max_attempts counts the first try",
			"{max_attempts: 3, delay: 10ms, jitter: false}", "{fails: 5}",
			ms(0, 10, 30), false},
		{"defaults: 3 attempts, 500ms doubling",
			"{jitter: false}", "{fails: 1}",
			ms(0, 500), true},
		{"permanent errors are not retried by default",
			"{max_attempts: 3, delay: 10ms}", "{fails: 5, permanent: true}",
			ms(0), false},
		{"retry.when decides, seeing error fields",
			"{max_attempts: 3, delay: 10ms, jitter: false, when: 'error.status == 400 && error.attempt < 2'}", "{fails: 5, permanent: true}",
			ms(0, 10), false},
		{"retry.when can refuse retryable errors",
			"{max_attempts: 3, delay: 10ms, when: 'error.kind == \"timeout\"'}", "{fails: 5}",
			ms(0), false},
		{"timeouts are retried as kind timeout",
			"{max_attempts: 2, delay: 10ms, jitter: false, when: 'error.kind == \"timeout\"'}", "{ms: 1000}",
			ms(0, 60), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFlaky()
				wf := loadSrc(t, testRegistry(t, f.action()), fmt.Sprintf(`version: 1
nodes:
  only:
    action: test.flaky
    with: %s
    retry: %s
    timeout: 50ms
`, tt.with, tt.retry))
				_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r"})
				if (err == nil) != tt.ok {
					t.Fatalf("run error %v, want ok=%v", err, tt.ok)
				}
				if diff := cmp.Diff(tt.want, f.times("")); diff != "" {
					t.Errorf("attempt times (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestJitter checks that jitter spreads waits between half and all of the delay,
// differently per item, and identically for the same run id.
func TestJitter(t *testing.T) {
	run := func(id string) map[string][]time.Duration {
		var out map[string][]time.Duration
		synctest.Test(t, func(t *testing.T) {
			f := newFlaky()
			wf := loadArchive(t, testRegistry(t, f.action()), "failures", "jitter.yaml")
			if _, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: id}); err != nil {
				t.Fatal(err)
			}
			out = f.attempts
		})
		return out
	}
	a, b, c := run("same"), run("same"), run("other")
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("the same run id gave other waits (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Error("another run id gave the same waits")
	}
	distinct := map[time.Duration]bool{}
	for item, times := range a {
		for i := 1; i < len(times); i++ {
			wait := times[i] - times[i-1]
			if wait < 500*time.Millisecond || wait > time.Second {
				t.Errorf("item %s wait %d is %v, want between 500ms and 1s", item, i, wait)
			}
			distinct[wait] = true
		}
	}
	if len(distinct) < 8 {
		t.Errorf("only %d distinct waits over 16 retries: jitter is not spreading them", len(distinct))
	}
}

func TestTimeoutEndsStubbornAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky()
		wf := loadArchive(t, testRegistry(t, f.action()), "failures", "timeout-ends-stubborn-action.yaml")
		start := time.Now()
		res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
		if res.Duration != 2*time.Second {
			t.Errorf("the run took %v, want the 2s timeout", res.Duration)
		}
		// Run itself waits for the abandoned call, 5 s at most.
		if took := time.Since(start); took != 7*time.Second {
			t.Errorf("Run returned after %v, want 2s + 5s", took)
		}
		var re *runtime.RunError
		if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != "timeout" {
			t.Fatalf("got %v, want one timeout failure", err)
		}
		time.Sleep(time.Hour) // let the abandoned action finish inside the bubble
	})
}

// TestFailureHandling covers on_error, max_failures, max_failure_ratio, panics and
// the report.
func TestFailureHandling(t *testing.T) {
	tests := []struct {
		name   string
		file   string // in testdata/failures.txtar
		out    string // the output when the run succeeds
		report string // the failure report
		err    string // part of the run's error, when it fails
	}{
		{
			name:   "one failure fails the map by default; finished items are kept in order",
			file:   "one-failure-fails-the-map.yaml",
			report: "failed items: 1\n  node work item 2: 1 attempt, action: attempt 1 failed\n",
			err:    `map node "fan" failed: 1 of 4 items failed; max_failures is 0`,
		},
		{
			name:   "max_failures tolerates failed items and lists them",
			file:   "max-failures-tolerates.yaml",
			out:    `{"done":[1,3]}`,
			report: "tolerated failures: 2\n  node work item 0 (tolerated): 1 attempt, action: attempt 1 failed\n  node work item 2 (tolerated): 1 attempt, action: attempt 1 failed\n",
		},
		{
			name:   "max_failure_ratio",
			file:   "max-failure-ratio.yaml",
			report: "failed items: 3\n  node work item 0: 1 attempt, action: attempt 1 failed\n  node work item 2: 1 attempt, action: attempt 1 failed\n  node work item 3: 1 attempt, action: attempt 1 failed\n",
			err:    "3 of 4 items failed; max_failure_ratio is 0.5",
		},
		{
			name:   "on_error skip drops the item's updates",
			file:   "on-error-skip.yaml",
			out:    `{"done":["first 0","first 2"]}`,
			report: "errors handled by on_error: 1\n  node work item 1 (handled by on_error): 1 attempt, action: attempt 1 failed\n",
		},
		{
			name:   "on_error records the error through reducers and goes on",
			file:   "on-error-records.yaml",
			out:    `{"errors":[{"attempts":1,"item":1,"kind":"action","status":400}],"results":["ok 0","recorded 1","ok 2","1 error"]}`,
			report: "errors handled by on_error: 1\n  node work item 1 (handled by on_error): 1 attempt, action: attempt 1: bad request\n",
		},
		{
			name:   "a panic is the item's error, of kind panic",
			file:   "panic.yaml",
			out:    `{"done":[0,2]}`,
			report: "panic: action panicked: boom",
		},
		{
			name:   "a failed top-level node fails the run",
			file:   "failed-top-level-node.yaml",
			report: "",
			err:    "attempt 1 failed",
		},
		{
			name:   "a type mismatch names the node, the field and the item",
			file:   "type-mismatch.yaml",
			report: `failed items: 1` + "\n" + `  node work item 1: 0 attempts, state: workflow.yaml:8:14: update of state field "total" (a number, reducer sum): expected a number, got "two"` + "\n",
			err:    "1 of 3 items failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFlaky()
				wf := loadArchive(t, testRegistry(t, f.action()), "failures", tt.file)
				res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
				var failures []runtime.Failure
				if tt.err != "" {
					var re *runtime.RunError
					if !errors.As(err, &re) {
						t.Fatalf("got %v, want a RunError", err)
					}
					if !strings.Contains(err.Error(), tt.err) {
						t.Errorf("error %q does not say %q", err, tt.err)
					}
					failures = re.Failures
				} else {
					if err != nil {
						t.Fatalf("run: %v", err)
					}
					if got := mustJSON(t, res.Output); got != tt.out {
						t.Errorf("output:\n got %s\nwant %s", got, tt.out)
					}
					failures = res.Failures
				}
				report := stripDir(runtime.Report(failures), wf.Dir)
				if !strings.Contains(report, tt.report) {
					t.Errorf("report:\n%s\nwant it to hold:\n%s", report, tt.report)
				}
			})
		})
	}
}

// TestMapFailureStopsItems checks that once a map has failed, in-flight items are
// cancelled and no new ones start.
func TestMapFailureStopsItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky()
		wf := loadArchive(t, testRegistry(t, f.action()), "failures", "map-failure-stops-items.yaml")
		start := time.Now()
		_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
		if err == nil {
			t.Fatal("the run succeeded; want the map to fail")
		}
		// Items 1-4 take 1s; 5 and 6 start after them; 6 fails 5ms later and the map
		// stops: the rest are cancelled at once and nothing else starts.
		if took := time.Since(start); took != time.Second+5*time.Millisecond {
			t.Errorf("the run took %v, want 1.005s", took)
		}
		if n := f.started.Load(); n != 8 {
			t.Errorf("%d attempts started, want 8 (items 1-4, then 5-8 when they finished)", n)
		}
		if want := `map node "fan" failed: 1 of 100 items failed; max_failures is 0 (3 in flight cancelled, 92 not started)`; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	})
}

func TestCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky()
		var events []string
		var mu sync.Mutex
		obs := runtime.ObserverFunc(func(e *runtime.Event) {
			mu.Lock()
			events = append(events, e.Type+" "+e.Status)
			mu.Unlock()
		})
		wf := loadArchive(t, testRegistry(t, f.action()), "failures", "cancellation.yaml")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(errors.New("interrupted by test")) })
		start := time.Now()
		_, err := runtime.Run(ctx, wf, nil, runtime.Options{Observers: []runtime.Observer{obs}})
		if took := time.Since(start); took != time.Second {
			t.Errorf("the run took %v after cancellation at 1s", took)
		}
		if err == nil || !strings.Contains(err.Error(), "run interrupted: interrupted by test") {
			t.Fatalf("got %v, want the interruption", err)
		}
		if n := f.started.Load(); n != 5 {
			t.Errorf("%d actions started, want 5: nothing new after the cancel", n)
		}
		if last := events[len(events)-1]; last != "run.finished interrupted" {
			t.Errorf("last event %q, want run.finished interrupted", last)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	return runJSONValue(t, v)
}

func stripDir(s, dir string) string { return strings.ReplaceAll(s, dir+"/", "") }
