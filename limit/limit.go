// Package limit wraps an executor with a run's rate limits and budgets.
//
// Rate limits (limits.rate) are named and shared by every call of every node that
// names them, wherever the node is: nested maps and sub-workflows included. Each
// is a token bucket for requests and one for tokens (a call's tokens are estimated
// before it from the action's Meter and settled from its usage after), and a cap
// on calls in flight. A server that answers 429 pauses the limit for every call
// until its Retry-After, and halves the limit's rate and concurrency, which
// successes then bring back up step by step (AIMD). Budgets (limits.budget, and a
// map's budget) count calls, tokens and dollars (from limits.prices): once the next
// call would pass one, no new call starts; calls in flight finish.
//
// Limits sit in the coordinator, in front of whatever carries the calls out (in
// this process, or on NATS workers), so they hold across machines.
package limit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// maxRedispatch bounds how often one call goes out again after 429s before the
// rate-limited error is the call's outcome (and the node's retry policy sees it).
const maxRedispatch = 10

// Options configure Limits.
type Options struct {
	// Registry holds the actions' declarations (their Meters).
	Registry *action.Registry
	// Clock is the run's time; nil means runtime.WallClock.
	Clock runtime.Clock
	// Getenv reads the environment, for models named by a variable; nil means
	// os.Getenv.
	Getenv func(string) string
	// MaxConcurrency is a rate limit's calls in flight when it names none: the
	// run's own limit.
	MaxConcurrency int
	// Budget, when a field is set, replaces that cap of the workflow's
	// limits.budget (flowrun resume --budget-usd).
	Budget action.Budget
	// Spent is what earlier attempts of the run spent, by budget: "" for the
	// run's, a map budget's scope for the others.
	Spent map[string]runtime.LimitUsage
}

// Limits is an Executor that enforces a run's rate limits and budgets around
// another. It is safe for concurrent use, and serves one run.
type Limits struct {
	next   action.Executor
	opts   Options
	clock  runtime.Clock
	rates  map[string]*rate
	names  []string // of the rates, sorted
	prices map[string]spec.Price
	usd    bool // a budget in dollars applies somewhere

	mu     sync.Mutex
	total  spent              // every call that went through a limit or budget
	run    *budget            // nil: no budget for the run
	scopes map[string]*budget // map budgets, by scope
	order  []*budget          // every budget, in the order first used
}

// New returns the Limits of a run of wf around next. A workflow without limits
// gives Limits that pass calls straight through.
func New(wf *spec.Workflow, next action.Executor, opts Options) *Limits {
	if opts.Clock == nil {
		opts.Clock = runtime.WallClock
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	l := &Limits{next: next, opts: opts, clock: opts.Clock, rates: map[string]*rate{}, prices: map[string]spec.Price{},
		scopes: map[string]*budget{}}
	d := declarations(wf)
	for _, name := range d.names {
		l.rates[name] = newRate(d.rates[name], opts.MaxConcurrency, opts.Clock)
	}
	l.names, l.prices, l.usd = d.names, d.prices, d.usd
	caps := runCaps(wf, opts.Budget)
	if caps.Tokens > 0 || caps.USD > 0 || caps.Calls > 0 {
		l.run = &budget{name: "run", caps: caps, spent: spentOf(opts.Spent[""])}
		l.order = append(l.order, l.run)
		l.usd = l.usd || caps.USD > 0
	}
	return l
}

// declared is what a workflow and its sub-workflows declare for limits: the
// rate limits and prices (the outermost declaration of a name wins), and whether
// a map has a budget in dollars.
type declared struct {
	rates  map[string]*spec.Rate
	names  []string // of the rates, sorted
	prices map[string]spec.Price
	usd    bool
}

func declarations(wf *spec.Workflow) declared {
	d := declared{rates: map[string]*spec.Rate{}, prices: map[string]spec.Price{}}
	for _, w := range workflows(wf) {
		for _, name := range w.Limits.RateNames {
			if d.rates[name] == nil {
				d.rates[name] = w.Limits.Rates[name]
				d.names = append(d.names, name)
			}
		}
		for model, p := range w.Limits.Prices {
			if _, ok := d.prices[model]; !ok {
				d.prices[model] = p
			}
		}
		for _, n := range w.Nodes {
			if n.Map != nil && n.Map.Budget != nil && n.Map.Budget.USD > 0 {
				d.usd = true
			}
		}
	}
	slices.Sort(d.names)
	return d
}

// runCaps are the caps of a run's budget: limits.budget, each cap replaced by
// override's when that is set (flowrun run --budget-usd).
func runCaps(wf *spec.Workflow, override action.Budget) action.Budget {
	caps := action.Budget{Scope: "run"}
	if b := wf.Limits.Budget; b != nil {
		caps.Tokens, caps.USD, caps.Calls = b.Tokens, b.USD, b.Calls
	}
	if o := override; o.Tokens > 0 || o.USD > 0 || o.Calls > 0 {
		caps.Tokens, caps.USD, caps.Calls = cmpOr(o.Tokens, caps.Tokens), cmpOr(o.USD, caps.USD), cmpOr(o.Calls, caps.Calls)
	}
	return caps
}

func cmpOr[T int64 | float64](a, b T) T {
	if a != 0 {
		return a
	}
	return b
}

// Execute carries out a call within its rate limits and budgets.
func (l *Limits) Execute(ctx context.Context, call *action.Call) (map[string]any, error) {
	rates := l.ratesOf(call.Limits)
	budgets := l.budgetsOf(call)
	if len(rates) == 0 && len(budgets) == 0 {
		return l.next.Execute(ctx, call)
	}
	var meter *action.Meter
	if s := l.opts.Registry.Lookup(call.Action); s != nil {
		meter = s.Meter
	}
	var est action.Usage
	var price spec.Price
	if meter != nil {
		est = meter.Estimate(call.Params)
		if l.usd && len(budgets) > 0 {
			model := meter.Model(call.Params, l.opts.Getenv)
			p, ok := l.prices[model]
			if !ok {
				return nil, &action.Error{Permanent: true, Msg: fmt.Sprintf(
					"no price for model %q, which the budget in usd needs: add it under limits.prices (%s: {input: ..., output: ...}, US dollars per million tokens)", model, model)}
			}
			price = p
		}
	}
	want := spent{Calls: 1, Tokens: int64(est.Total()), USD: cost(est, price)}
	for i, b := range budgets {
		if msg, ok := b.reserve(want); !ok {
			for _, done := range budgets[:i] {
				done.settle(want, spent{})
			}
			l.reached(ctx, b, call)
			return nil, &action.Error{Kind: action.KindBudget, Permanent: true, Msg: msg}
		}
	}
	c := call
	if len(rates) > 0 {
		cp := *call
		cp.Throttled = true
		c = &cp
	}
	out, held, err := l.dispatch(ctx, c, rates, est.Total())
	used := action.Usage{}
	if err == nil {
		used = est
		if meter != nil {
			if u, ok := meter.Used(out); ok {
				used = u
			}
		}
	}
	usd := cost(used, price)
	for _, r := range rates {
		if held {
			r.done(est.Total(), used.Total(), err == nil)
		}
		r.addUSD(usd)
	}
	got := spent{Calls: 1, Tokens: int64(used.Total()), USD: usd}
	for _, b := range budgets {
		b.settle(want, got)
	}
	l.mu.Lock()
	l.total.add(got)
	l.mu.Unlock()
	return out, err
}

// Totals is what the calls under a limit or a budget used so far in this attempt
// of the run (for a progress display).
func (l *Limits) Totals() runtime.LimitUsage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return runtime.LimitUsage{Calls: l.total.Calls, Tokens: l.total.Tokens, USD: l.total.USD}
}

// dispatch sends the call once its limits allow it, again after each 429 (every
// call of the limits waits out the pause), at most maxRedispatch times. When it
// sent the call, it returns holding the call's slots (held), which the caller
// frees.
func (l *Limits) dispatch(ctx context.Context, call *action.Call, rates []*rate, tokens int) (out map[string]any, held bool, err error) {
	for n := 0; ; n++ {
		for i, r := range rates {
			if _, err := r.acquire(ctx, tokens); err != nil {
				for _, held := range rates[:i] {
					held.release(true)
				}
				return nil, false, err
			}
		}
		c := call
		if n > 0 {
			cp := *call
			cp.Resend = n
			c = &cp
		}
		out, err := l.next.Execute(ctx, c)
		var ae *action.Error
		if err == nil || !errors.As(err, &ae) || ae.Kind != action.KindRateLimited || len(rates) == 0 || n == maxRedispatch || ctx.Err() != nil {
			return out, true, err
		}
		ra := time.Duration(-1)
		if s, ok := ae.Fields["retry_after"].(float64); ok && s > 0 {
			ra = seconds(s)
		}
		for _, r := range rates {
			pause, first := r.limited(ra)
			if first {
				u := r.usage()
				runtime.Emit(ctx, runtime.Event{Type: runtime.LimitPaused, Limit: r.name, Node: call.Node, Item: call.Item,
					DelayMS: float64(pause.Microseconds()) / 1000, Error: ae.Msg, Usage: &u})
			}
		}
	}
}

// ratesOf returns the named limits, in name order.
func (l *Limits) ratesOf(names []string) []*rate {
	if len(names) == 0 {
		return nil
	}
	out := make([]*rate, 0, len(names))
	for _, name := range names {
		if r := l.rates[name]; r != nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *rate) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	return out
}

// budgetsOf returns the budgets a call counts against: the run's, then its maps'.
func (l *Limits) budgetsOf(call *action.Call) []*budget {
	if l.run == nil && len(call.Budgets) == 0 {
		return nil
	}
	var out []*budget
	if l.run != nil {
		out = append(out, l.run)
	}
	if len(call.Budgets) > 0 {
		l.mu.Lock()
		for _, cb := range call.Budgets {
			b := l.scopes[cb.Scope]
			if b == nil {
				b = &budget{name: cb.Node, caps: cb, spent: spentOf(l.opts.Spent[cb.Scope])}
				l.scopes[cb.Scope] = b
				l.order = append(l.order, b)
				l.usd = l.usd || cb.USD > 0
			}
			out = append(out, b)
		}
		l.mu.Unlock()
	}
	return out
}

// reached tells the run's observers, once per budget, that it is reached.
func (l *Limits) reached(ctx context.Context, b *budget, call *action.Call) {
	b.mu.Lock()
	first := !b.told
	b.told = true
	b.mu.Unlock()
	if first {
		u := b.usage()
		runtime.Emit(ctx, runtime.Event{Type: runtime.BudgetReached, Limit: b.name, Node: call.Node, Item: call.Item, Error: b.reached, Usage: &u})
	}
}

// cost is what usage costs at a price per million tokens.
func cost(u action.Usage, p spec.Price) float64 {
	return (float64(u.Input)*p.Input + float64(u.Output)*p.Output) / 1e6
}

// Report is the limits' totals, for the end of the run (runtime.Reporter): a
// limit.finished event per rate limit, then per budget.
func (l *Limits) Report() []runtime.Event {
	var out []runtime.Event
	for _, s := range l.Stats() {
		u := s.Usage
		out = append(out, runtime.Event{Type: runtime.LimitFinished, Limit: s.Name, Usage: &u})
	}
	return out
}

// Stat is one limit's or budget's totals.
type Stat struct {
	// Name is the rate limit's name, "budget" for the run's budget, or "budget of
	// NODE" for a map's.
	Name   string
	Budget bool
	Usage  runtime.LimitUsage
	// Reached says why a budget stopped new calls ("" if it did not).
	Reached string
}

// Stats are the totals of every rate limit (in name order) and budget.
func (l *Limits) Stats() []Stat {
	var out []Stat
	for _, name := range l.names {
		out = append(out, Stat{Name: name, Usage: l.rates[name].usage()})
	}
	l.mu.Lock()
	budgets := slices.Clone(l.order)
	l.mu.Unlock()
	for _, b := range budgets {
		name := "budget"
		if b != l.run {
			name = "budget of " + b.name
		}
		b.mu.Lock()
		reached := b.reached
		b.mu.Unlock()
		out = append(out, Stat{Name: name, Budget: true, Usage: b.usage(), Reached: reached})
	}
	return out
}

// Spent is what the run's budgets have counted, earlier attempts included, for
// the next attempt's Options.Spent (store.Spender).
func (l *Limits) Spent() map[string]runtime.LimitUsage {
	out := map[string]runtime.LimitUsage{}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run != nil {
		out[""] = l.run.usage()
	}
	for scope, b := range l.scopes {
		out[scope] = b.usage()
	}
	return out
}

// Reached is why the run stopped for a budget, or "".
func (l *Limits) Reached() string {
	for _, s := range l.Stats() {
		if s.Reached != "" {
			return s.Reached
		}
	}
	return ""
}
