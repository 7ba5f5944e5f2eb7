package spec

import (
	"maps"
	"slices"

	"github.com/expr-lang/expr/ast"
)

// Uses is what an expression reads of its variables (state, input, output, a
// map's item variable, ...), by variable name. A variable it does not name is
// absent. It is worked out once, when the expression is compiled, from the
// expression's syntax tree; `flowrun plan` uses it to follow which values depend
// on outputs it does not compute.
type Uses map[string]*Use

// Use is what an expression reads of one variable: the fields it names
// (state.summaries and state["summaries"] read the field "summaries"), or All
// when it reads the variable as a whole (len(state), let s = state) or a field
// chosen at run time (state[name]).
type Use struct {
	All    bool
	Fields []string // sorted, without duplicates
}

// Reads reports whether u reads the named field of variable v (or all of v).
func (u Uses) Reads(v, field string) bool {
	use := u[v]
	return use != nil && (use.All || slices.Contains(use.Fields, field))
}

// Uses returns what the expression reads. The result is shared: callers do not
// modify it.
func (e *Expr) Uses() Uses {
	if e == nil {
		return nil
	}
	return e.uses
}

// Uses returns what the value's expressions read, together. A constant reads
// nothing.
func (v *Value) Uses() Uses {
	if v == nil {
		return nil
	}
	out := Uses{}
	var walk func(v *Value)
	walk = func(v *Value) {
		switch v.kind {
		case exprValue:
			out.add(v.expr.uses)
		case interpValue:
			for _, pt := range v.parts {
				if pt.expr != nil {
					out.add(pt.expr.uses)
				}
			}
		case objectValue, listValue:
			for _, e := range v.elems {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// add merges o into u.
func (u Uses) add(o Uses) {
	for name, use := range o {
		have := u[name]
		if have == nil {
			have = &Use{}
			u[name] = have
		}
		have.All = have.All || use.All
		for _, f := range use.Fields {
			if !slices.Contains(have.Fields, f) {
				have.Fields = append(have.Fields, f)
			}
		}
		slices.Sort(have.Fields)
	}
}

// usesOf walks a compiled expression's tree: a member access with a constant
// name on a variable (state.x, state["x"], state?.x) reads that field; any other
// mention of a variable reads all of it.
func usesOf(root ast.Node) Uses {
	if root == nil {
		return nil
	}
	c := &usesCollector{skip: map[*ast.IdentifierNode]bool{}, fields: map[string]map[string]bool{}, local: map[string]bool{}}
	ast.Walk(&root, c)
	out := Uses{}
	for _, id := range c.idents {
		if !c.skip[id] && !c.local[id.Value] {
			out[id.Value] = &Use{All: true}
		}
	}
	for name, fields := range c.fields {
		if out[name] != nil || c.local[name] {
			continue
		}
		out[name] = &Use{Fields: slices.Sorted(maps.Keys(fields))}
	}
	return out
}

type usesCollector struct {
	idents []*ast.IdentifierNode
	// skip holds the identifiers that are not read whole: functions called, and
	// variables read through a constant member (counted in fields).
	skip   map[*ast.IdentifierNode]bool
	fields map[string]map[string]bool
	local  map[string]bool // names declared with let
}

func (c *usesCollector) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		c.idents = append(c.idents, n)
	case *ast.VariableDeclaratorNode:
		c.local[n.Name] = true
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			c.skip[id] = true
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			return
		}
		c.skip[id] = true
		if c.fields[id.Value] == nil {
			c.fields[id.Value] = map[string]bool{}
		}
		c.fields[id.Value][prop.Value] = true
	}
}
