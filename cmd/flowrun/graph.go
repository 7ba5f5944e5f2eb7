package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/spec"
)

func (e *env) graphCommand() *cli.Command {
	return &cli.Command{
		Name:      "graph",
		Usage:     "draw a workflow as a Mermaid or Graphviz diagram",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "mermaid", Usage: "mermaid or dot"},
			allowPathFlag,
		},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "mermaid" && format != "dot" {
				return usageError("--format %q: expected mermaid or dot", format)
			}
			if c.Args().Len() != 1 {
				return usageError("graph: name one workflow file")
			}
			paths, err := allowedPaths(c)
			if err != nil {
				return err
			}
			wf, err := e.load(&spec.Loader{Registry: e.reg, AllowPaths: paths}, c.Args().First())
			if err != nil {
				return err
			}
			g := buildGraph(wf)
			if format == "dot" {
				g.dot(e.stdout, wf.Name)
			} else {
				g.mermaid(e.stdout)
			}
			return nil
		},
	}
}

// graph is a workflow drawn as boxes and edges, sub-workflows as clusters.
type graph struct {
	boxes    []box
	edges    []edge
	clusters []cluster
}

type box struct {
	id, label string
	shape     string // action, pass, map, parallel, workflow, terminal
}

type edge struct {
	from, to, label string
	style           string // next, fanout, branch, error
}

type cluster struct {
	id, label string
	boxes     []string
}

func buildGraph(wf *spec.Workflow) *graph {
	g := &graph{}
	g.boxes = append(g.boxes, box{id: "START", label: "start", shape: "terminal"})
	g.add(wf, "", "START")
	return g
}

// add draws wf's nodes with ids prefixed by prefix, and an edge from `from` to its
// start node, with END where its top-level chain may end.
func (g *graph) add(wf *spec.Workflow, prefix, from string) {
	id := func(n *spec.Node) string { return prefix + n.Name }
	end := prefix + "END"
	usesEnd := false
	target := func(to *spec.Node) string {
		if to == nil {
			usesEnd = true
			return end
		}
		return id(to)
	}
	g.edges = append(g.edges, edge{from: from, to: id(wf.Start), style: "next"})
	wg := wf.Graph()
	for _, n := range wf.Nodes {
		label, shape := n.Name, n.Kind.String()
		switch n.Kind {
		case spec.ActionNode:
			label += "\n" + n.Action.Name
		case spec.MapNode:
			label += "\nmap over " + exprText(n.Map.Over)
			if n.Map.Batch != nil || n.Map.MaxBytes != nil {
				label += " (batches)"
			} else if n.Map.Chunks != nil {
				label += " (chunks)"
			}
		case spec.ParallelNode:
			label += "\nparallel"
		case spec.WorkflowNode:
			label += "\nworkflow " + n.WorkflowRef
		}
		g.boxes = append(g.boxes, box{id: id(n), label: label, shape: shape})
		for _, e := range wg.Out(n) {
			ed := edge{from: id(n), to: target(e.To), style: edgeStyles[e.Kind]}
			switch {
			case e.Kind == spec.ErrorEdge:
				ed.label = "on error"
			case e.When != nil:
				ed.label = e.When.Src
			case e.Kind == spec.RouteEdge:
				ed.label = "each " + n.Map.As
			}
			g.edges = append(g.edges, ed)
		}
		if wg.TopLevel(n) && wg.MayEnd(n) {
			g.edges = append(g.edges, edge{from: id(n), to: target(nil), style: "next"})
		}
		if n.Workflow != nil {
			sub := prefix + n.Name + "__"
			before, startEdge := len(g.boxes), len(g.edges)
			g.add(n.Workflow, sub, id(n))
			cl := cluster{id: sub + "cluster", label: n.WorkflowRef}
			for _, b := range g.boxes[before:] {
				cl.boxes = append(cl.boxes, b.id)
			}
			g.clusters = append(g.clusters, cl)
			g.edges[startEdge].style = "branch" // the node runs the sub-workflow
		}
	}
	if usesEnd {
		g.boxes = append(g.boxes, box{id: end, label: "END", shape: "terminal"})
	}
}

// edgeStyles draws each kind of edge.
var edgeStyles = map[spec.EdgeKind]string{spec.NextEdge: "next", spec.RouteEdge: "fanout", spec.BranchEdge: "branch", spec.ErrorEdge: "error"}

func exprText(v *spec.Value) string {
	if v == nil {
		return "?"
	}
	if src := v.Source(); src != "" {
		return src
	}
	return "a list"
}

// layout visits the boxes outside clusters (indented by two spaces), then each
// cluster: open, its boxes (indented by four), end.
func (g *graph) layout(visit func(b box, pad string), open func(cl cluster), end func()) {
	byID := map[string]box{}
	inCluster := map[string]bool{}
	for _, b := range g.boxes {
		byID[b.id] = b
	}
	for _, cl := range g.clusters {
		for _, id := range cl.boxes {
			inCluster[id] = true
		}
	}
	for _, b := range g.boxes {
		if !inCluster[b.id] {
			visit(b, "  ")
		}
	}
	for _, cl := range g.clusters {
		open(cl)
		for _, id := range cl.boxes {
			visit(byID[id], "    ")
		}
		end()
	}
}

var mermaidShapes = map[string][2]string{
	"action": {"[", "]"}, "pass": {"(", ")"}, "map": {"[[", "]]"},
	"parallel": {"{{", "}}"}, "workflow": {"[/", "/]"}, "terminal": {"([", "])"},
}

func mermaidText(s string) string {
	s = strings.ReplaceAll(s, `"`, "#quot;")
	return strings.ReplaceAll(s, "\n", "<br/>")
}

func (g *graph) mermaid(w io.Writer) {
	fmt.Fprintln(w, "flowchart TD")
	g.layout(func(b box, pad string) {
		sh := mermaidShapes[b.shape]
		fmt.Fprintf(w, "%s%s%s\"%s\"%s\n", pad, b.id, sh[0], mermaidText(b.label), sh[1])
	}, func(cl cluster) {
		fmt.Fprintf(w, "  subgraph %s[\"%s\"]\n", cl.id, mermaidText(cl.label))
	}, func() { fmt.Fprintln(w, "  end") })
	for _, e := range g.edges {
		arrow := "-->"
		switch e.style {
		case "fanout":
			arrow = "-.->"
		case "branch":
			arrow = "==>"
		}
		label := ""
		if e.label != "" {
			label = fmt.Sprintf("|\"%s\"|", mermaidText(e.label))
		}
		fmt.Fprintf(w, "  %s %s%s %s\n", e.from, arrow, label, e.to)
	}
}

var dotShapes = map[string]string{
	"action": "box", "pass": "ellipse", "map": "box3d", "parallel": "hexagon",
	"workflow": "component", "terminal": "oval",
}

func dotText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return strings.ReplaceAll(s, "\n", `\n`)
}

func (g *graph) dot(w io.Writer, name string) {
	fmt.Fprintf(w, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", dotText(name))
	g.layout(func(b box, pad string) {
		fmt.Fprintf(w, "%s\"%s\" [shape=%s, label=\"%s\"];\n", pad, b.id, dotShapes[b.shape], dotText(b.label))
	}, func(cl cluster) {
		fmt.Fprintf(w, "  subgraph \"cluster_%s\" {\n    label=\"%s\";\n", cl.id, dotText(cl.label))
	}, func() { fmt.Fprintln(w, "  }") })
	for _, e := range g.edges {
		var attrs []string
		switch e.style {
		case "fanout":
			attrs = append(attrs, "style=dashed")
		case "branch":
			attrs = append(attrs, "style=bold")
		case "error":
			attrs = append(attrs, "color=red")
		}
		if e.label != "" {
			attrs = append(attrs, fmt.Sprintf("label=\"%s\"", dotText(e.label)))
		}
		a := ""
		if attrs != nil {
			a = " [" + strings.Join(attrs, ", ") + "]"
		}
		fmt.Fprintf(w, "  \"%s\" -> \"%s\"%s;\n", e.from, e.to, a)
	}
	fmt.Fprintln(w, "}")
}

func (e *env) schemaCommand() *cli.Command {
	return &cli.Command{
		Name:  "schema",
		Usage: "print the JSON Schema for workflow files (for editors)",
		Action: func(c *cli.Context) error {
			_, err := e.stdout.Write(spec.Schema(e.reg))
			return err
		},
	}
}
