package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/action"
)

// End is the name that ends a chain in next, route and to.
const End = "END"

// kindKeys are the keys that decide a node's kind.
var kindKeys = []string{"action", "map", "parallel", "workflow"}

// kindAllows lists the keys each kind of node accepts besides its kind key.
var kindAllows = map[NodeKind][]string{
	ActionNode:   {"description", "with", "update", "set", "next", "retry", "timeout", "on_error", "pool", "rate"},
	WorkflowNode: {"description", "with", "update", "set", "next", "retry", "timeout", "on_error"},
	MapNode:      {"description", "next"},
	ParallelNode: {"description", "next"},
	PassNode:     {"description", "update", "set", "next"},
}

// nodes declares every node first, so that edges may point forward, then checks each.
func (p *parser) nodes(n *yaml.Node) {
	m := p.mapping(n, nil, "nodes")
	if m == nil {
		return
	}
	if len(m.keys) == 0 {
		p.errorf(n, "nodes is empty: a workflow needs at least one node")
		return
	}
	for i, k := range m.keys {
		p.collectItemVar(m.vals[i])
		if !identRE.MatchString(k.Value) && !nameSchemaRE.MatchString(k.Value) {
			p.errorf(k, "node name %q: use letters, digits, _ and -", k.Value)
		}
		if k.Value == End {
			p.errorf(k, "%s is reserved: it ends a chain; rename the node", End)
		}
		node := &Node{Name: k.Value, Pos: p.pos(k), Index: len(p.wf.Nodes)}
		p.wf.Nodes = append(p.wf.Nodes, node)
		p.wf.nodes[k.Value] = node
	}
	for i, node := range p.wf.Nodes {
		p.node(node, m.keys[i], m.vals[i])
	}
}

// collectItemVar notes the item variable of a map node, before any expression is
// compiled, so that using it outside its map can be explained.
func (p *parser) collectItemVar(n *yaml.Node) {
	n = p.resolve(n)
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "map" {
			continue
		}
		mp := p.resolve(n.Content[i+1])
		name := "item"
		for j := 0; mp.Kind == yaml.MappingNode && j+1 < len(mp.Content); j += 2 {
			if mp.Content[j].Value == "as" {
				name = p.resolve(mp.Content[j+1]).Value
			}
		}
		p.itemVars = append(p.itemVars, name)
	}
}

// ref resolves a node name used at n; END resolves to nil.
func (p *parser) ref(n *yaml.Node, name, what string) *Node {
	if name == End {
		if what == "start" || what == "parallel" {
			p.errorf(n, "%s cannot be END", what)
		}
		return nil
	}
	if node := p.wf.nodes[name]; node != nil {
		return node
	}
	names := make([]string, len(p.wf.Nodes))
	for i, node := range p.wf.Nodes {
		names[i] = node.Name
	}
	hint := suggest(name, append(names, End))
	if hint == "" && strings.EqualFold(name, End) {
		hint = "; write END in capitals"
	}
	p.errorf(n, "unknown node %q in %s%s", name, what, hint)
	return nil
}

func (p *parser) node(node *Node, key, val *yaml.Node) {
	what := "nodes." + node.Name
	m := p.mapping(val, nodeDef, what)
	if m == nil {
		return
	}
	var kinds []string
	for _, k := range kindKeys {
		if m.key(k) != nil {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		node.Kind = PassNode
		for _, k := range kindKeys {
			if m.guessed[k] {
				return // a misspelt kind key, reported with its suggestion already
			}
		}
		if m.key("update") == nil && m.key("set") == nil && m.key("next") == nil {
			if m.key("with") != nil {
				p.errorf(m.key("with"), "%s has with but no action or workflow to give it to", what)
				return
			}
			p.errorf(key, "%s does nothing: give it one of action, map, parallel or workflow, "+
				"or update, set or next for a pass node", what)
			return
		}
	case 1:
		node.Kind = map[string]NodeKind{"action": ActionNode, "map": MapNode,
			"parallel": ParallelNode, "workflow": WorkflowNode}[kinds[0]]
	default:
		p.errorf(m.key(kinds[1]), "%s has both %s and %s: a node is exactly one of action, map, parallel or workflow",
			what, kinds[0], kinds[1])
		return
	}
	allowed := kindAllows[node.Kind]
	for _, k := range m.keys {
		if contains(kindKeys, k.Value) || contains(allowed, k.Value) {
			continue
		}
		p.errorf(k, "%s does not apply to a %s node (%s): it takes %s", k.Value, node.Kind, what, strings.Join(allowed, ", "))
	}
	if v := m.get(p, "description"); v != nil {
		node.Description, _ = p.str(v, what+".description")
	}

	// The expression scopes of this node's parts.
	base := &scope{state: true}
	out := &scope{state: true, output: true} // output: its fields unknown until the action or sub-workflow is
	switch node.Kind {
	case ActionNode:
		p.actionNode(node, m, what)
		if node.Action != nil {
			out = p.outputScope(node.Action.Name, actionOutputs(node.Action))
		}
	case WorkflowNode:
		p.workflowNode(node, m, what)
		if sub := node.Workflow; sub != nil {
			out = p.outputScope(fmt.Sprintf("workflow %q", node.WorkflowRef), sub.outputNames())
		}
	case MapNode:
		node.Map = p.mapBlock(m.get(p, "map"), what)
	case ParallelNode:
		p.parallel(node, m.get(p, "parallel"), what)
	}
	if v := m.get(p, "pool"); v != nil && node.Kind == ActionNode {
		if name, ok := p.str(v, what+".pool"); ok {
			if !nameSchemaRE.MatchString(name) {
				p.errorf(v, "%s.pool: %q is not a pool name (letters, digits, _ and -)", what, name)
			}
			node.Pool = name
		}
	}
	if v := m.get(p, "rate"); v != nil && node.Kind == ActionNode {
		p.nodeRate(node, v, what+".rate")
	}
	if node.Kind == ActionNode || node.Kind == WorkflowNode {
		if v := m.get(p, "retry"); v != nil {
			node.Retry = p.retry(v, what)
		}
		if v := m.get(p, "timeout"); v != nil {
			node.Timeout, _ = p.duration(v, what+".timeout")
		}
		if v := m.get(p, "on_error"); v != nil {
			node.OnError = p.onError(v, what)
		}
	} else {
		out = base
	}
	if v := m.get(p, "update"); v != nil && node.Kind != MapNode && node.Kind != ParallelNode {
		node.Update = p.updates(v, what+".update", out)
	}
	if v := m.get(p, "set"); v != nil && node.Kind != MapNode && node.Kind != ParallelNode {
		node.Set = p.sets(v, what+".set", out)
	}
	if v := m.get(p, "next"); v != nil {
		node.Next = p.next(v, what+".next", out)
	}
}

func (p *parser) outputScope(of string, outputs []string) *scope {
	return &scope{state: true, output: true, outputs: outputs, outputOf: of}
}

func actionOutputs(s *action.Spec) []string {
	names := make([]string, len(s.Output))
	for i, f := range s.Output {
		names[i] = f.Name
	}
	return names
}

// outputNames are the fields a sub-workflow's result holds.
func (w *Workflow) outputNames() []string {
	fields := w.Output
	if fields == nil {
		fields = w.State
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return names
}

func (p *parser) actionNode(node *Node, m *mapping, what string) {
	an := m.get(p, "action")
	name, ok := p.str(an, what+".action")
	if !ok {
		return
	}
	spec := p.reg.Lookup(name)
	if spec == nil {
		hint := suggest(name, p.reg.Names())
		if hint == "" {
			hint = "; run `flowrun actions` to list them"
		}
		p.errorf(an, "unknown action %q%s", name, hint)
		if wn := m.get(p, "with"); wn != nil {
			p.template(wn, &scope{state: true, secret: true}) // still report its expressions' errors
		}
		return
	}
	node.Action = spec
	p.with(node, m, what, "parameters", "action", &scope{state: true, secret: true}, func(at *yaml.Node, wm *mapping) {
		p.checkParams(spec, at, wm, node.With)
	})
}

// object compiles the entries of a mapping into an object value; its entries stay
// unfolded until the caller has checked them (see fold).
func (p *parser) object(m *mapping, sc *scope) *Value {
	v := &Value{Pos: p.pos(m.node), kind: objectValue}
	for i, k := range m.keys {
		e := p.template(m.vals[i], sc)
		if e == nil {
			// Already reported. An opaque placeholder keeps entries aligned and
			// escapes the checks of constants; the workflow will not run.
			e = &Value{Pos: p.pos(m.vals[i]), kind: exprValue}
		}
		v.keys = append(v.keys, k.Value)
		v.elems = append(v.elems, e)
	}
	return v
}

// checkParams checks a node's with: against the action's declaration: unknown and
// missing parameters, one-of groups, and the types of literal values.
func (p *parser) checkParams(spec *action.Spec, at *yaml.Node, wm *mapping, with *Value) {
	given := map[string]bool{}
	if wm != nil {
		names := make([]string, len(spec.Params))
		for i, prm := range spec.Params {
			names[i] = prm.Name
		}
		for i, k := range wm.keys {
			prm := spec.Param(k.Value)
			if prm == nil {
				p.errorf(k, "unknown parameter %q of action %s%s", k.Value, spec.Name, suggestOrList(k.Value, names, "parameters"))
				continue
			}
			lit, isConst := with.elems[i].Const()
			if isConst && lit == nil {
				if prm.Required {
					p.errorf(p.resolve(wm.vals[i]), "parameter %q of action %s is required but given null", k.Value, spec.Name)
				}
				continue // a null parameter counts as not given
			}
			given[k.Value] = true
			if isConst {
				if msg := prm.Check(lit); msg != "" {
					p.errorf(p.resolve(wm.vals[i]), "parameter %q of action %s: %s", k.Value, spec.Name, msg)
				}
			}
		}
	}
	for _, prm := range spec.Params {
		if prm.Required && !given[prm.Name] {
			p.errorf(at, "action %s: missing parameter %q (%s)", spec.Name, prm.Name, firstSentence(prm.Doc))
		}
	}
	for _, g := range spec.OneOf {
		if msg := g.Check(func(name string) bool { return given[name] }); msg != "" {
			p.errorf(at, "action %s: %s", spec.Name, msg)
		}
	}
}

func firstSentence(doc string) string {
	if i := strings.IndexAny(doc, ".\n"); i > 0 {
		return doc[:i]
	}
	return doc
}
