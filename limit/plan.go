package limit

import (
	"context"
	"errors"
	"os"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// Plan is what a run of a workflow would do, worked out without making any call
// that costs, writes or waits (`flowrun plan`): per node, the items and calls,
// the tokens and dollars of metered calls, and the calls in flight at most; the
// time the rate limits imply; and whether each budget would hold.
//
// A plan is a dry run of the real runtime: calls of read-only actions (reading
// files, processing text) are made, so a fan-out over the files a workflow lists
// has its real size; every other call is counted and answered with a placeholder.
// What depends on a placeholder (a fan-out over a model's reply) is marked with
// the nodes it depends on, and left out of the totals.
type Plan struct {
	Workflow string `json:"workflow"`
	File     string `json:"file"`
	// MaxWorkers is the run's actions in flight at most.
	MaxWorkers int `json:"max_workers"`
	// Priced says that the workflow has prices (limits.prices) or a budget in
	// dollars; without, no dollars are worked out.
	Priced bool       `json:"priced"`
	Nodes  []PlanNode `json:"nodes"`
	Total  PlanTotal  `json:"total"`
	// Rates are the rate limits that calls name, in name order.
	Rates   []PlanRate   `json:"rates"`
	Budgets []PlanBudget `json:"budgets"`
	// Stopped, when set, says why the dry run stopped early: the nodes after it
	// are not counted.
	Stopped *PlanStop `json:"stopped,omitempty"`
}

// PlanNode is one node of a plan, in the order the graph reaches it, nested
// nodes after the map, parallel or workflow node that runs them.
type PlanNode struct {
	// Path names the node after the nodes around it: "summarize_all/summarize".
	Path     string `json:"path"`
	Workflow string `json:"workflow"`
	Node     string `json:"node"`
	// Depth counts the map, parallel and workflow nodes around it.
	Depth int `json:"depth"`
	// Kind is action, map, parallel, workflow or pass; Action names an action
	// node's action.
	Kind   string `json:"kind"`
	Action string `json:"action,omitempty"`
	// Items (maps and parallels: their tasks, over all their runs) and Calls
	// (action nodes) are absent when they depend on outputs the plan does not
	// compute; DependsOn names the nodes whose outputs they depend on.
	Items     *int64   `json:"items,omitempty"`
	Calls     *int64   `json:"calls,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
	// Tokens are the estimated tokens of a metered action's calls; PerCall, when
	// the calls are not known, those of one call in the dry run. Approximate
	// names the nodes whose outputs the calls' parameters read: the estimate
	// used placeholders for them.
	Tokens      *Tokens  `json:"tokens,omitempty"`
	PerCall     *Tokens  `json:"per_call,omitempty"`
	Approximate []string `json:"approximate,omitempty"`
	// USD is what the calls cost at limits.prices; Unpriced lists the models
	// without a price (their calls count no dollars).
	USD      *float64 `json:"usd,omitempty"`
	Models   []string `json:"models,omitempty"`
	Unpriced []string `json:"unpriced,omitempty"`
	// Peak is the calls (action nodes) or items (maps) in flight at most.
	Peak *int64 `json:"peak,omitempty"`
	// Rate names the node's rate limits.
	Rate []string `json:"rate,omitempty"`
}

// Tokens are input (prompt) and output (reply) tokens.
type Tokens struct {
	Input  int64 `json:"input"`
	Output int64 `json:"output"`
}

// Total is all the tokens.
func (t Tokens) Total() int64 { return t.Input + t.Output }

// PlanTotal adds up the nodes whose counts are known.
type PlanTotal struct {
	Calls    int64    `json:"calls"`
	Tokens   Tokens   `json:"tokens"`
	USD      float64  `json:"usd"`
	Unpriced []string `json:"unpriced,omitempty"`
	// Complete is false when some counts depend on outputs the plan does not
	// compute (DependsOn): the totals are then a lower bound.
	Complete  bool     `json:"complete"`
	DependsOn []string `json:"depends_on,omitempty"`
}

// PlanRate is what a rate limit implies: its calls and tokens, and the least
// time they take at its rates.
type PlanRate struct {
	Name        string `json:"name"`
	Requests    string `json:"requests,omitempty"`
	Tokens      string `json:"tokens,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	Calls       int64  `json:"calls"`
	TokensUsed  int64  `json:"tokens_used"`
	// Seconds is the least time the calls take: calls at the requests rate or
	// tokens at the tokens rate, whichever is longer (Binding: requests or
	// tokens).
	Seconds  float64 `json:"min_seconds"`
	Binding  string  `json:"binding,omitempty"`
	Complete bool    `json:"complete"`
}

// PlanBudget is a budget and whether the run would stay within it.
type PlanBudget struct {
	// Name is "run" for the run's budget (limits.budget and the --budget-*
	// flags), else the map node whose every run has the budget.
	Name string  `json:"name"`
	Caps PlanUse `json:"caps"`
	Need PlanUse `json:"need"` // a map's: its largest run's
	Runs int     `json:"runs,omitempty"`
	Over int     `json:"runs_over,omitempty"`
	// Status is fits, exceeded, or unknown (the need depends on outputs the plan
	// does not compute, or a model has no price).
	Status    string   `json:"status"`
	Exceeded  []string `json:"exceeded,omitempty"` // calls, tokens, usd
	DependsOn []string `json:"depends_on,omitempty"`
	Unpriced  []string `json:"unpriced,omitempty"`
}

// PlanUse is calls, tokens and US dollars.
type PlanUse struct {
	Calls  int64   `json:"calls,omitempty"`
	Tokens int64   `json:"tokens,omitempty"`
	USD    float64 `json:"usd,omitempty"`
}

// Budget statuses.
const (
	Fits     = "fits"
	Exceeded = "exceeded"
	Unknown  = "unknown"
)

// PlanStop is why a dry run stopped: the first failure in item order.
type PlanStop struct {
	Node  string `json:"node"`
	Item  string `json:"item,omitempty"`
	Error string `json:"error"`
	// DependsOn names the nodes whose placeholders the failing node read: the
	// real run may well not fail there.
	DependsOn []string `json:"depends_on,omitempty"`
}

// Exceeded reports whether a budget would be exceeded.
func (p *Plan) Exceeded() bool {
	for _, b := range p.Budgets {
		if b.Status == Exceeded {
			return true
		}
	}
	return false
}

// PlanOptions configure NewPlan.
type PlanOptions struct {
	// MaxWorkers caps actions in flight; 0 means limits.concurrency, else 16.
	MaxWorkers int
	// Budget, when a field is set, replaces that cap of limits.budget.
	Budget action.Budget
	// Getenv reads the environment (env(), models named by a variable); nil
	// means os.Getenv.
	Getenv func(string) string
	// AllowPaths are directories read-only file actions may read besides the
	// workflow's; Private those they may never read (the run store).
	AllowPaths, Private []string
}

// NewPlan works out the plan of a run of wf with inputs. Invalid inputs are an
// *runtime.InputError; a dry run that fails is not an error: the plan says where
// it stopped (Plan.Stopped).
func NewPlan(ctx context.Context, wf *spec.Workflow, inputs map[string]any, opts PlanOptions) (*Plan, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	p := newPlanner(wf, opts)
	stats := &runtime.Stats{}
	res, err := runtime.Run(ctx, wf, inputs, runtime.Options{RunID: "plan", MaxWorkers: opts.MaxWorkers,
		Executor: p, Clock: noWait{}, Getenv: withoutSecrets(opts.Getenv), Stats: stats})
	var ie *runtime.InputError
	if res == nil || errors.As(err, &ie) || ctx.Err() != nil {
		return nil, err
	}
	t := analyse(wf)
	f := &figures{plan: &Plan{Workflow: wf.Name, File: wf.File, MaxWorkers: res.MaxWorkers}, p: p, t: t, opts: opts,
		stats: map[[2]string]*runtime.NodeStats{}}
	for _, ns := range stats.Nodes() {
		f.stats[[2]string{ns.Workflow, ns.Node}] = ns
	}
	f.rows = t.rows
	f.collect(wf)
	f.nodes()
	f.rates()
	f.budgets(wf)
	if err != nil {
		f.stopped(err)
	}
	return f.plan, nil
}

// secretPlaceholder is what a variable that looks like a secret's (see
// spec.LooksSecret) reads as in a plan when it is not set: a plan makes no call
// that needs a secret, and need not be given one.
const secretPlaceholder = "flowrun-plan-secret"

// withoutSecrets reads the environment, with secretPlaceholder for secrets that
// are not set.
func withoutSecrets(getenv func(string) string) func(string) string {
	return func(name string) string {
		if v := getenv(name); v != "" || !spec.LooksSecret(name) {
			return v
		}
		return secretPlaceholder
	}
}

// stopped records why the dry run failed: its first failure in item order.
func (f *figures) stopped(err error) {
	st := &PlanStop{Error: err.Error()}
	var re *runtime.RunError
	if errors.As(err, &re) {
		st.Error = re.Err.Error()
		for _, fl := range re.Failures {
			if !fl.Tolerated && !fl.Handled {
				st.Node, st.Item, st.Error = fl.Node, fl.Item, fl.Error
				break
			}
		}
	}
	for _, r := range f.rows {
		if r.node.Name != st.Node {
			continue
		}
		deps := union(r.reach, f.t.with(r.wf, r.node), f.t.out[r.node])
		if r.node.Map != nil {
			deps.add(f.t.count(r.wf, r.node.Map))
		}
		st.DependsOn = deps.list()
		break
	}
	f.plan.Stopped = st
}
