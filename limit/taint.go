package limit

import (
	"maps"
	"slices"

	"github.com/flowrun/flowrun/spec"
)

// A plan runs read-only actions for real and answers every other call with a
// placeholder. Taint follows the placeholders: a value is tainted when it may
// depend on a placeholder, and its origins are the nodes whose placeholders it
// may depend on. A fan-out over a tainted list, or a node reached through a
// tainted condition, has counts the plan cannot know; a call whose parameters
// are tainted has an approximate estimate.
//
// The analysis is static and conservative: a field is tainted if any node
// anywhere may give it a tainted update, whenever that happens in the run.

// origins is a set of nodes whose placeholders a value may depend on.
type origins map[string]bool

// add adds o's nodes to s and reports whether s grew.
func (s origins) add(o origins) bool {
	grew := false
	for n := range o {
		if !s[n] {
			s[n] = true
			grew = true
		}
	}
	return grew
}

// list is the origins, sorted.
func (s origins) list() []string { return slices.Sorted(maps.Keys(s)) }

// union returns the origins of all of sets.
func union(sets ...origins) origins {
	out := origins{}
	for _, s := range sets {
		out.add(s)
	}
	return out
}

// taint is the taint of every field, input name and output of a workflow and of
// the sub-workflows it uses.
type taint struct {
	top    *spec.Workflow
	field  map[*spec.Field]origins
	input  map[*spec.Workflow]map[string]origins // input.<name>: a map's with, set
	inputs map[*spec.Workflow]origins            // every input name (a with given as one expression)
	out    map[*spec.Node]origins                // an action or workflow node's output
	item   map[*spec.Node]origins                // a map's item variable
	// reach is the taint of whether and how often a node runs (see layout): a
	// field a node updates depends on it too, as a sum of 1 per call depends on
	// the calls.
	reach map[*spec.Node]origins
	rows  []*row // the layout, with the reach
}

// scope is what an expression sees besides state and input: output, or a map's
// item variable.
type scope struct {
	output   origins // nil: no output
	itemVar  string
	itemFrom origins
}

// analyse works out the taint of wf and its sub-workflows, and lays out their
// nodes: it applies every node's rules, then lays the nodes out with their
// reach, until nothing changes.
func analyse(wf *spec.Workflow) *taint {
	t := &taint{top: wf, field: map[*spec.Field]origins{}, input: map[*spec.Workflow]map[string]origins{},
		inputs: map[*spec.Workflow]origins{}, out: map[*spec.Node]origins{}, item: map[*spec.Node]origins{},
		reach: map[*spec.Node]origins{}}
	wfs := workflows(wf)
	for _, w := range wfs {
		t.input[w] = map[string]origins{}
		t.inputs[w] = origins{}
		for _, f := range w.State {
			t.field[f] = origins{}
		}
		for _, n := range w.Nodes {
			t.out[n], t.item[n], t.reach[n] = origins{}, origins{}, origins{}
		}
	}
	for {
		for grew := true; grew; {
			grew = false
			for _, w := range wfs {
				for _, n := range w.Nodes {
					grew = t.node(w, n) || grew
				}
			}
		}
		t.rows = layout(wf, t)
		grew := false
		for _, r := range t.rows {
			grew = t.reach[r.node].add(r.reach) || grew
		}
		if !grew {
			return t
		}
	}
}

// workflows lists wf and every sub-workflow it uses, each once.
func workflows(wf *spec.Workflow) []*spec.Workflow {
	var out []*spec.Workflow
	seen := map[*spec.Workflow]bool{}
	var walk func(w *spec.Workflow)
	walk = func(w *spec.Workflow) {
		if w == nil || seen[w] {
			return
		}
		seen[w] = true
		out = append(out, w)
		for _, inc := range w.Includes {
			walk(inc)
		}
	}
	walk(wf)
	return out
}

// label names a node in a plan: its name, and its workflow's when that is not
// the plan's own.
func (t *taint) label(w *spec.Workflow, n *spec.Node) string {
	if w == t.top {
		return n.Name
	}
	return w.Name + "." + n.Name
}

// node applies one node's rules and reports whether any taint grew.
func (t *taint) node(w *spec.Workflow, n *spec.Node) bool {
	grew := false
	with := t.of(w, n.With.Uses(), scope{})
	switch n.Kind {
	case spec.ActionNode:
		if n.Action.ReadOnly {
			grew = t.out[n].add(with) || grew
		} else {
			grew = t.out[n].add(origins{t.label(w, n): true}) || grew
		}
	case spec.WorkflowNode:
		sub := n.Workflow
		if sub == nil {
			break
		}
		for _, f := range sub.State {
			given := with
			if n.With != nil && n.With.Keys() != nil {
				given = t.of(w, n.With.Field(f.Name).Uses(), scope{})
			}
			grew = t.field[f].add(given) || grew
		}
		fields := sub.Output
		if fields == nil {
			fields = sub.State
		}
		for _, f := range fields {
			grew = t.out[n].add(t.field[f]) || grew
		}
	case spec.MapNode:
		mp := n.Map
		grew = t.item[n].add(t.of(w, mp.Over.Uses(), scope{})) || grew
		sc := scope{itemVar: mp.As, itemFrom: t.item[n]}
		switch {
		case mp.With == nil:
			grew = t.inputOf(w, mp.As).add(t.item[n]) || grew
		case mp.With.Keys() != nil:
			for _, k := range mp.With.Keys() {
				grew = t.inputOf(w, k).add(t.of(w, mp.With.Field(k).Uses(), sc)) || grew
			}
		default:
			grew = t.inputs[w].add(t.of(w, mp.With.Uses(), sc)) || grew
		}
	}
	sc := scope{output: t.out[n]}
	for _, a := range n.Update {
		if a.Field != nil {
			grew = t.field[a.Field].add(union(t.of(w, a.Value.Uses(), sc), t.reach[n])) || grew
		}
	}
	for _, a := range n.Set {
		grew = t.inputOf(w, a.Name).add(t.of(w, a.Value.Uses(), sc)) || grew
	}
	if oe := n.OnError; oe != nil {
		for _, a := range oe.Update {
			if a.Field != nil {
				grew = t.field[a.Field].add(union(t.of(w, a.Value.Uses(), scope{}), t.reach[n])) || grew
			}
		}
		for _, a := range oe.Set {
			grew = t.inputOf(w, a.Name).add(t.of(w, a.Value.Uses(), scope{})) || grew
		}
	}
	return grew
}

// inputOf is the taint of input.<name> in w.
func (t *taint) inputOf(w *spec.Workflow, name string) origins {
	s := t.input[w][name]
	if s == nil {
		s = origins{}
		t.input[w][name] = s
	}
	return s
}

// of is the taint of what an expression of w reads.
func (t *taint) of(w *spec.Workflow, u spec.Uses, sc scope) origins {
	out := origins{}
	for name, use := range u {
		switch name {
		case "state":
			for _, f := range w.State {
				if use.All || slices.Contains(use.Fields, f.Name) {
					out.add(t.field[f])
				}
			}
		case "input":
			// At top level input is the state (plus set values); in an item, the
			// map's with (plus set values). A name is tainted if it is in any.
			out.add(t.inputs[w])
			for _, f := range w.State {
				if use.All || slices.Contains(use.Fields, f.Name) {
					out.add(t.field[f])
				}
			}
			for k, s := range t.input[w] {
				if use.All || slices.Contains(use.Fields, k) {
					out.add(s)
				}
			}
		case "output":
			out.add(sc.output)
		default:
			if sc.itemVar != "" && name == sc.itemVar {
				out.add(sc.itemFrom)
			}
		}
	}
	return out
}

// count is the taint of a map's number of tasks: its over, batch and chunks.
func (t *taint) count(w *spec.Workflow, mp *spec.Map) origins {
	return union(t.of(w, mp.Over.Uses(), scope{}), t.of(w, mp.Batch.Uses(), scope{}),
		t.of(w, mp.MaxBytes.Uses(), scope{}), t.of(w, mp.Chunks.Uses(), scope{}))
}

// with is the taint of a node's parameters (or a sub-workflow's inputs).
func (t *taint) with(w *spec.Workflow, n *spec.Node) origins {
	return t.of(w, n.With.Uses(), scope{})
}

// cases is the taint of the conditions of cases up to and including case i:
// whether the chain takes case i depends on them all.
func (t *taint) cases(w *spec.Workflow, cs []spec.Case, i int, sc scope) origins {
	out := origins{}
	for _, c := range cs[:i+1] {
		out.add(t.of(w, c.When.Uses(), sc))
	}
	return out
}
