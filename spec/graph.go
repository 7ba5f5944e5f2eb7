package spec

import "fmt"

// Graph is a workflow's nodes and the edges between them: the one walk of the
// graph, made once when the workflow is loaded. The loader's checks, `flowrun
// graph` and the run viewer read it.
type Graph struct {
	// Edges lists every edge, by source node in declaration order; a node's edges
	// are its route (or to) cases, its parallel branches, its next cases and its
	// on_error.next cases, in that order.
	Edges []Edge

	out     map[*Node][]Edge
	reached map[*Node]bool // from the start node, along any edge
	top     map[*Node]bool // in the top-level chain
}

// EdgeKind is what an edge means.
type EdgeKind int

// The kinds of edges.
const (
	// NextEdge: the chain goes on to To (next).
	NextEdge EdgeKind = iota
	// RouteEdge: a map node's items start at To (route or to).
	RouteEdge
	// BranchEdge: a parallel node runs a branch starting at To.
	BranchEdge
	// ErrorEdge: after its last failed attempt the chain goes on to To
	// (on_error.next).
	ErrorEdge
)

// Edge is one edge of the graph.
type Edge struct {
	From *Node
	// To is the target; nil means END.
	To   *Node
	Kind EdgeKind
	// When is the case's condition; nil means always.
	When *Expr
}

// Graph returns the workflow's graph.
func (w *Workflow) Graph() *Graph { return w.graph }

// Out returns the edges leaving n, in the order of Edges.
func (g *Graph) Out(n *Node) []Edge { return g.out[n] }

// Reached reports whether any path of edges leads from the start node to n.
func (g *Graph) Reached(n *Node) bool { return g.reached[n] }

// TopLevel reports whether n runs in the workflow's top-level chain: it is the
// start node or reached from it along next and on_error.next edges.
func (g *Graph) TopLevel(n *Node) bool { return g.top[n] }

// MayEnd reports whether a chain may end after n: n has no next, or none of its
// next cases is unconditional.
func (g *Graph) MayEnd(n *Node) bool {
	for _, e := range g.out[n] {
		if e.Kind == NextEdge && e.When == nil {
			return false
		}
	}
	return true
}

// Chain returns the nodes a chain that starts at any of starts may run, along next
// and on_error.next edges, in the order first met.
func (g *Graph) Chain(starts ...*Node) []*Node {
	seen := map[*Node]bool{}
	var out []*Node
	var walk func(n *Node)
	walk = func(n *Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, e := range g.out[n] {
			if e.Kind == NextEdge || e.Kind == ErrorEdge {
				walk(e.To)
			}
		}
	}
	for _, s := range starts {
		walk(s)
	}
	return out
}

// buildGraph makes the workflow's graph from its nodes.
func buildGraph(wf *Workflow) *Graph {
	g := &Graph{out: map[*Node][]Edge{}, reached: map[*Node]bool{}, top: map[*Node]bool{}}
	cases := func(n *Node, kind EdgeKind, cs []Case) {
		for _, c := range cs {
			g.out[n] = append(g.out[n], Edge{From: n, To: c.To, Kind: kind, When: c.When})
		}
	}
	for _, n := range wf.Nodes {
		if n.Map != nil {
			cases(n, RouteEdge, n.Map.Route)
		}
		for _, b := range n.Parallel {
			g.out[n] = append(g.out[n], Edge{From: n, To: b, Kind: BranchEdge})
		}
		if n.Next != nil {
			cases(n, NextEdge, n.Next.Cases)
		}
		if n.OnError != nil && n.OnError.Next != nil {
			cases(n, ErrorEdge, n.OnError.Next.Cases)
		}
		g.Edges = append(g.Edges, g.out[n]...)
	}
	if wf.Start != nil {
		var visit func(n *Node)
		visit = func(n *Node) {
			if n == nil || g.reached[n] {
				return
			}
			g.reached[n] = true
			for _, e := range g.out[n] {
				visit(e.To)
			}
		}
		visit(wf.Start)
		for _, n := range g.Chain(wf.Start) {
			g.top[n] = true
		}
	}
	return g
}

// graph builds the workflow's graph and warns about nodes it never reaches and
// about replace fields updated per item.
func (p *parser) graph() {
	wf := p.wf
	wf.graph = buildGraph(wf)
	if wf.Start == nil {
		return
	}
	p.perItemReplace()
	for _, n := range wf.Nodes {
		if !wf.graph.Reached(n) {
			p.errs = append(p.errs, &Error{Pos: n.Pos, Severity: SevWarning,
				Msg: fmt.Sprintf("node %q is never reached from the start node %q: remove it, or add an edge to it", n.Name, wf.Start.Name)})
		}
	}
}

// perItemReplace warns when a replace field (no reducer) is updated by a node that
// runs once per item of a map, or by two branches of a parallel: their updates merge
// in order and only the last is kept, which is rarely what was meant (LangGraph
// refuses such concurrent writes).
func (p *parser) perItemReplace() {
	g := p.wf.graph
	warn := func(a Assign, why string) {
		p.errs = append(p.errs, &Error{Pos: a.Pos, Severity: SevWarning, Msg: fmt.Sprintf(
			"state field %q has no reducer, and %s: only the last update is kept; "+
				"give the field a reducer (add, append, sum, merge, ...)", a.Name, why)})
	}
	for _, n := range p.wf.Nodes {
		var routes, branches []*Node
		for _, e := range g.Out(n) {
			switch e.Kind {
			case RouteEdge:
				routes = append(routes, e.To)
			case BranchEdge:
				branches = append(branches, e.To)
			}
		}
		for _, w := range g.Chain(routes...) {
			for _, a := range replaceUpdates(w) {
				warn(a, fmt.Sprintf("nodes.%s runs once per item of nodes.%s", w.Name, n.Name))
			}
		}
		writers := map[string]int{} // field → the branches that update it
		for _, b := range branches {
			seen := map[string]bool{}
			for _, w := range g.Chain(b) {
				for _, a := range replaceUpdates(w) {
					if !seen[a.Name] {
						seen[a.Name] = true
						if writers[a.Name]++; writers[a.Name] == 2 {
							warn(a, fmt.Sprintf("two branches of nodes.%s update it", n.Name))
						}
					}
				}
			}
		}
	}
}

// replaceUpdates are a node's updates of fields without a reducer.
func replaceUpdates(n *Node) []Assign {
	var out []Assign
	assigns := n.Update
	if n.OnError != nil {
		assigns = append(append([]Assign(nil), assigns...), n.OnError.Update...)
	}
	for _, a := range assigns {
		if a.Field != nil && a.Field.Reducer.Kind == Replace {
			out = append(out, a)
		}
	}
	return out
}
