package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Rate is a named rate limit (limits.rate): every call of every node that names it
// (rate: NAME), in any map or sub-workflow of a run, shares it.
type Rate struct {
	Name string
	Pos  Pos
	// Requests and Tokens are the allowed calls and tokens per period; nil when not
	// given.
	Requests, Tokens *Per
	// Concurrency caps the limit's calls in flight; 0 means the run's limit. A
	// server's 429 halves the effective concurrency, which then recovers.
	Concurrency int
}

// Per is an amount per period: 500/m.
type Per struct {
	N   float64
	Per time.Duration
	Src string // as written
}

// PerSecond is the amount per second.
func (p *Per) PerSecond() float64 { return p.N / p.Per.Seconds() }

// Budget caps what a run (limits.budget) or one run of a map (map.budget) may use:
// tokens, US dollars and calls. A zero field is no cap.
type Budget struct {
	Pos    Pos
	Tokens int64
	USD    float64
	Calls  int64
}

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	Input, Output float64
}

var perRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*([smh])\s*$`)

// rates decodes limits.rate.
func (p *parser) rates(n *yaml.Node) {
	m := p.mapping(n, nil, "limits.rate")
	if m == nil {
		return
	}
	lim := &p.wf.Limits
	lim.Rates = map[string]*Rate{}
	for i, k := range m.keys {
		what := "limits.rate." + k.Value
		if !nameSchemaRE.MatchString(k.Value) {
			p.errorf(k, "%s: %q is not a limit name (letters, digits, _ and -)", what, k.Value)
		}
		r := &Rate{Name: k.Value, Pos: p.pos(k)}
		rm := p.mapping(m.vals[i], rateDef, what)
		if rm == nil {
			continue
		}
		if v := rm.get(p, "requests"); v != nil {
			r.Requests = p.per(v, what+".requests")
		}
		if v := rm.get(p, "tokens"); v != nil {
			r.Tokens = p.per(v, what+".tokens")
		}
		if v := rm.get(p, "concurrency"); v != nil {
			r.Concurrency, _ = p.integer(v, what+".concurrency", 1)
		}
		if rm.key("requests") == nil && rm.key("tokens") == nil && rm.key("concurrency") == nil {
			p.errorf(m.vals[i], "%s: give requests, tokens or concurrency (for example requests: 500/m)", what)
		}
		lim.Rates[k.Value] = r
		lim.RateNames = append(lim.RateNames, k.Value)
	}
}

// per decodes an amount per period: N/s, N/m or N/h.
func (p *parser) per(n *yaml.Node, what string) *Per {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: expected N/s, N/m or N/h (such as 500/m), got %s", what, kindOf(n))
		return nil
	}
	sub := perRE.FindStringSubmatch(n.Value)
	if sub == nil {
		hint := ""
		if i := strings.IndexByte(n.Value, '/'); i > 0 {
			unit := strings.TrimSpace(n.Value[i+1:])
			switch {
			case strings.HasPrefix(unit, "sec"):
				hint = fmt.Sprintf("; write %s/s", strings.TrimSpace(n.Value[:i]))
			case strings.HasPrefix(unit, "min"):
				hint = fmt.Sprintf("; write %s/m", strings.TrimSpace(n.Value[:i]))
			case strings.HasPrefix(unit, "h"):
				hint = fmt.Sprintf("; write %s/h", strings.TrimSpace(n.Value[:i]))
			}
		}
		if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
			hint = fmt.Sprintf("; write %s/s, %s/m or %s/h", n.Value, n.Value, n.Value)
		}
		p.errorf(n, "%s: %q: expected N/s, N/m or N/h (such as 500/m)%s", what, n.Value, hint)
		return nil
	}
	v, _ := strconv.ParseFloat(sub[1], 64)
	if v <= 0 {
		p.errorf(n, "%s: %q: the amount must be more than 0", what, n.Value)
		return nil
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[sub[2]]
	return &Per{N: v, Per: per, Src: strings.TrimSpace(n.Value)}
}

// budget decodes limits.budget or a map's budget.
func (p *parser) budget(n *yaml.Node, what string) *Budget {
	m := p.mapping(n, budgetDef, what)
	if m == nil {
		return nil
	}
	b := &Budget{Pos: p.pos(n)}
	if v := m.get(p, "tokens"); v != nil {
		t, _ := p.integer(v, what+".tokens", 1)
		b.Tokens = int64(t)
	}
	if v := m.get(p, "calls"); v != nil {
		c, _ := p.integer(v, what+".calls", 1)
		b.Calls = int64(c)
	}
	if v := m.get(p, "usd"); v != nil {
		if f, ok := p.number(v, what+".usd"); ok {
			if f <= 0 {
				p.errorf(v, "%s.usd: expected more than 0, got %v", what, f)
			}
			b.USD = f
		}
	}
	if n = p.resolve(n); n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		p.errorf(n, "%s: give tokens, usd or calls (for example usd: 5.00)", what)
	}
	return b
}

// prices decodes limits.prices.
func (p *parser) prices(n *yaml.Node) {
	m := p.mapping(n, nil, "limits.prices")
	if m == nil {
		return
	}
	lim := &p.wf.Limits
	lim.Prices = map[string]Price{}
	for i, k := range m.keys {
		what := "limits.prices." + k.Value
		pm := p.mapping(m.vals[i], priceDef, what)
		if pm == nil {
			continue
		}
		var pr Price
		for _, f := range []struct {
			key string
			to  *float64
		}{{"input", &pr.Input}, {"output", &pr.Output}} {
			v := pm.get(p, f.key)
			if v == nil {
				p.errorf(m.vals[i], "%s: missing key %q (US dollars per million %s tokens)", what, f.key, f.key)
				continue
			}
			if x, ok := p.number(v, what+"."+f.key); ok {
				if x < 0 {
					p.errorf(v, "%s.%s: expected 0 or more, got %v", what, f.key, x)
				}
				*f.to = x
			}
		}
		lim.Prices[k.Value] = pr
	}
}

// nodeRate resolves an action node's rate: a limit's name, or a list of them.
func (p *parser) nodeRate(node *Node, n *yaml.Node, what string) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, item := range items {
		item = p.resolve(item)
		name, ok := p.str(item, what)
		if !ok {
			continue
		}
		r := p.wf.Limits.Rates[name]
		if r == nil {
			hint := suggest(name, p.wf.Limits.RateNames)
			if hint == "" {
				hint = "; declare it under limits.rate (for example limits: {rate: {" + name + ": {requests: 500/m}}})"
			}
			p.errorf(item, "%s: unknown limit %q%s", what, name, hint)
			continue
		}
		if slices.Contains(node.Rate, r) {
			p.errorf(item, "%s names %q twice", what, name)
			continue
		}
		node.Rate = append(node.Rate, r)
		node.rateNames = append(node.rateNames, r.Name)
	}
}

// checkPrices reports the metered action nodes, in this file and its
// sub-workflows, whose model has no price while a budget in dollars applies.
func (p *parser) checkPrices() {
	wf := p.wf
	needs := wf.Limits.Budget != nil && wf.Limits.Budget.USD > 0
	seen := map[*Workflow]bool{}
	var walk func(w *Workflow, needs bool, prices func(string) bool)
	walk = func(w *Workflow, needs bool, prices func(string) bool) {
		if seen[w] {
			return
		}
		seen[w] = true
		for _, node := range w.Nodes {
			if node.Map != nil && node.Map.Budget != nil && node.Map.Budget.USD > 0 {
				needs = true
			}
		}
		for _, node := range w.Nodes {
			switch {
			case node.Workflow != nil:
				inner := node.Workflow
				walk(inner, needs, func(m string) bool { _, ok := inner.Limits.Prices[m]; return ok || prices(m) })
			case node.Action != nil && node.Action.Meter != nil && needs && node.With != nil:
				mv := node.With.Field(node.Action.Meter.ModelParam)
				if mv == nil {
					continue
				}
				model, ok := mv.Const()
				if s, isStr := model.(string); ok && isStr && s != "" && !prices(s) {
					p.errs = append(p.errs, &Error{Pos: mv.Pos, Msg: fmt.Sprintf(
						"no price for model %q, which a budget in usd needs: add it under limits.prices (for example %s: {input: 0.15, output: 0.60}, US dollars per million tokens)", s, s)})
				}
			}
		}
	}
	walk(wf, needs, func(m string) bool { _, ok := wf.Limits.Prices[m]; return ok })
}
