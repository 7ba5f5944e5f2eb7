package spec

import (
	"fmt"
	"regexp"

	"gopkg.in/yaml.v3"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// state checks the state declarations.
func (p *parser) state(n *yaml.Node) {
	m := p.mapping(n, nil, "state")
	if m == nil {
		return
	}
	for i, k := range m.keys {
		name := k.Value
		if !identRE.MatchString(name) {
			p.errorf(k, "state field name %q: use letters, digits and _ (it is written state.%s in expressions)", name, name)
			continue
		}
		f := &Field{Name: name, Pos: p.pos(k), Index: len(p.wf.State)}
		p.field(f, p.resolve(m.vals[i]))
		p.wf.State = append(p.wf.State, f)
		p.wf.fields[name] = f
	}
}

func (p *parser) field(f *Field, n *yaml.Node) {
	what := "state." + f.Name
	f.Type = &Type{Name: "any"}
	if n.Kind == yaml.ScalarNode {
		// Shorthand: `words: number`.
		if name, ok := p.str(n, what); ok {
			f.Type = p.typeName(n, name)
		}
		f.Default = f.Type.Zero()
		return
	}
	m := p.mapping(n, stateFieldDef, what)
	if m == nil {
		return
	}
	if m.get(p, "type") == nil {
		p.errorf(m.node, "%s has no type: add type: %s", what, typeNameList())
	}
	f.Type = p.typeDesc(m, what)
	f.Description = f.Type.Description
	if v := m.get(p, "required"); v != nil {
		f.Required, _ = p.boolean(v, what+".required")
	}
	f.Default = f.Type.Zero()
	if v := m.get(p, "default"); v != nil {
		if f.Required {
			p.errorf(m.key("default"), "%s is required, so it gets its value at run time: remove default or required", what)
		}
		if def, ok := p.literal(v); ok {
			if msg := f.Type.Check(def); msg != "" {
				p.errorf(v, "%s.default: %s", what, msg)
			}
			f.Default = def
		}
	}
	f.Reducer = Reducer{Kind: Replace, Name: "replace"}
	if v := m.get(p, "reducer"); v != nil {
		p.reducer(f, v)
	}
	if (f.Reducer.Kind == Min || f.Reducer.Kind == Max) && m.get(p, "default") == nil {
		f.Default = nil // no value until the first update, which min and max then take as it is
	}
}

func typeNameList() string {
	s := ""
	for i, t := range typeNames {
		if i > 0 {
			s += "|"
		}
		s += t
	}
	return s
}

func (p *parser) typeName(n *yaml.Node, name string) *Type {
	for _, t := range typeNames {
		if t == name {
			return &Type{Name: name}
		}
	}
	alias := map[string]string{"list": "array", "str": "string", "int": "integer", "bool": "boolean",
		"float": "number", "dict": "object", "map": "object", "double": "number"}
	hint := suggest(name, typeNames)
	if a, ok := alias[name]; ok {
		hint = fmt.Sprintf("; did you mean %q?", a)
	}
	if hint == "" {
		hint = "; expected one of " + typeNameList()
	}
	p.errorf(n, "unknown type %q%s", name, hint)
	return &Type{Name: "any"}
}

// typeDesc reads type, items, properties, enum and description from m.
func (p *parser) typeDesc(m *mapping, what string) *Type {
	t := &Type{Name: "any"}
	if v := m.get(p, "type"); v != nil {
		if name, ok := p.str(v, what+".type"); ok {
			t = p.typeName(v, name)
		}
	}
	if v := m.get(p, "description"); v != nil {
		t.Description, _ = p.str(v, what+".description")
	}
	if v := m.get(p, "items"); v != nil {
		if t.Name != "array" {
			p.errorf(m.key("items"), "items applies to type array, not %s", t.Name)
		}
		t.Items = p.subType(v, what+".items")
	}
	if v := m.get(p, "properties"); v != nil {
		if t.Name != "object" {
			p.errorf(m.key("properties"), "properties applies to type object, not %s", t.Name)
		}
		if pm := p.mapping(v, nil, what+".properties"); pm != nil {
			t.Properties = map[string]*Type{}
			for i, k := range pm.keys {
				t.Properties[k.Value] = p.subType(pm.vals[i], what+".properties."+k.Value)
			}
		}
	}
	if v := m.get(p, "enum"); v != nil {
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			p.errorf(v, "%s.enum: expected a list of the allowed values, got %s", what, kindOf(v))
		} else {
			for _, e := range v.Content {
				lit, ok := p.literal(e)
				if !ok {
					continue
				}
				if t.Name != "any" {
					if msg := (&Type{Name: t.Name}).Check(lit); msg != "" {
						p.errorf(e, "%s.enum: %s", what, msg)
					}
				}
				t.Enum = append(t.Enum, lit)
			}
		}
	}
	return t
}

func (p *parser) subType(n *yaml.Node, what string) *Type {
	n = p.resolve(n)
	if n.Kind == yaml.ScalarNode {
		if name, ok := p.str(n, what); ok {
			return p.typeName(n, name)
		}
		return &Type{Name: "any"}
	}
	m := p.mapping(n, typeDef, what)
	if m == nil {
		return &Type{Name: "any"}
	}
	return p.typeDesc(m, what)
}

// reducerTypes lists the field types each reducer applies to ("any" fits all).
var reducerTypes = map[ReducerKind][]string{
	Add:    {"array", "number", "integer", "string"},
	Append: {"array"},
	Sum:    {"number", "integer"},
	Min:    {"number", "integer"},
	Max:    {"number", "integer"},
	Merge:  {"object"},
	Union:  {"array"},
}

func (p *parser) reducer(f *Field, n *yaml.Node) {
	what := "state." + f.Name + ".reducer"
	if n.Kind == yaml.MappingNode {
		m := p.mapping(n, reducerExprDef, what)
		if m == nil {
			return
		}
		e := m.get(p, "expr")
		if e == nil {
			p.errorf(n, "%s: missing key \"expr\" (an expression over current and update)", what)
			return
		}
		f.Reducer = Reducer{Kind: ExprReducer, Name: "expr", Expr: p.bareExpr(e, what, &scope{reduce: true})}
		return
	}
	name, ok := p.str(n, what)
	if !ok {
		return
	}
	kind, ok := reducerKinds[name]
	if !ok {
		hint := suggest(name, reducerNames)
		if hint == "" {
			hint = fmt.Sprintf("; expected one of %s, or {expr: ...}", quoted(reducerNames))
		}
		p.errorf(n, "unknown reducer %q%s", name, hint)
		return
	}
	f.Reducer = Reducer{Kind: kind, Name: name}
	if types, limited := reducerTypes[kind]; limited && f.Type.Name != "any" && !contains(types, f.Type.Name) {
		p.errorf(n, "reducer %q cannot apply to %s field %q: it works on %s fields", name, f.Type.Name, f.Name, quoted(types))
	}
}

// UpdateType is the type an update of the field must have: the field's own type,
// or, for append, the element type. It is nil for expression reducers, which may
// take anything.
func (f *Field) UpdateType() *Type {
	switch f.Reducer.Kind {
	case ExprReducer:
		return nil
	case Append:
		if f.Type.Items != nil {
			return f.Type.Items
		}
		return &Type{Name: "any"}
	}
	return f.Type
}
