package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var nameSchemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// workflowNode loads the sub-workflow a node names and checks its inputs.
func (p *parser) workflowNode(node *Node, m *mapping, what string) {
	wn := m.get(p, "workflow")
	ref, ok := p.str(wn, what+".workflow")
	if !ok {
		return
	}
	node.WorkflowRef = ref
	node.Workflow = p.include(wn, ref)
	p.with(node, m, what, "inputs", "workflow", &scope{state: true}, func(at *yaml.Node, wm *mapping) {
		if sub := node.Workflow; sub != nil {
			p.checkInputs(sub, at, wm)
		}
	})
}

// with compiles a node's with: an object written out, or one expression giving
// it, in scope sc. check checks the entries written out against what the node takes
// (wm is nil when with is absent); its errors point at at: with, else the node's
// kind key.
func (p *parser) with(node *Node, m *mapping, what, entries, kindKey string, sc *scope, check func(at *yaml.Node, wm *mapping)) {
	wn := m.get(p, "with")
	if wn == nil {
		check(m.key(kindKey), nil)
		return
	}
	if wn.Kind != yaml.MappingNode {
		node.With = p.template(wn, sc)
		if node.With != nil && node.With.kind != exprValue {
			p.errorf(wn, "%s.with: expected a mapping of %s, got %s", what, entries, kindOf(wn))
		}
		return
	}
	wm := p.mapping(wn, nil, what+".with")
	if wm == nil {
		return
	}
	node.With = p.object(wm, sc)
	check(m.key("with"), wm)
	node.With.fold()
}

// checkInputs checks a sub-workflow's inputs against its state fields.
func (p *parser) checkInputs(sub *Workflow, at *yaml.Node, wm *mapping) {
	given := map[string]bool{}
	if wm != nil {
		for _, k := range wm.keys {
			if sub.fields[k.Value] == nil {
				p.errorf(k, "workflow %s has no state field %q%s", sub.File, k.Value,
					suggestOrList(k.Value, sub.outputNamesAll(), "state fields"))
			}
			given[k.Value] = true
		}
	}
	for _, f := range sub.State {
		if f.Required && !given[f.Name] {
			p.errorf(at, "workflow %s requires input %q: add it to with", sub.File, f.Name)
		}
	}
}

func (w *Workflow) outputNamesAll() []string {
	names := make([]string, len(w.State))
	for i, f := range w.State {
		names[i] = f.Name
	}
	return names
}

// include loads a sub-workflow relative to this file, once per file, refusing cycles.
func (p *parser) include(at *yaml.Node, ref string) *Workflow {
	display := filepath.Join(filepath.Dir(p.name), filepath.FromSlash(ref))
	abs := filepath.Join(p.wf.Dir, filepath.FromSlash(ref))
	if filepath.IsAbs(ref) {
		display, abs = ref, ref
	}
	if !p.inside(abs) {
		p.errorf(at, "workflow %q lies outside the workflow's directory (%s): sub-workflows must lie inside it, or in a directory given with --allow-path", ref, strings.Join(p.allowed, ", "))
		return nil
	}
	if p.loading[abs] {
		p.errorf(at, "workflow %q includes itself (through %s): sub-workflows cannot form a cycle", ref, display)
		return nil
	}
	if wf, ok := p.done[abs]; ok {
		if wf == nil {
			p.errorf(at, "workflow %q is invalid (see the errors in %s)", ref, display)
		}
		p.addInclude(wf)
		return wf
	}
	src, err := readFile(abs)
	if err != nil {
		hint := ""
		if isNotExist(abs) {
			hint = fmt.Sprintf(" (looked for %s, relative to this file)", display)
		}
		p.errorf(at, "workflow %q: %v%s", ref, err, hint)
		p.done[abs] = nil
		return nil
	}
	nerr := countErrors(p.errs)
	sub := p.loader.parse(display, src)
	if countErrors(p.errs) > nerr {
		p.errorf(at, "workflow %q is invalid (see the errors in %s)", ref, display)
		sub = nil
	}
	p.done[abs] = sub
	p.addInclude(sub)
	return sub
}

// inside reports whether the file at abs (its links resolved) lies in a directory
// sub-workflows may come from.
func (p *parser) inside(abs string) bool {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		real = filepath.Clean(abs) // missing: reported as such if it is inside
	}
	for _, d := range p.allowed {
		if rel, err := filepath.Rel(d, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func isNotExist(path string) bool {
	_, err := os.Stat(path)
	return os.IsNotExist(err)
}

func countErrors(l Errors) int {
	n := 0
	for _, e := range l {
		if e.Severity == SevError {
			n++
		}
	}
	return n
}

func (p *parser) addInclude(sub *Workflow) {
	if sub == nil {
		return
	}
	for _, inc := range p.wf.Includes {
		if inc == sub {
			return
		}
	}
	p.wf.Includes = append(p.wf.Includes, sub)
}

// mapBlock checks a map: block.
func (p *parser) mapBlock(n *yaml.Node, what string) *Map {
	what += ".map"
	m := p.mapping(n, mapDef, what)
	if m == nil {
		return nil
	}
	mp := &Map{Pos: p.pos(n), As: "item"}
	top := &scope{state: true}
	if v := m.get(p, "over"); v == nil {
		p.errorf(n, "%s: missing key \"over\" (the list to fan out over, e.g. over: state.documents)", what)
	} else if v.Kind == yaml.SequenceNode {
		mp.Over = p.template(v, top)
	} else if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
		if e := p.bareExpr(v, what+".over", top); e != nil {
			mp.Over = &Value{Pos: e.Pos, kind: exprValue, expr: e}
		}
	} else {
		p.errorf(v, "%s.over: expected an expression or a list, got %s", what, kindOf(v))
	}
	if v := m.get(p, "as"); v != nil {
		if name, ok := p.str(v, what+".as"); ok {
			switch {
			case !identRE.MatchString(name):
				p.errorf(v, "%s.as: %q is not a variable name (letters, digits and _)", what, name)
			case contains([]string{"state", "input", "output", "error", "run", "env", "index"}, name):
				p.errorf(v, "%s.as: %q is taken by flowrun; choose another name", what, name)
			default:
				mp.As = name
			}
		}
	}
	if v := m.get(p, "batch"); v != nil {
		if v.Kind == yaml.MappingNode {
			if bm := p.mapping(v, batchDef, what+".batch"); bm != nil {
				if x := bm.get(p, "max_items"); x != nil {
					mp.Batch = p.count(x, what+".batch.max_items", 1, top)
				}
				if x := bm.get(p, "max_bytes"); x != nil {
					mp.MaxBytes = p.count(x, what+".batch.max_bytes", 1, top)
				}
				if bm.key("max_items") == nil && bm.key("max_bytes") == nil {
					p.errorf(v, "%s.batch: give max_items, max_bytes or both", what)
				}
			}
		} else {
			mp.Batch = p.count(v, what+".batch", 1, top)
		}
	}
	if v := m.get(p, "budget"); v != nil {
		mp.Budget = p.budget(v, what+".budget")
	}
	if v := m.get(p, "chunks"); v != nil {
		mp.Chunks = p.count(v, what+".chunks", 1, top)
		if m.key("batch") != nil {
			p.errorf(m.key("chunks"), "%s has both batch and chunks: use one", what)
		}
	}
	item := &scope{state: true, item: mp.As}
	route, to := m.get(p, "route"), m.get(p, "to")
	switch {
	case route != nil && to != nil:
		p.errorf(m.key("to"), "%s has both route and to: use to for one worker, route to choose among several", what)
	case route != nil:
		mp.Route = p.cases(route, what+".route", item, true)
	case to != nil:
		if name, ok := p.str(to, what+".to"); ok {
			target := p.ref(to, name, what+".to")
			mp.Route = []Case{{Pos: p.pos(to), To: target}}
		}
	default:
		p.errorf(n, "%s has neither to nor route: add to: <worker node>, or route: [{when: ..., to: ...}]", what)
	}
	if v := m.get(p, "with"); v != nil {
		mp.With = p.template(v, item)
	}
	if v := m.get(p, "concurrency"); v != nil {
		mp.Concurrency = p.count(v, what+".concurrency", 1, top)
	}
	if v := m.get(p, "max_failures"); v != nil {
		mp.MaxFailures = p.count(v, what+".max_failures", 0, top)
	}
	if v := m.get(p, "max_failure_ratio"); v != nil {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
			mp.MaxFailureRatio = p.template(v, top)
		} else if r, ok := p.number(v, what+".max_failure_ratio"); ok {
			if r < 0 || r > 1 {
				p.errorf(v, "%s.max_failure_ratio: expected a fraction from 0 to 1, got %v (for 5%%, write 0.05)", what, r)
			}
			mp.MaxFailureRatio = &Value{Pos: p.pos(v), lit: r}
		}
	}
	return mp
}

// parallel checks a parallel: block.
func (p *parser) parallel(node *Node, n *yaml.Node, what string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "%s.parallel: expected a list of node names, got %s", what, kindOf(n))
		return
	}
	seen := map[string]bool{}
	for _, e := range n.Content {
		e = p.resolve(e)
		name, ok := p.str(e, what+".parallel")
		if !ok {
			continue
		}
		if seen[name] {
			p.errorf(e, "%s.parallel: %q is listed twice", what, name)
			continue
		}
		seen[name] = true
		if target := p.ref(e, name, what+".parallel"); target != nil {
			node.Parallel = append(node.Parallel, target)
		}
	}
}

// next checks next: a node name, END, or a list of cases.
func (p *parser) next(n *yaml.Node, what string, sc *scope) *Next {
	if n.Kind == yaml.ScalarNode {
		name, ok := p.str(n, what)
		if !ok {
			return nil
		}
		return &Next{Pos: p.pos(n), Cases: []Case{{Pos: p.pos(n), To: p.ref(n, name, what)}}}
	}
	return &Next{Pos: p.pos(n), Cases: p.cases(n, what, sc, false)}
}

// cases checks a list of {when, to} cases.
func (p *parser) cases(n *yaml.Node, what string, sc *scope, route bool) []Case {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "%s: expected a list of {when, to} cases, got %s", what, kindOf(n))
		return nil
	}
	var out []Case
	var fallback *yaml.Node
	for i, cn := range n.Content {
		cn = p.resolve(cn)
		what := fmt.Sprintf("%s[%d]", what, i)
		m := p.mapping(cn, caseDef, what)
		if m == nil {
			continue
		}
		if fallback != nil {
			p.warnf(cn, "%s is never used: the case at line %d has no when and always matches", what, fallback.Line)
		}
		c := Case{Pos: p.pos(cn)}
		if w := m.get(p, "when"); w != nil {
			c.When = p.bareExpr(w, what+".when", sc)
		} else {
			fallback = cn
		}
		to := m.get(p, "to")
		if to == nil {
			p.errorf(cn, "%s: missing key \"to\" (a node name, or END)", what)
			continue
		}
		if name, ok := p.str(to, what+".to"); ok {
			c.To = p.ref(to, name, what)
		}
		out = append(out, c)
	}
	return out
}

// retry checks a retry policy, filling in the defaults.
func (p *parser) retry(n *yaml.Node, what string) *Retry {
	what += ".retry"
	r := &Retry{Pos: p.pos(n), MaxAttempts: DefaultMaxAttempts, Delay: DefaultDelay,
		Backoff: DefaultBackoff, MaxDelay: DefaultMaxDelay, Jitter: true}
	m := p.mapping(n, retryDef, what)
	if m == nil {
		return r
	}
	if v := m.get(p, "max_attempts"); v != nil {
		r.MaxAttempts, _ = p.integer(v, what+".max_attempts", 1)
	}
	if v := m.get(p, "delay"); v != nil {
		r.Delay, _ = p.duration(v, what+".delay")
	}
	if v := m.get(p, "backoff"); v != nil {
		if b, ok := p.number(v, what+".backoff"); ok {
			if b < 1 {
				p.errorf(v, "%s.backoff: expected a factor of at least 1, got %v", what, b)
			}
			r.Backoff = b
		}
	}
	if v := m.get(p, "max_delay"); v != nil {
		r.MaxDelay, _ = p.duration(v, what+".max_delay")
	}
	if v := m.get(p, "jitter"); v != nil {
		r.Jitter, _ = p.boolean(v, what+".jitter")
	}
	if v := m.get(p, "when"); v != nil {
		r.When = p.bareExpr(v, what+".when", &scope{state: true, errVar: true})
	}
	return r
}

// onError checks on_error: fail, skip, or {update, set, next}.
func (p *parser) onError(n *yaml.Node, what string) *OnError {
	what += ".on_error"
	oe := &OnError{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		s, ok := p.str(n, what)
		if !ok {
			return oe
		}
		switch s {
		case "fail":
			oe.Mode = Fail
		case "skip":
			oe.Mode = Skip
		default:
			p.errorf(n, "%s: expected fail, skip or {update, set, next}, got %q%s", what, s, suggest(s, []string{"fail", "skip"}))
		}
		return oe
	}
	oe.Mode = Handle
	m := p.mapping(n, onErrorDef, what)
	if m == nil {
		return oe
	}
	sc := &scope{state: true, errVar: true}
	if v := m.get(p, "update"); v != nil {
		oe.Update = p.updates(v, what+".update", sc)
	}
	if v := m.get(p, "set"); v != nil {
		oe.Set = p.sets(v, what+".set", sc)
	}
	if v := m.get(p, "next"); v != nil {
		oe.Next = p.next(v, what+".next", sc)
	}
	return oe
}

// updates checks update: state field names and the values merged into them.
func (p *parser) updates(n *yaml.Node, what string, sc *scope) []Assign {
	m := p.mapping(n, nil, what)
	if m == nil {
		return nil
	}
	var out []Assign
	for i, k := range m.keys {
		v := p.template(m.vals[i], sc) // compiled even for an unknown field, to report its errors too
		f := p.wf.fields[k.Value]
		if f == nil {
			p.errorf(k, "unknown state field %q in %s%s", k.Value, what, suggestOrList(k.Value, p.fieldNames, "state fields"))
			continue
		}
		if v == nil {
			continue
		}
		if lit, ok := v.Const(); ok {
			if t := f.UpdateType(); t != nil {
				if msg := t.Check(lit); msg != "" {
					p.errorf(p.resolve(m.vals[i]), "update of state field %q (%s, reducer %s): %s",
						f.Name, f.Type.Noun(), f.Reducer.Name, msg)
				}
			}
		}
		out = append(out, Assign{Name: k.Value, Pos: p.pos(k), Field: f, Value: v})
	}
	return out
}

// sets checks set: names of item variables and their values.
func (p *parser) sets(n *yaml.Node, what string, sc *scope) []Assign {
	m := p.mapping(n, nil, what)
	if m == nil {
		return nil
	}
	var out []Assign
	for i, k := range m.keys {
		if !identRE.MatchString(k.Value) {
			p.errorf(k, "%s: %q is not a name (letters, digits and _; it is read as input.%s)", what, k.Value, k.Value)
			continue
		}
		if v := p.template(m.vals[i], sc); v != nil {
			out = append(out, Assign{Name: k.Value, Pos: p.pos(k), Value: v})
		}
	}
	return out
}
