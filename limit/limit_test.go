package limit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/limit"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// server is a fake model server with its own limit: a token bucket of capacity
// burst refilled at perSecond; above it, a 429 with retryAfter (negative: none).
type server struct {
	perSecond, burst float64
	retryAfter       time.Duration
	latency          time.Duration
	usage            action.Usage // what each call reports

	mu      sync.Mutex
	level   float64
	last    time.Time
	calls   []time.Time // accepted
	limited []time.Time // refused
}

func newServer(perSecond, burst float64) *server {
	return &server{perSecond: perSecond, burst: burst, level: burst, retryAfter: time.Second, latency: 50 * time.Millisecond,
		usage: action.Usage{Input: 10, Output: 10}}
}

func (s *server) Execute(ctx context.Context, call *action.Call) (map[string]any, error) {
	s.mu.Lock()
	now := time.Now()
	if !s.last.IsZero() {
		s.level = math.Min(s.burst, s.level+now.Sub(s.last).Seconds()*s.perSecond)
	}
	s.last = now
	if s.level < 1 {
		s.limited = append(s.limited, now)
		s.mu.Unlock()
		if !call.Throttled {
			return nil, errors.New("a 429 reached an unthrottled call")
		}
		return nil, action.RateLimited("HTTP 429 Too Many Requests", 429, s.retryAfter)
	}
	s.level--
	s.calls = append(s.calls, now)
	s.mu.Unlock()
	time.Sleep(s.latency)
	return map[string]any{"text": "ok", "usage": map[string]any{"prompt_tokens": s.usage.Input, "completion_tokens": s.usage.Output}}, nil
}

func load(t *testing.T, src string) (*spec.Workflow, *action.Registry) {
	t.Helper()
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := spec.Parse("workflow.yaml", []byte(src), reg)
	if err != nil {
		t.Fatal(err)
	}
	return wf, reg
}

// fan makes n calls of llm.chat through l, at most conc at once, and returns their
// errors.
func fan(l *limit.Limits, n, conc int, limits ...string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, errs[i] = l.Execute(context.Background(), &action.Call{Action: "llm.chat", Node: "ask", Item: fmt.Sprint(i), Attempt: 1,
				Params: action.Params{"prompt": "hello there", "model": "m", "max_tokens": 10}, Limits: limits})
		}()
	}
	wg.Wait()
	return errs
}

const rated = `version: 1
limits:
  rate:
    api: {requests: %s}
nodes:
  ask:
    action: llm.chat
    rate: api
    with: {prompt: hi, model: m}
`

// TestPacing: a limit of 600/m against a server of 600/m: no 429, and the calls
// go at the limit's rate.
func TestPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, fmt.Sprintf(rated, "600/m"))
		srv := newServer(10, 10)
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 64})
		start := time.Now()
		for _, err := range fan(l, 300, 64, "api") {
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(srv.limited) > 0 {
			t.Errorf("%d 429s, want none", len(srv.limited))
		}
		// 300 calls at 10/s after a burst of 10: about 29 s (the limit paces at 98%).
		got := srv.calls[len(srv.calls)-1].Sub(start).Seconds()
		if want := 29.0 / 0.98; math.Abs(got-want) > want*0.05 {
			t.Errorf("the last call went at %.1fs, want %.0fs ±5%%", got, want)
		}
		st := l.Stats()
		if len(st) != 1 || st[0].Usage.Calls != 300 || st[0].Usage.Tokens != 300*20 || st[0].Usage.Waits == 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestAdapts: a limit set above what the server allows: the 429s pause every call
// and slow the limit down, stop within seconds, and every call succeeds.
func TestAdapts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, fmt.Sprintf(rated, "1200/m"))
		srv := newServer(10, 10) // 600/m
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 64})
		start := time.Now()
		for _, err := range fan(l, 2000, 64, "api") {
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(srv.limited) == 0 {
			t.Fatal("no 429: the test does not test adapting")
		}
		first, last := srv.limited[0], srv.limited[len(srv.limited)-1]
		t.Logf("%d 429s from %s to %s", len(srv.limited), first.Sub(start), last.Sub(start))
		if d := last.Sub(first); d > 10*time.Second {
			t.Errorf("429s went on for %s after the first (%d in all), want them to stop within seconds", d, len(srv.limited))
		}
		st := l.Stats()[0].Usage
		if st.RateLimited != int64(len(srv.limited)) || st.Calls != 2000 {
			t.Errorf("stats %+v, %d 429s", st, len(srv.limited))
		}
	})
}

// TestRetryAfterZero: a server that says Retry-After: 0 does not make a tight loop:
// the limit pauses at least a second.
func TestRetryAfterZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, fmt.Sprintf(rated, "100/s"))
		srv := newServer(1, 1)
		srv.retryAfter = 0
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 4})
		start := time.Now()
		for _, err := range fan(l, 5, 4, "api") {
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(srv.limited) > 8 {
			t.Errorf("%d 429s for 5 calls: a tight loop", len(srv.limited))
		}
		if d := time.Since(start); d < 3*time.Second {
			t.Errorf("5 calls at 1/s took %s", d)
		}
	})
}

// TestTokens: a token limit paces by estimated tokens, settled from usage.
func TestTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, `version: 1
limits:
  rate:
    api: {tokens: 1000/s}
nodes:
  ask: {action: llm.chat, rate: api, with: {prompt: hi, model: m}}
`)
		srv := newServer(1000, 1000)
		srv.usage = action.Usage{Input: 50, Output: 150} // 200 a call
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 8})
		start := time.Now()
		for _, err := range fan(l, 100, 8, "api") {
			if err != nil {
				t.Fatal(err)
			}
		}
		// 100 calls of 200 tokens at 1000 tokens/s: about 20 s, whatever the estimate.
		if got := srv.calls[len(srv.calls)-1].Sub(start).Seconds(); got < 17 || got > 21 {
			t.Errorf("the last call went at %.1fs, want about 19s", got)
		}
		if st := l.Stats()[0].Usage; st.Tokens != 100*200 {
			t.Errorf("tokens %d, want %d", st.Tokens, 100*200)
		}
	})
}

const budgeted = `version: 1
limits:
  budget: {usd: 0.50}
  prices:
    m: {input: 250, output: 250}
nodes:
  ask: {action: llm.chat, with: {prompt: hi, model: m}}
`

// TestBudget: each call costs $0.01; a budget of $0.50 lets 50 through (the calls
// in flight may finish), refuses the rest with kind budget, and says so once.
func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, budgeted)
		srv := newServer(1e6, 1e6)
		srv.usage = action.Usage{Input: 20, Output: 20} // 40 tokens × $250/M = $0.01
		l := limit.New(wf, srv, limit.Options{Registry: reg})
		var refused atomic.Int64
		for _, err := range fan(l, 100, 4) {
			var ae *action.Error
			if errors.As(err, &ae) && ae.Kind == action.KindBudget {
				refused.Add(1)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if n := len(srv.calls); n < 50 || n > 50+4 {
			t.Errorf("%d calls made, want 50 (+ at most the 4 in flight)", n)
		}
		if int(refused.Load())+len(srv.calls) != 100 {
			t.Errorf("%d refused, %d made", refused.Load(), len(srv.calls))
		}
		spent := l.Spent()[""]
		if spent.Calls != int64(len(srv.calls)) || math.Abs(spent.USD-float64(len(srv.calls))*0.01) > 1e-9 {
			t.Errorf("spent %+v", spent)
		}
		if r := l.Reached(); r == "" {
			t.Error("Reached says nothing")
		}
		// A next attempt with what was spent, and a larger budget, goes on: one at
		// a time, exactly to $0.60.
		before := len(srv.calls)
		l2 := limit.New(wf, srv, limit.Options{Registry: reg, Spent: l.Spent(), Budget: action.Budget{USD: 0.60}})
		ok := 0
		for _, err := range fan(l2, 20, 1) {
			if err == nil {
				ok++
			}
		}
		if want := 60 - before; ok != want {
			t.Errorf("the resumed budget let %d more calls through, want %d (to $0.60 from $%.2f)", ok, want, float64(before)*0.01)
		}
	})
}

// TestMapBudget: a map's budget counts the calls of one run of the map.
func TestMapBudget(t *testing.T) {
	wf, reg := load(t, `version: 1
nodes:
  ask: {action: llm.chat, with: {prompt: hi, model: m}}
`)
	srv := newServer(1e6, 1e6)
	srv.latency = 0
	l := limit.New(wf, srv, limit.Options{Registry: reg})
	call := func(scope string) error {
		_, err := l.Execute(context.Background(), &action.Call{Action: "llm.chat", Params: action.Params{"prompt": "x", "model": "m"},
			Budgets: []action.Budget{{Scope: scope, Node: "fan", Calls: 2}}})
		return err
	}
	for i, want := range []bool{true, true, false, false} {
		if err := call("r/@1:fan"); (err == nil) != want {
			t.Errorf("call %d in scope 1: %v", i, err)
		}
	}
	if err := call("r/@2:fan"); err != nil {
		t.Errorf("another run of the map: %v", err)
	}
	var ae *action.Error
	if err := call("r/@1:fan"); !errors.As(err, &ae) || ae.Msg != "the budget of map fan is reached: calls 2 (2 made)" {
		t.Errorf("err = %v", err)
	}
}

// TestEvents: a pause and a reached budget are told to the run's observers, and the
// totals come at the end.
func TestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, `version: 1
state:
  n: {type: integer, reducer: sum}
limits:
  rate:
    api: {requests: 100/s}
  budget: {calls: 6}
nodes:
  fan:
    map: {over: "1..10", to: ask, concurrency: 1}
  ask:
    action: llm.chat
    rate: api
    with: {prompt: hi, model: m}
    update: {n: 1}
`)
		srv := newServer(1, 1)
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 4})
		var mu sync.Mutex
		var types []string
		obs := runtime.ObserverFunc(func(e *runtime.Event) {
			if e.Limit != "" {
				mu.Lock()
				types = append(types, e.Type+" "+e.Limit)
				mu.Unlock()
			}
		})
		_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r", Executor: l, Observers: []runtime.Observer{obs}})
		var ie *runtime.RunError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "the run's budget is reached: calls 6 (6 made) (4 of the items of fan not started)") {
			t.Fatalf("err = %v", err)
		}
		if len(srv.calls) != 6 {
			t.Errorf("%d calls made, want 6", len(srv.calls))
		}
		want := map[string]bool{"limit.paused api": true, "budget.reached run": true, "limit.finished api": true, "limit.finished budget": true}
		for _, ty := range types {
			delete(want, ty)
		}
		if len(want) > 0 {
			t.Errorf("missing events %v among %v", want, types)
		}
	})
}

// TestSharedAcrossSubWorkflows: a sub-workflow's calls count against the limit of
// the same name that the calling workflow declares (the outermost wins), together
// with the caller's own calls.
func TestSharedAcrossSubWorkflows(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sub.yaml", `version: 1
limits:
  rate:
    api: {requests: 1000/s}
state:
  x: integer
nodes:
  ask: {action: llm.chat, rate: api, with: {prompt: "${{ string(state.x) }}", model: m}}
`)
	write("main.yaml", `version: 1
limits:
  rate:
    api: {requests: 60/m}
state:
  n: {type: integer, reducer: sum}
nodes:
  fan:
    map: {over: "1..5", to: sub, concurrency: 5}
  sub:
    workflow: sub.yaml
    with: {x: "${{ input.item }}"}
    next: own
  own: {action: llm.chat, rate: api, with: {prompt: own, model: m}}
`)
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := spec.Load(filepath.Join(dir, "main.yaml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(1000, 1000)
		srv.latency = 0
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 16})
		start := time.Now()
		if _, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Executor: l}); err != nil {
			t.Fatal(err)
		}
		// Ten calls (five items, each the sub-workflow's then its own) at 1/s (the
		// caller's limit, paced at 98%): the last about 9.2 s in.
		if got := srv.calls[len(srv.calls)-1].Sub(start).Seconds(); len(srv.calls) != 10 || got < 8.5 || got > 10 {
			t.Errorf("%d calls, the last at %.2fs; want 10, the last about 9.2s in", len(srv.calls), got)
		}
		if st := l.Stats(); len(st) != 1 || st[0].Name != "api" || st[0].Usage.Calls != 10 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestNoBurstAfterPause: calls booked at the old pace before a 429 go at the new,
// halved pace after the pause, so one pause is enough.
func TestNoBurstAfterPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wf, reg := load(t, fmt.Sprintf(rated, "1200/m"))
		srv := newServer(10, 10)
		srv.latency = 0
		l := limit.New(wf, srv, limit.Options{Registry: reg, MaxConcurrency: 64})
		start := time.Now()
		for _, err := range fan(l, 150, 64, "api") {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range srv.limited {
			if d := at.Sub(start); d > 100*time.Millisecond {
				t.Errorf("a 429 at %s: the limit burst after its pause (%d 429s in all)", d, len(srv.limited))
				break
			}
		}
	})
}
