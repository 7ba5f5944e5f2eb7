package limit

import (
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// figures turns a dry run's counts, the runtime's statistics and the taint
// analysis into a Plan.
type figures struct {
	plan   *Plan
	p      *planner
	t      *taint
	opts   PlanOptions
	stats  map[[2]string]*runtime.NodeStats // by workflow and node name
	rows   []*row
	d      declared
	prices map[string]spec.Price
	deps   map[*spec.Node]origins // what a row's counts depend on
	// priced says that dollars matter: the workflow has prices or a budget in
	// dollars. Otherwise no model is said to lack a price.
	priced bool
}

// collect gathers the rate limits and prices of wf and its sub-workflows.
func (f *figures) collect(wf *spec.Workflow) {
	f.d = declarations(wf)
	f.prices = f.d.prices
	f.priced = len(f.prices) > 0 || f.d.usd || runCaps(wf, f.opts.Budget).USD > 0
	f.plan.Priced = f.priced
	f.deps = map[*spec.Node]origins{}
	for _, r := range f.rows {
		deps := union(r.reach)
		if r.node.Map != nil {
			deps.add(f.t.count(r.wf, r.node.Map))
		}
		f.deps[r.node] = deps
	}
}

// width is the items of a map or parallel in flight at most, per run.
func (f *figures) width(w *spec.Workflow, n *spec.Node) int64 {
	if ns := f.stats[[2]string{w.Name, n.Name}]; ns != nil {
		return ns.Width.Load()
	}
	return 0
}

// around is how many runs of a row's node may go at once: the product of the
// widths of the maps and parallels around it.
func (f *figures) around(r *row) int64 {
	prod := int64(1)
	wf := f.p.top
	for _, c := range r.around {
		if c.Kind == spec.MapNode || c.Kind == spec.ParallelNode {
			prod = min(prod*max(f.width(wf, c), 0), math.MaxInt32)
		}
		if c.Kind == spec.WorkflowNode && c.Workflow != nil {
			wf = c.Workflow
		}
	}
	return prod
}

// nodes makes a PlanNode of every row, and the totals.
func (f *figures) nodes() {
	total := &f.plan.Total
	totalDeps, unpriced := origins{}, map[string]bool{}
	byModel := map[string]*usage{}
	for _, r := range f.rows {
		n := r.node
		pn := PlanNode{Path: path(r), Workflow: r.wf.Name, Node: n.Name, Depth: len(r.around), Kind: n.Kind.String()}
		deps := f.deps[n]
		pn.DependsOn = deps.list()
		exact := len(deps) == 0
		switch n.Kind {
		case spec.MapNode, spec.ParallelNode:
			if exact {
				items := int64(0)
				if ns := f.stats[[2]string{r.wf.Name, n.Name}]; ns != nil {
					items = ns.Items.Load()
				}
				peak := min(items, f.around(r)*f.width(r.wf, n))
				pn.Items, pn.Peak = &items, &peak
			}
		case spec.ActionNode:
			f.action(r, &pn, exact)
			if !exact {
				totalDeps.add(deps)
				break
			}
			total.Calls += *pn.Calls
			if tl := f.p.nodes[n]; tl != nil {
				for model, u := range tl.models {
					m := byModel[model]
					if m == nil {
						m = &usage{}
						byModel[model] = m
					}
					m.input += u.input
					m.output += u.output
				}
			}
			for _, m := range pn.Unpriced {
				unpriced[m] = true
			}
		}
		f.plan.Nodes = append(f.plan.Nodes, pn)
	}
	for _, model := range slices.Sorted(maps.Keys(byModel)) {
		u := byModel[model]
		total.Tokens.Input += u.input
		total.Tokens.Output += u.output
		if pr, ok := f.prices[model]; ok {
			total.USD += f.cost(u, pr)
		}
	}
	total.USD = nano(total.USD)
	total.Unpriced = slices.Sorted(maps.Keys(unpriced))
	total.DependsOn = totalDeps.list()
	total.Complete = len(totalDeps) == 0
}

// action fills in an action node's calls, tokens, dollars and peak.
func (f *figures) action(r *row, pn *PlanNode, exact bool) {
	n := r.node
	pn.Action = n.Action.Name
	pn.Rate = n.RateNames()
	tl := f.p.nodes[n]
	if tl == nil {
		tl = &tally{}
	}
	calls := tl.calls
	if exact {
		pn.Calls = &calls
		peak := min(calls, int64(f.plan.MaxWorkers), f.around(r))
		for _, rt := range n.Rate {
			if rt.Concurrency > 0 {
				peak = min(peak, int64(rt.Concurrency))
			}
		}
		pn.Peak = &peak
	}
	if n.Action.Meter == nil {
		return
	}
	pn.Approximate = f.t.with(r.wf, n).list()
	var tok Tokens
	usd, priced := 0.0, false
	for _, model := range slices.Sorted(maps.Keys(tl.models)) {
		u := tl.models[model]
		tok.Input += u.input
		tok.Output += u.output
		pn.Models = append(pn.Models, model)
		if pr, ok := f.prices[model]; ok {
			usd += f.cost(u, pr)
			priced = true
		} else if f.priced {
			pn.Unpriced = append(pn.Unpriced, model)
		}
	}
	switch {
	case exact:
		pn.Tokens = &tok
		usd = nano(usd)
		if priced {
			pn.USD = &usd
		}
	case calls > 0:
		pn.PerCall = &Tokens{Input: tok.Input / calls, Output: tok.Output / calls}
	}
}

// cost is what usage costs at a price, to a billionth of a dollar (so that sums
// print without float noise).
func (f *figures) cost(u *usage, p spec.Price) float64 {
	return nano((float64(u.input)*p.Input + float64(u.output)*p.Output) / 1e6)
}

// nano rounds dollars to a billionth.
func nano(usd float64) float64 { return math.Round(usd*1e9) / 1e9 }

// path names a row's node after the nodes around it.
func path(r *row) string {
	parts := make([]string, 0, len(r.around)+1)
	for _, c := range r.around {
		parts = append(parts, c.Name)
	}
	return strings.Join(append(parts, r.node.Name), "/")
}

// rates works out what each rate limit that a node names implies.
func (f *figures) rates() {
	f.plan.Rates = []PlanRate{}
	for _, name := range f.d.names {
		rt := f.d.rates[name]
		pr := PlanRate{Name: name, Concurrency: rt.Concurrency, Complete: true}
		named := false
		for i, r := range f.rows {
			if r.node.Kind != spec.ActionNode || !slices.Contains(r.node.RateNames(), name) {
				continue
			}
			named = true
			pn := f.plan.Nodes[i]
			if pn.Calls == nil {
				pr.Complete = false
				continue
			}
			pr.Calls += *pn.Calls
			if pn.Tokens != nil {
				pr.TokensUsed += pn.Tokens.Total()
			}
		}
		if !named {
			continue
		}
		if rt.Requests != nil {
			pr.Requests = rt.Requests.Src
			pr.Seconds, pr.Binding = float64(pr.Calls)/rt.Requests.PerSecond(), "requests"
		}
		if rt.Tokens != nil {
			pr.Tokens = rt.Tokens.Src
			if s := float64(pr.TokensUsed) / rt.Tokens.PerSecond(); s > pr.Seconds {
				pr.Seconds, pr.Binding = s, "tokens"
			}
		}
		f.plan.Rates = append(f.plan.Rates, pr)
	}
}

// budgets checks the run's budget and every map's.
func (f *figures) budgets(wf *spec.Workflow) {
	f.plan.Budgets = []PlanBudget{}
	tot := f.plan.Total
	if caps := runCaps(wf, f.opts.Budget); caps.Calls > 0 || caps.Tokens > 0 || caps.USD > 0 {
		b := PlanBudget{Name: "run", Caps: PlanUse{Calls: caps.Calls, Tokens: caps.Tokens, USD: caps.USD},
			Need: PlanUse{Calls: tot.Calls, Tokens: tot.Tokens.Total(), USD: tot.USD}, DependsOn: tot.DependsOn}
		if caps.USD > 0 {
			b.Unpriced = tot.Unpriced
		}
		b.Exceeded = over(b.Caps, b.Need)
		f.plan.Budgets = append(f.plan.Budgets, judge(b))
	}
	for _, r := range f.rows {
		mp := r.node.Map
		if mp == nil || mp.Budget == nil {
			continue
		}
		caps := PlanUse{Calls: mp.Budget.Calls, Tokens: mp.Budget.Tokens, USD: mp.Budget.USD}
		b := PlanBudget{Name: r.node.Name, Caps: caps}
		deps, unpriced := union(f.deps[r.node]), map[string]bool{}
		for _, scope := range slices.Sorted(maps.Keys(f.p.scopes)) {
			st := f.p.scopes[scope]
			if st.budget.Node != r.node.Name {
				continue
			}
			b.Runs++
			var need PlanUse
			byModel := map[string]*usage{}
			for n, tl := range st.nodes {
				if d := f.deps[n]; len(d) > 0 {
					deps.add(d)
					continue
				}
				need.Calls += tl.calls
				for model, u := range tl.models {
					m := byModel[model]
					if m == nil {
						m = &usage{}
						byModel[model] = m
					}
					m.input += u.input
					m.output += u.output
				}
			}
			for _, model := range slices.Sorted(maps.Keys(byModel)) {
				u := byModel[model]
				need.Tokens += u.input + u.output
				if pr, ok := f.prices[model]; ok {
					need.USD += f.cost(u, pr)
				} else if caps.USD > 0 {
					unpriced[model] = true
				}
			}
			need.USD = nano(need.USD)
			if len(over(caps, need)) > 0 {
				b.Over++
			}
			b.Need = PlanUse{Calls: max(b.Need.Calls, need.Calls), Tokens: max(b.Need.Tokens, need.Tokens), USD: max(b.Need.USD, need.USD)}
		}
		b.Exceeded = over(caps, b.Need)
		b.DependsOn, b.Unpriced = deps.list(), slices.Sorted(maps.Keys(unpriced))
		f.plan.Budgets = append(f.plan.Budgets, judge(b))
	}
}

// over lists the caps a need passes.
func over(caps, need PlanUse) []string {
	var out []string
	if caps.Calls > 0 && need.Calls > caps.Calls {
		out = append(out, "calls")
	}
	if caps.Tokens > 0 && need.Tokens > caps.Tokens {
		out = append(out, "tokens")
	}
	if caps.USD > 0 && need.USD > caps.USD+1e-12 {
		out = append(out, "usd")
	}
	return out
}

// judge sets a budget's status.
func judge(b PlanBudget) PlanBudget {
	switch {
	case len(b.Exceeded) > 0:
		b.Status = Exceeded
	case len(b.DependsOn) > 0 || len(b.Unpriced) > 0:
		b.Status = Unknown
	default:
		b.Status = Fits
	}
	return b
}
