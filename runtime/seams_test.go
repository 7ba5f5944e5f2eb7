package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
)

// recorder is an Executor that records every call and answers text.count and
// text.summarize itself, failing the first attempt of item 1.
type recorder struct {
	mu    sync.Mutex
	calls []action.Call
}

func (r *recorder) Execute(_ context.Context, call *action.Call) (map[string]any, error) {
	r.mu.Lock()
	r.calls = append(r.calls, *call)
	r.mu.Unlock()
	text := call.Params.String("text")
	switch {
	case call.Action == "text.count" && call.Item == "1" && call.Attempt == 1:
		return nil, action.Errorf("busy")
	case call.Action == "text.count":
		return map[string]any{"words": 10 * len(strings.Fields(text))}, nil
	}
	return map[string]any{"summary": "S:" + text}, nil
}

// TestCustomExecutor runs a workflow through an executor of its own, with no other
// change: every call reaches it as data, and its outputs flow into the state.
func TestCustomExecutor(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "workflow.yaml")
	rec := &recorder{}
	res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r1", Executor: rec, MaxWorkers: 1, Clock: &virtualClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"words": 50, "texts": []any{"S:x y"}}, res.Output); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	want := []action.Call{
		{Action: "text.count", Params: action.Params{"text": "a b"}, RunID: "r1", Node: "count", Item: "0", Attempt: 1, Key: "r1/@1:fan[0]@1:count"},
		{Action: "text.count", Params: action.Params{"text": "c d e"}, RunID: "r1", Node: "count", Item: "1", Attempt: 1, Key: "r1/@1:fan[1]@1:count"},
		{Action: "text.count", Params: action.Params{"text": "c d e"}, RunID: "r1", Node: "count", Item: "1", Attempt: 2, Key: "r1/@1:fan[1]@1:count"},
		{Action: "text.summarize", Params: action.Params{"text": "x y", "max_sentences": 1}, RunID: "r1", Dir: "lib", Node: "sum", Attempt: 1, Key: "r1/@2:sub>@1:sum"},
	}
	if diff := cmp.Diff(want, rec.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// virtualClock is a Clock whose time moves only when something sleeps: a sleep
// returns at once, having moved the time on.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return context.Cause(ctx)
}

func (c *virtualClock) AfterFunc(time.Duration, func()) func() bool {
	return func() bool { return true }
}

// TestVirtualClock runs retries 10 and 20 minutes apart and an hour's sleep on a
// virtual clock: no wall time passes, and the run's events measure virtual time.
func TestVirtualClock(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "clock.yaml")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &virtualClock{now: start}
	var finished *runtime.Event
	obs := runtime.ObserverFunc(func(e *runtime.Event) {
		if e.Type == runtime.RunFinished {
			ev := *e
			finished = &ev
		}
	})
	res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Clock: clock, Observers: []runtime.Observer{obs}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Output["slept"]; got != 3_600_000 {
		t.Errorf("slept %v ms, want 3600000", got)
	}
	want := 10*time.Minute + 20*time.Minute + time.Hour
	if res.Duration != want || finished == nil || finished.DurationMS != float64(want.Milliseconds()) || !finished.Time.Equal(start.Add(want)) {
		t.Errorf("the run took %v (event: %+v), want %v of virtual time", res.Duration, finished, want)
	}
	if !strings.HasPrefix(res.RunID, "20260101-000000-") {
		t.Errorf("run id %s is not made from the clock's time", res.RunID)
	}
}

// records is a slog.Handler keeping what it is given, with the attributes of
// every record and of the logger.
type records struct {
	mu    sync.Mutex
	attrs []slog.Attr
	out   *[]string
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) WithAttrs(as []slog.Attr) slog.Handler {
	return &records{attrs: append(append([]slog.Attr(nil), h.attrs...), as...), out: h.out}
}

func (h *records) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "delay" && a.Key != "error" {
			fmt.Fprintf(&b, " %s", a)
		}
		return true
	})
	h.mu.Lock()
	*h.out = append(*h.out, b.String())
	h.mu.Unlock()
	return nil
}

// TestLogger checks that the run's log records carry the run, node and item:
// the runtime's own (retries) and an action's (the log action, through the
// default executor).
func TestLogger(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "logger.yaml")
	var got []string
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r1", Logger: slog.New(&records{out: &got})})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DEBUG retrying run=r1 node=work item=0 attempt=1",
		"WARN done 1 run=r1 node=say item=0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestObservers tells every event to each observer, and item progress only to
// those that are not Notable.
func TestObservers(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "observers.yaml")
	var mu sync.Mutex
	count := func(into map[string]int) runtime.Observer {
		return runtime.ObserverFunc(func(e *runtime.Event) {
			mu.Lock()
			into[e.Type]++
			mu.Unlock()
		})
	}
	all, notable := map[string]int{}, map[string]int{}
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Observers: []runtime.Observer{count(all), runtime.Notable(count(notable))}})
	if err != nil {
		t.Fatal(err)
	}
	wantAll := map[string]int{"run.started": 1, "node.started": 1, "item.started": 2, "item.finished": 1, "item.failed": 1, "node.finished": 1, "run.finished": 1}
	if diff := cmp.Diff(wantAll, all); diff != "" {
		t.Errorf("every event (-want +got):\n%s", diff)
	}
	wantNotable := map[string]int{"run.started": 1, "node.started": 1, "item.failed": 1, "node.finished": 1, "run.finished": 1}
	if diff := cmp.Diff(wantNotable, notable); diff != "" {
		t.Errorf("notable events (-want +got):\n%s", diff)
	}
}

// TestSecretParametersMasked: what an action returns or fails with never shows a
// parameter its declaration marks secret.
func TestSecretParametersMasked(t *testing.T) {
	echo := testAction("test.echo", []action.Param{
		{Name: "key", Type: action.String, Secret: true},
		{Name: "text", Type: action.String},
		{Name: "fail", Type: action.Boolean},
	}, []action.Field{{Name: "text"}}, func(_ context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
		said := c.Params.String("text") + " with " + c.Params.String("key")
		if c.Params.Bool("fail") {
			return nil, &action.Error{Msg: said, Permanent: true, Fields: map[string]any{"echo": said}}
		}
		return map[string]any{"text": said, c.Params.String("key"): 1}, nil
	})
	wf := loadArchive(t, testRegistry(t, echo), "seams", "secret.yaml")
	var failed string
	obs := runtime.ObserverFunc(func(e *runtime.Event) {
		if e.Type == runtime.RunFinished {
			failed = e.Error
		}
	})
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Observers: []runtime.Observer{obs}})
	var re *runtime.RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RunError", err)
	}
	report := runtime.Report(re.Failures)
	for what, text := range map[string]string{"the error": err.Error(), "the report": report, "the event": failed} {
		if strings.Contains(text, "sk-very-secret") || !strings.Contains(text, "boom with ***") {
			t.Errorf("%s shows the secret, or not the masked message: %s", what, text)
		}
	}
	wf = loadArchive(t, testRegistry(t, echo), "seams", "secret-ok.yaml")
	got := runJSON(t, wf, nil, runtime.Options{})
	if want := `{"keys":["***","text"],"out":"hello with ***"}`; got != want {
		t.Errorf("output %s, want %s", got, want)
	}
}
