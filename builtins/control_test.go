package builtins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

func TestSleepUsesEnvSleep(t *testing.T) {
	var got []time.Duration
	e := &action.Env{Sleep: func(_ context.Context, d time.Duration) error { got = append(got, d); return nil }}
	out, err := run(t, "sleep", e, map[string]any{"duration": "1m30s"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"slept_ms": 90000}, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{90 * time.Second}, got); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestSleepHonoursCancellation(t *testing.T) {
	s := spec(t, "sleep")
	params, err := s.Bind(map[string]any{"duration": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("run cancelled")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(10*time.Millisecond, func() { cancel(cause) })
	start := time.Now()
	_, err = local(t, &action.Env{}).Execute(ctx, &action.Call{Action: s.Name, Params: params, Attempt: 1})
	if !errors.Is(err, cause) {
		t.Errorf("err = %v, want the context's cause", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestFailTimes(t *testing.T) {
	for attempt := 1; attempt <= 4; attempt++ {
		t.Run(fmt.Sprint(attempt), func(t *testing.T) {
			out, err := runCall(t, "fail", &action.Call{Attempt: attempt, Node: "n", Item: "3"}, map[string]any{"times": 2, "message": "boom"})
			if attempt <= 2 {
				var ae *action.Error
				if !errors.As(err, &ae) || ae.Permanent || ae.Msg != "boom" {
					t.Fatalf("err = %#v, want a retryable action error \"boom\"", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]any{"attempts": attempt}, out); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailAlways(t *testing.T) {
	_, err := runCall(t, "fail", &action.Call{Attempt: 9}, map[string]any{})
	var ae *action.Error
	if !errors.As(err, &ae) || ae.Msg != "deliberate failure" || ae.Permanent {
		t.Errorf("err = %#v", err)
	}
}

func TestFailProbabilityIsDeterministic(t *testing.T) {
	decide := func(seed int, node, item string, attempt int) bool {
		_, err := runCall(t, "fail", &action.Call{Attempt: attempt, Node: node, Item: item},
			map[string]any{"probability": 0.3, "seed": seed})
		return err != nil
	}
	failures := 0
	const n = 2000
	for i := range n {
		item := fmt.Sprint(i)
		a := decide(1, "worker", item, 1)
		if b := decide(1, "worker", item, 1); a != b {
			t.Fatalf("item %s: decisions differ for the same inputs", item)
		}
		if a {
			failures++
		}
	}
	if ratio := float64(failures) / n; ratio < 0.25 || ratio > 0.35 {
		t.Errorf("failure ratio %.3f, want about 0.3", ratio)
	}
	differs := func(f func(i int) bool) bool {
		for i := range 50 {
			if f(i) != decide(1, "worker", fmt.Sprint(i), 1) {
				return true
			}
		}
		return false
	}
	if !differs(func(i int) bool { return decide(2, "worker", fmt.Sprint(i), 1) }) {
		t.Error("seed does not change the decisions")
	}
	if !differs(func(i int) bool { return decide(1, "worker", fmt.Sprint(i), 2) }) {
		t.Error("attempt does not change the decisions")
	}
	if !differs(func(i int) bool { return decide(1, "other", fmt.Sprint(i), 1) }) {
		t.Error("node does not change the decisions")
	}
}

func TestFailProbabilityBounds(t *testing.T) {
	for _, tt := range []struct {
		p        float64
		wantFail bool
	}{{0, false}, {1, true}} {
		_, err := runCall(t, "fail", &action.Call{Attempt: 1, Item: "0"}, map[string]any{"probability": tt.p})
		if (err != nil) != tt.wantFail {
			t.Errorf("probability %v: err = %v", tt.p, err)
		}
	}
	_, err := runCall(t, "fail", &action.Call{Attempt: 1}, map[string]any{"probability": 1.5})
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent {
		t.Errorf("probability 1.5: err = %#v, want a permanent error", err)
	}
}

func TestLog(t *testing.T) {
	type entry struct{ Level, Msg, Attrs string }
	var got []entry
	e := &action.Env{Logger: slog.New(recordFunc(func(r slog.Record) {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		got = append(got, entry{r.Level.String(), r.Message, strings.Join(attrs, " ")})
	}))}
	for _, with := range []map[string]any{
		{"message": "plain"},
		{"message": map[string]any{"n": 1, "s": "<x>"}, "level": "error"},
		{"message": 2.5, "level": "debug"},
	} {
		out, err := run(t, "log", e, with)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]any{}, out); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
	}
	want := []entry{{"INFO", "plain", "run= node=n item="}, {"ERROR", `{"n":1,"s":"<x>"}`, "run= node=n item="}, {"DEBUG", "2.5", "run= node=n item="}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if _, err := run(t, "log", nil, map[string]any{"message": "no log function"}); err != nil {
		t.Error(err)
	}
}

// recordFunc is a slog.Handler that hands every record to a function.
type recordFunc func(r slog.Record)

func (f recordFunc) Enabled(context.Context, slog.Level) bool      { return true }
func (f recordFunc) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f recordFunc) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f recordFunc) WithGroup(string) slog.Handler                 { return f }
