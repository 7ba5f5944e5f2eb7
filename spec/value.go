package spec

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/value"
)

// Value is a value written in a workflow file, at any depth of with, update and set:
// a literal, a template "${{ e }}" (e's typed value), an interpolation
// "a ${{ e }} b" (a string), or an object or list holding any of these. Parts
// without expressions are folded into constants at load time.
type Value struct {
	Pos   Pos
	kind  valueKind
	lit   any
	expr  *Expr
	parts []part
	keys  []string // object keys, in file order
	elems []*Value // object values or list elements
}

type valueKind int

const (
	constValue valueKind = iota
	exprValue
	interpValue
	objectValue
	listValue
)

type part struct {
	text string
	expr *Expr // nil: text
}

// Field returns the value of an object value's key as written in the file, or nil
// when the value is not an object written out or has no such key.
func (v *Value) Field(key string) *Value {
	if v == nil {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.elems[i]
		}
	}
	return nil
}

// Const returns the value and true when it holds no expression.
func (v *Value) Const() (any, bool) {
	if v.kind == constValue {
		return v.lit, true
	}
	return nil, false
}

// Source returns the expression of a value computed by one expression, else "".
func (v *Value) Source() string {
	if v.kind == exprValue {
		return v.expr.Src
	}
	return ""
}

// Keys returns the keys of an object value, in file order, or nil.
func (v *Value) Keys() []string { return v.keys }

// Eval computes the value. The result is shared with the workflow when constant:
// callers treat values as immutable.
func (v *Value) Eval(m *VM, vars map[string]any) (any, error) {
	switch v.kind {
	case constValue:
		return v.lit, nil
	case exprValue:
		return v.expr.Eval(m, vars)
	case interpValue:
		var b strings.Builder
		for _, pt := range v.parts {
			if pt.expr == nil {
				b.WriteString(pt.text)
				continue
			}
			x, err := pt.expr.Eval(m, vars)
			if err != nil {
				return nil, err
			}
			b.WriteString(value.Text(x))
		}
		return b.String(), nil
	case objectValue:
		obj := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			x, err := v.elems[i].Eval(m, vars)
			if err != nil {
				return nil, err
			}
			obj[k] = x
		}
		return obj, nil
	default:
		list := make([]any, len(v.elems))
		for i, e := range v.elems {
			x, err := e.Eval(m, vars)
			if err != nil {
				return nil, err
			}
			list[i] = x
		}
		return list, nil
	}
}

// template converts a YAML value holding templates into a Value. A node reached
// again through an alias is compiled once: the cached value is shared (values are
// immutable), while the budget is still charged for its expanded size.
func (p *parser) template(n *yaml.Node, sc *scope) *Value {
	n = p.resolve(n)
	key := templateKey{n, sc.key()}
	if hit, ok := p.templates[key]; ok {
		p.charge(hit.size)
		return hit.v
	}
	before := p.visits
	v := p.compileTemplate(n, sc)
	if p.templates == nil {
		p.templates = map[templateKey]templateHit{}
	}
	p.templates[key] = templateHit{v, p.visits - before}
	return v
}

type templateKey struct {
	n     *yaml.Node
	scope string
}

type templateHit struct {
	v    *Value
	size int
}

func (p *parser) compileTemplate(n *yaml.Node, sc *scope) *Value {
	v := &Value{Pos: p.pos(n)}
	switch n.Kind {
	case yaml.MappingNode:
		m := p.mapping(n, nil, "value")
		if m == nil {
			return nil
		}
		v.kind = objectValue
		for i, k := range m.keys {
			e := p.template(m.vals[i], sc)
			if e == nil {
				return nil
			}
			v.keys = append(v.keys, k.Value)
			v.elems = append(v.elems, e)
		}
	case yaml.SequenceNode:
		v.kind = listValue
		for _, en := range n.Content {
			e := p.template(en, sc)
			if e == nil {
				return nil
			}
			v.elems = append(v.elems, e)
		}
	case yaml.ScalarNode:
		if n.Tag != "!!str" || !strings.Contains(n.Value, "${{") {
			lit, ok := p.scalar(n)
			if !ok {
				return nil
			}
			v.lit = lit
			return v
		}
		return p.interpolation(n, sc)
	default:
		return nil
	}
	v.fold()
	return v
}

// fold turns an object or list of constants into a constant.
func (v *Value) fold() {
	if v.kind != objectValue && v.kind != listValue {
		return
	}
	for _, e := range v.elems {
		if e.kind != constValue {
			return
		}
	}
	if v.kind == objectValue {
		obj := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			obj[k] = v.elems[i].lit
		}
		v.lit = obj
	} else {
		list := make([]any, len(v.elems))
		for i, e := range v.elems {
			list[i] = e.lit
		}
		v.lit = list
	}
	v.kind = constValue // keys and elems stay, for Field and their positions
}

// interpolation parses a string holding one or more ${{ e }}. "$${{" is a literal
// "${{".
func (p *parser) interpolation(n *yaml.Node, sc *scope) *Value {
	s, loc := n.Value, p.locate(n)
	v := &Value{Pos: p.pos(n), kind: interpValue}
	var text strings.Builder
	ok := true
	counted, ri := 0, 0 // runes(s, i) = ri + the runes of s[counted:i], counted as i grows
	runesTo := func(i int) int {
		ri += utf8.RuneCountInString(s[counted:i])
		counted = i
		return ri
	}
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${{") {
			text.WriteString("${{")
			i += 4
			continue
		}
		if !strings.HasPrefix(s[i:], "${{") {
			j := strings.Index(s[i:], "${{") // copy up to the next template at once
			if j < 0 {
				j = len(s) - i
			} else if j > 0 && s[i+j-1] == '$' {
				j-- // the "$" of a "$${{"
			}
			if j == 0 {
				j = 1
			}
			text.WriteString(s[i : i+j])
			i += j
			continue
		}
		end := closeBraces(s, i+3)
		if end < 0 {
			p.errorAt(loc(runesTo(i)), "unclosed ${{: add }} after the expression")
			return nil
		}
		if text.Len() > 0 {
			v.parts = append(v.parts, part{text: text.String()})
			text.Reset()
		}
		e := p.compile(s[i+3:end], loc, runesTo(i+3), sc)
		ok = ok && e != nil
		v.parts = append(v.parts, part{expr: e})
		i = end + 2
	}
	if !ok {
		return nil
	}
	if text.Len() > 0 {
		v.parts = append(v.parts, part{text: text.String()})
	}
	switch {
	case len(v.parts) == 0:
		return &Value{Pos: v.Pos, lit: ""}
	case len(v.parts) == 1 && v.parts[0].expr == nil:
		return &Value{Pos: v.Pos, lit: v.parts[0].text}
	case len(v.parts) == 1:
		// "${{ e }}" alone yields e's typed value.
		return &Value{Pos: v.Pos, kind: exprValue, expr: v.parts[0].expr}
	}
	return v
}

// runes converts byte offset i of s into a rune offset.
func runes(s string, i int) int { return utf8.RuneCountInString(s[:i]) }
