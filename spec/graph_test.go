package spec_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/spec"
)

// TestGraph walks a workflow with every kind of edge: next (with a loop and END),
// a map's route, a parallel's branches and on_error.next.
func TestGraph(t *testing.T) {
	wf, err := spec.Load("testdata/graph/workflow.yaml", registry(t))
	if err != nil {
		t.Fatal(err)
	}
	g := wf.Graph()
	name := func(n *spec.Node) string {
		if n == nil {
			return "END"
		}
		return n.Name
	}
	kinds := map[spec.EdgeKind]string{spec.NextEdge: "next", spec.RouteEdge: "route", spec.BranchEdge: "branch", spec.ErrorEdge: "error"}
	var edges []string
	for _, e := range g.Edges {
		s := fmt.Sprintf("%s -%s-> %s", e.From.Name, kinds[e.Kind], name(e.To))
		if e.When != nil {
			s += " if " + e.When.Src
		}
		edges = append(edges, s)
	}
	want := []string{
		"prepare -next-> fan",
		"fan -route-> big if item > 1",
		"fan -route-> small",
		"fan -next-> END if state.n > 10",
		"fan -next-> both",
		"big -error-> small",
		"both -branch-> left",
		"both -branch-> right",
		"both -next-> prepare if state.n > 0",
	}
	if diff := cmp.Diff(want, edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	if got := len(g.Out(wf.Node("fan"))); got != 4 {
		t.Errorf("Out(fan) has %d edges, want 4", got)
	}
	for _, tt := range []struct {
		node                 string
		reached, top, mayEnd bool
	}{
		{"prepare", true, true, false},
		{"fan", true, true, false},
		{"big", true, false, true},
		{"small", true, false, true},
		{"both", true, true, true},
		{"left", true, false, true},
		{"orphan", false, false, true},
	} {
		n := wf.Node(tt.node)
		if g.Reached(n) != tt.reached || g.TopLevel(n) != tt.top || g.MayEnd(n) != tt.mayEnd {
			t.Errorf("%s: reached %t, top level %t, may end %t; want %t, %t, %t", tt.node,
				g.Reached(n), g.TopLevel(n), g.MayEnd(n), tt.reached, tt.top, tt.mayEnd)
		}
	}
	var chain []string
	for _, n := range g.Chain(wf.Node("big")) {
		chain = append(chain, n.Name)
	}
	if diff := cmp.Diff([]string{"big", "small"}, chain); diff != "" {
		t.Errorf("Chain(big) (-want +got):\n%s", diff)
	}
	if len(wf.Warnings) != 1 || wf.Warnings[0].Pos.Line != 24 {
		t.Errorf("warnings: %v; want one, of the unreached node at line 24", wf.Warnings)
	}
}
