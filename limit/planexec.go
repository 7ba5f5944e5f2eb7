package limit

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/spec"
)

// planner is the executor of a plan's dry run: it runs read-only calls for real
// through a local executor (no exec, no network, no waiting, files confined as in
// a run) and makes no other call: it counts it, estimates its tokens, and
// answers a placeholder built from the action's declared output.
type planner struct {
	top    *spec.Workflow
	reg    *action.Registry
	local  action.Executor
	getenv func(string) string

	mu     sync.Mutex
	nodes  map[*spec.Node]*tally
	scopes map[string]*scopeTally // map budgets, by scope
	lost   int64                  // calls whose node the key did not name (none, unless the key format changed)
}

// tally counts the calls of one node (or of one node in one budget's scope).
type tally struct {
	calls  int64
	models map[string]*usage // estimated tokens by model ("" for an action without a meter)
}

// usage sums tokens.
type usage struct{ input, output int64 }

func (t *tally) add(model string, metered bool, u action.Usage) {
	t.calls++
	if !metered {
		return
	}
	if t.models == nil {
		t.models = map[string]*usage{}
	}
	m := t.models[model]
	if m == nil {
		m = &usage{}
		t.models[model] = m
	}
	m.input += int64(u.Input)
	m.output += int64(u.Output)
}

// scopeTally is what the calls of one run of a map with a budget would use.
type scopeTally struct {
	budget action.Budget
	nodes  map[*spec.Node]*tally
}

// noNetwork is the HTTP transport of a plan's read-only actions.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("flowrun plan makes no network requests")
}

// noWait is the clock of a dry run: retries and sleeps take no time; timeouts
// still bound the read-only calls.
type noWait struct{}

func (noWait) Now() time.Time { return time.Now() }

func (noWait) Sleep(ctx context.Context, _ time.Duration) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (noWait) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

func newPlanner(wf *spec.Workflow, opts PlanOptions) *planner {
	env := action.Env{Dir: wf.Dir, AllowPaths: opts.AllowPaths, Private: opts.Private, Getenv: opts.Getenv,
		HTTP: &http.Client{Transport: noNetwork{}}, Sleep: noWait{}.Sleep}
	return &planner{top: wf, reg: wf.Registry, local: wf.Registry.Local(env), getenv: opts.Getenv,
		nodes: map[*spec.Node]*tally{}, scopes: map[string]*scopeTally{}}
}

// Execute runs a read-only call, and counts and answers any other.
func (p *planner) Execute(ctx context.Context, call *action.Call) (map[string]any, error) {
	a := p.reg.Lookup(call.Action)
	if a == nil {
		return nil, action.Permanentf("unknown action %q", call.Action)
	}
	var est action.Usage
	model := ""
	if a.Meter != nil {
		est = a.Meter.Estimate(call.Params)
		model = a.Meter.Model(call.Params, p.getenv)
	}
	node := p.nodeOf(call)
	p.mu.Lock()
	if node == nil {
		p.lost++
	} else {
		p.tallyOf(p.nodes, node).add(model, a.Meter != nil, est)
		for _, b := range call.Budgets {
			st := p.scopes[b.Scope]
			if st == nil {
				st = &scopeTally{budget: b, nodes: map[*spec.Node]*tally{}}
				p.scopes[b.Scope] = st
			}
			p.tallyOf(st.nodes, node).add(model, a.Meter != nil, est)
		}
	}
	p.mu.Unlock()
	if a.ReadOnly {
		return p.local.Execute(ctx, call)
	}
	return placeholder(a, model, est), nil
}

func (p *planner) tallyOf(m map[*spec.Node]*tally, n *spec.Node) *tally {
	t := m[n]
	if t == nil {
		t = &tally{}
		m[n] = t
	}
	return t
}

// placeholder is the output assumed for a call that is not made: the zero value
// of each declared output field, and what the action's meter says.
func placeholder(a *action.Spec, model string, est action.Usage) map[string]any {
	out := make(map[string]any, len(a.Output))
	for _, f := range a.Output {
		out[f.Name] = zero(f.Type)
	}
	if m := a.Meter; m != nil && m.Placeholder != nil {
		for k, v := range m.Placeholder(model, est) {
			out[k] = v
		}
	}
	return out
}

// zero is a type's zero value.
func zero(t action.Type) any {
	switch t {
	case action.String, action.Duration:
		return ""
	case action.Number, action.Integer:
		return 0
	case action.Boolean:
		return false
	case action.Array:
		return []any{}
	case action.Object:
		return map[string]any{}
	}
	return nil
}

// nodeOf finds the node that makes a call from the call's key, which names the
// unit of work by position (docs/runs.md): "@STEP:NODE" is a node run in a
// chain, "[I]" an item of that map node, ">" enters that node's sub-workflow.
// It returns nil when the key does not name call.Node.
func (p *planner) nodeOf(call *action.Call) *spec.Node {
	key := call.Key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		key = key[i+1:] // after the run id
	}
	wf := p.top
	var cur *spec.Node
	for key != "" {
		switch key[0] {
		case '@':
			colon := strings.IndexByte(key, ':')
			if colon < 0 || wf == nil {
				return nil
			}
			rest := key[colon+1:]
			end := strings.IndexAny(rest, "@[>")
			if end < 0 {
				end = len(rest)
			}
			if cur = wf.Node(rest[:end]); cur == nil {
				return nil
			}
			key = rest[end:]
		case '[':
			end := strings.IndexByte(key, ']')
			if end < 0 {
				return nil
			}
			key = key[end+1:]
		case '>':
			if cur == nil {
				return nil
			}
			wf, key = cur.Workflow, key[1:]
		default:
			return nil
		}
	}
	if cur == nil || cur.Name != call.Node {
		return nil
	}
	return cur
}
