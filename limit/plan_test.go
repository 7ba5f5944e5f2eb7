package limit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

// planOf plans a workflow of the corpus.
func planOf(t *testing.T, dir, file string, inputs map[string]any, opts PlanOptions) *Plan {
	t.Helper()
	p, err := NewPlan(context.Background(), loadPlanned(t, dir, file), inputs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// row is the plan's node at path.
func (p *Plan) row(t *testing.T, path string) PlanNode {
	t.Helper()
	for _, n := range p.Nodes {
		if n.Path == path {
			return n
		}
	}
	t.Fatalf("no node %s in the plan", path)
	return PlanNode{}
}

func ptr(n int64) *int64 { return &n }

// TestPlanExact plans a workflow whose fan-outs depend on files only: the counts
// are exact, the tokens are the meter's estimates of the real prompts, and the
// estimate of a prompt built from replies is marked approximate.
func TestPlanExact(t *testing.T) {
	dir := planCorpus(t)
	p := planOf(t, dir, "exact.yaml", nil, PlanOptions{})
	type counts struct {
		Items, Calls, Peak *int64
		DependsOn          []string
	}
	want := map[string]counts{
		"list":        {Calls: ptr(1), Peak: ptr(1)},
		"load":        {Items: ptr(3), Peak: ptr(2)},
		"load/read":   {Calls: ptr(3), Peak: ptr(2)},
		"count":       {Items: ptr(3), Peak: ptr(3)},
		"count/long":  {Calls: ptr(2), Peak: ptr(2)},
		"count/short": {Calls: ptr(1), Peak: ptr(1)},
		"note":        {Calls: ptr(1), Peak: ptr(1)},
	}
	got := map[string]counts{}
	for _, n := range p.Nodes {
		got[n.Path] = counts{n.Items, n.Calls, n.Peak, n.DependsOn}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	// The tokens of long are the estimates of its two real prompts.
	meter := loadPlanned(t, dir, "exact.yaml").Registry.Lookup("llm.chat").Meter
	var est Tokens
	for _, doc := range []string{"docs/b.txt", "docs/c.txt"} {
		text, err := os.ReadFile(filepath.Join(dir, doc))
		if err != nil {
			t.Fatal(err)
		}
		u := meter.Estimate(action.Params{"model": "m", "prompt": "Summarize: " + string(text), "max_tokens": 50})
		est.Input += int64(u.Input)
		est.Output += int64(u.Output)
	}
	if long := p.row(t, "count/long"); long.Tokens == nil || *long.Tokens != est || long.Approximate != nil {
		t.Errorf("count/long: tokens %+v, approximate %v; want %+v, exact", long.Tokens, long.Approximate, est)
	}
	// note's prompt joins long's replies, which the plan assumes to be 50 tokens
	// each: about 100 tokens, marked approximate.
	note := p.row(t, "note")
	if note.Tokens == nil || note.Tokens.Input < 95 || note.Tokens.Input > 110 || !cmp.Equal(note.Approximate, []string{"long"}) {
		t.Errorf("note: tokens %+v, approximate %v; want about 100 input tokens, approximate for long", note.Tokens, note.Approximate)
	}
	if !p.Total.Complete || p.Total.Calls != 8 || p.Total.Tokens.Output != 110 {
		t.Errorf("total %+v; want complete, 8 calls, 110 output tokens", p.Total)
	}
	if p.Stopped != nil || len(p.Budgets) != 0 || p.Exceeded() {
		t.Errorf("stopped %+v, budgets %+v; want neither", p.Stopped, p.Budgets)
	}
}

// TestPlanDepends plans fan-outs and chains that depend on replies: their counts
// say on which node, and the totals are a lower bound.
func TestPlanDepends(t *testing.T) {
	dir := planCorpus(t)
	p := planOf(t, dir, "depends.yaml", nil, PlanOptions{})
	write, draft := p.row(t, "write"), p.row(t, "write/draft")
	if write.Items != nil || !cmp.Equal(write.DependsOn, []string{"plan_topics"}) {
		t.Errorf("write: items %v, depends on %v; want unknown, depends on plan_topics", write.Items, write.DependsOn)
	}
	if draft.Calls != nil || draft.Tokens != nil || draft.PerCall == nil || draft.PerCall.Output != 200 || !cmp.Equal(draft.DependsOn, []string{"plan_topics"}) {
		t.Errorf("write/draft: %+v; want unknown calls, 200 output tokens a call, depends on plan_topics", draft)
	}
	if p.Total.Complete || p.Total.Calls != 2 || !cmp.Equal(p.Total.DependsOn, []string{"plan_topics"}) {
		t.Errorf("total %+v; want 2 calls known, the rest depending on plan_topics", p.Total)
	}
	if b := p.Budgets; len(b) != 1 || b[0].Status != Unknown || p.Exceeded() {
		t.Errorf("budgets %+v; want the run's, unknown", b)
	}
	// A budget the known part already passes is exceeded.
	p = planOf(t, dir, "depends.yaml", nil, PlanOptions{Budget: action.Budget{Calls: 1}})
	if b := p.Budgets; len(b) != 1 || b[0].Status != Exceeded || !cmp.Equal(b[0].Exceeded, []string{"calls"}) || !p.Exceeded() {
		t.Errorf("budgets %+v; want the run's exceeded by its calls", b)
	}

	p = planOf(t, dir, "branch.yaml", nil, PlanOptions{})
	if ask, explain := p.row(t, "fan/ask"), p.row(t, "fan/explain"); ask.Calls == nil || *ask.Calls != 4 ||
		explain.Calls != nil || !cmp.Equal(explain.DependsOn, []string{"ask"}) {
		t.Errorf("fan/ask %+v, fan/explain %+v; want 4 calls, and calls depending on ask", ask, explain)
	}
}

// TestPlanSubWorkflow plans a map of sub-workflows with a budget per run of the
// map: the known calls of its one run already pass it.
func TestPlanSubWorkflow(t *testing.T) {
	p := planOf(t, planCorpus(t), "parent.yaml", nil, PlanOptions{})
	if n := p.row(t, "each/section/per_chunk"); n.Items == nil || *n.Items != 3 || n.Depth != 2 || n.Workflow != "sub" {
		t.Errorf("each/section/per_chunk: %+v; want 3 items, at depth 2, in sub", n)
	}
	if n := p.row(t, "each/section/again"); n.Items != nil || !cmp.Equal(n.DependsOn, []string{"sub.rewrite"}) {
		t.Errorf("each/section/again: %+v; want items depending on sub.rewrite", n)
	}
	rw := p.row(t, "each/section/rewrite")
	if rw.Calls == nil || *rw.Calls != 2 || rw.USD == nil || *rw.USD <= 0 {
		t.Fatalf("each/section/rewrite: %+v; want 2 calls, priced", rw)
	}
	// The known part of the map's run: split and rewrite, twice each.
	want := []PlanBudget{{Name: "each", Caps: PlanUse{Calls: 2}, Need: PlanUse{Calls: 4, Tokens: rw.Tokens.Total(), USD: *rw.USD}, Runs: 1, Over: 1,
		Status: Exceeded, Exceeded: []string{"calls"}, DependsOn: []string{"sub.rewrite"}}}
	if diff := cmp.Diff(want, p.Budgets); diff != "" {
		t.Errorf("budgets (-want +got):\n%s", diff)
	}
}

// TestPlanNoEffects checks that a plan writes no file, runs no program, sends
// no request and does not wait: it only counts those calls. It needs no secret.
func TestPlanNoEffects(t *testing.T) {
	dir := planCorpus(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	start := time.Now()
	p := planOf(t, dir, "effects.yaml", map[string]any{"url": srv.URL}, PlanOptions{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the plan took %s: it waited", d)
	}
	for _, f := range []string{"out.txt", "ran.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s exists: the plan made a call with an effect", f)
		}
	}
	if n := hits.Load(); n > 0 {
		t.Errorf("the server got %d requests", n)
	}
	if p.Total.Calls != 4 || p.Stopped != nil {
		t.Errorf("total %+v, stopped %+v; want 4 calls counted and none made", p.Total, p.Stopped)
	}
}

// TestPlanStopped: a read-only call that fails on known data stops the dry run;
// the plan says where, and that a real run would fail there too.
func TestPlanStopped(t *testing.T) {
	p := planOf(t, planCorpus(t), "fails.yaml", nil, PlanOptions{})
	if s := p.Stopped; s == nil || s.Node != "read" || len(s.DependsOn) != 0 {
		t.Errorf("stopped %+v; want at node read, on known data", s)
	}
}

// TestPlanDeterministic: the same workflow and inputs give the same plan, byte
// for byte, however the dry run's goroutines ran.
func TestPlanDeterministic(t *testing.T) {
	dir := planCorpus(t)
	for _, file := range []string{"exact.yaml", "parent.yaml", "depends.yaml"} {
		var first []byte
		for range 5 {
			b, err := json.Marshal(planOf(t, dir, file, nil, PlanOptions{MaxWorkers: 8}))
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = b
			} else if string(b) != string(first) {
				t.Fatalf("%s: plans differ:\n%s\n%s", file, first, b)
			}
		}
	}
}

// TestPlannerExecute: the planning executor runs a read-only call for real, and
// answers any other with its declared output at zero values (a model's with a
// reply as long as its estimate), counting both by node.
func TestPlannerExecute(t *testing.T) {
	wf := loadPlanned(t, planCorpus(t), "exact.yaml")
	p := newPlanner(wf, PlanOptions{Getenv: func(string) string { return "" }})
	ctx := context.Background()
	out, err := p.Execute(ctx, &action.Call{Action: "text.count", Node: "short", Key: "plan/@4:count[0]@1:short",
		Params: action.Params{"text": "one two three"}})
	if err != nil || out["words"] != 3 {
		t.Errorf("text.count: %v, %v; want its real output", out, err)
	}
	est := wf.Registry.Lookup("llm.chat").Meter.Estimate(action.Params{"model": "m", "prompt": "hi", "max_tokens": 5})
	out, err = p.Execute(ctx, &action.Call{Action: "llm.chat", Node: "long", Key: "plan/@4:count[1]@1:long",
		Params: action.Params{"model": "m", "prompt": "hi", "max_tokens": 5}})
	reported := map[string]any{"prompt_tokens": est.Input, "completion_tokens": 5, "total_tokens": est.Input + 5}
	if want := map[string]any{"text": "word word word word", "model": "m", "usage": reported}; err != nil || !cmp.Equal(out, want) {
		t.Errorf("llm.chat: %v, %v; want %v", out, err, want)
	}
	out, _ = p.Execute(ctx, &action.Call{Action: "http.request", Node: "long", Key: "plan/@4:count[2]@1:long",
		Params: action.Params{"url": "http://127.0.0.1:1/"}})
	if want := map[string]any{"status": 0, "headers": map[string]any{}, "body": "", "json": nil}; !cmp.Equal(out, want) {
		t.Errorf("http.request: %v; want its declared output at zero values", out)
	}
	if n := p.nodes[wf.Node("long")]; n == nil || n.calls != 2 || *n.models["m"] != (usage{input: int64(est.Input), output: 5}) {
		t.Errorf("the calls of long: %+v", n)
	}
	if n := p.nodes[wf.Node("short")]; n == nil || n.calls != 1 || n.models != nil {
		t.Errorf("the calls of short: %+v", n)
	}
}
