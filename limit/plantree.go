package limit

import (
	"slices"

	"github.com/flowrun/flowrun/spec"
)

// row is a node's place in a plan: nested under the maps, parallels and workflow
// nodes that run it, at the first place the graph reaches it.
type row struct {
	wf     *spec.Workflow
	node   *spec.Node
	around []*spec.Node // the maps, parallels and workflow nodes around it, outermost first
	// reach is the taint of whether, and how often, the node runs: the counts of
	// the maps around it and the conditions on the way to it.
	reach origins
}

// tree lays out a workflow's nodes as a plan shows them.
type tree struct {
	t      *taint
	rows   []*row
	byNode map[*spec.Node]*row
	done   map[*spec.Node]bool // containers expanded in this pass
}

// layout places every node reachable from wf's start, with its reach. Taints
// only grow, so passes repeat until nothing changes.
func layout(wf *spec.Workflow, t *taint) []*row {
	tr := &tree{t: t, byNode: map[*spec.Node]*row{}}
	for grew := true; grew; {
		tr.done = map[*spec.Node]bool{}
		grew = tr.chain(wf, []start{{wf.Start, origins{}}}, nil)
	}
	return tr.rows
}

// start is where a chain starts, and the taint of its getting there.
type start struct {
	node  *spec.Node
	reach origins
}

// chain places the nodes of a chain of w that starts at starts, and what they
// run, and reports whether any row's reach grew.
func (tr *tree) chain(w *spec.Workflow, starts []start, around []*spec.Node) bool {
	g := w.Graph()
	var first []*spec.Node
	reach := map[*spec.Node]origins{}
	at := func(n *spec.Node) origins {
		if reach[n] == nil {
			reach[n] = origins{}
		}
		return reach[n]
	}
	for _, s := range starts {
		if s.node != nil {
			at(s.node).add(s.reach)
			first = append(first, s.node)
		}
	}
	// The chain's nodes in file order (which is most often the order they run
	// in), its starts first.
	nodes := g.Chain(first...)
	slices.SortStableFunc(nodes, func(a, b *spec.Node) int {
		ai, bi := slices.Index(first, a), slices.Index(first, b)
		switch {
		case ai >= 0 && bi >= 0:
			return ai - bi
		case ai >= 0:
			return -1
		case bi >= 0:
			return 1
		}
		return a.Index - b.Index
	})
	for grew := true; grew; {
		grew = false
		for _, n := range nodes {
			if n.Next != nil {
				sc := scope{output: tr.t.out[n]}
				for i, c := range n.Next.Cases {
					if c.To != nil {
						grew = at(c.To).add(union(reach[n], tr.t.cases(w, n.Next.Cases, i, sc))) || grew
					}
				}
			}
			if oe := n.OnError; oe != nil && oe.Next != nil {
				for i, c := range oe.Next.Cases {
					if c.To != nil {
						grew = at(c.To).add(union(reach[n], tr.t.cases(w, oe.Next.Cases, i, scope{}))) || grew
					}
				}
			}
		}
	}
	grew := false
	for _, n := range nodes {
		r := tr.byNode[n]
		if r == nil {
			r = &row{wf: w, node: n, around: around, reach: origins{}}
			tr.byNode[n] = r
			tr.rows = append(tr.rows, r)
		}
		grew = r.reach.add(reach[n]) || grew
		if tr.done[n] || slices.Contains(around, n) {
			continue
		}
		tr.done[n] = true
		inside := append(slices.Clip(around), n)
		switch n.Kind {
		case spec.MapNode:
			mp := n.Map
			count := union(r.reach, tr.t.count(w, mp))
			sc := scope{itemVar: mp.As, itemFrom: tr.t.item[n]}
			var starts []start
			for i, c := range mp.Route {
				starts = append(starts, start{c.To, union(count, tr.t.cases(w, mp.Route, i, sc))})
			}
			grew = tr.chain(w, starts, inside) || grew
		case spec.ParallelNode:
			var starts []start
			for _, b := range n.Parallel {
				starts = append(starts, start{b, r.reach})
			}
			grew = tr.chain(w, starts, inside) || grew
		case spec.WorkflowNode:
			if sub := n.Workflow; sub != nil {
				grew = tr.chain(sub, []start{{sub.Start, r.reach}}, inside) || grew
			}
		}
	}
	return grew
}
