package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/value"
)

// Limits that keep a hostile or broken file from costing more than a clear error.
const (
	maxFileBytes = 8 << 20   // a workflow file is text a person wrote
	maxVisits    = 1_000_000 // YAML nodes visited, aliases expanded each time
	maxExprChars = 4096      // an expression longer than this belongs in an action
	maxExprNodes = 2000      // expr AST nodes per expression
)

// errBudget stops loading a file whose aliases expand past maxVisits.
type errBudget struct{ at *yaml.Node }

// parser checks and compiles one workflow file.
type parser struct {
	*loader
	wf     *Workflow
	name   string   // the file's path for messages
	lines  []string // the file's lines, for positions inside block scalars
	visits int
	last   *yaml.Node // the node visited last, where a budget overrun is reported
	// templates caches compiled values by YAML node and scope (see template).
	templates map[templateKey]templateHit
	// itemVars are the item variable names of the file's maps (as:), for hints.
	itemVars []string
	// fieldNames are the state fields, for checking state.<name> in expressions;
	// nil until the state is read.
	fieldNames []string
}

func (p *parser) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: p.name}
	}
	return Pos{File: p.name, Line: n.Line, Col: n.Column}
}

func (p *parser) errorAt(pos Pos, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errorAt(p.pos(n), format, args...)
}

func (p *parser) warnf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: p.pos(n), Msg: fmt.Sprintf(format, args...), Severity: SevWarning})
}

// resolve follows an alias to its anchor, counting the visit against the budget.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	p.last = n
	p.charge(1)
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// charge counts n more visits against the budget.
func (p *parser) charge(n int) {
	p.visits += n
	if p.visits > maxVisits {
		panic(errBudget{p.last})
	}
}

// kindOf names what a node holds, for "expected X, got Y" messages.
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		}
		return fmt.Sprintf("the string %q", clip(n.Value, 40))
	}
	return "nothing"
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// mapping is a checked YAML mapping: no duplicate keys, merge keys applied, and, when
// it has a definition, no unknown keys.
type mapping struct {
	node *yaml.Node
	keys []*yaml.Node
	vals []*yaml.Node
	// guessed are the keys suggested for unknown ones: a missing key that was
	// guessed need not be reported again.
	guessed map[string]bool
}

// mapping checks that n is a mapping and returns its entries. With a def, keys the
// def does not know are reported (with a suggestion) and dropped. It returns nil
// when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, def *objDef, what string) *mapping {
	n = p.resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping (key: value), got %s", what, kindOf(n))
		return nil
	}
	m := &mapping{node: n}
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		k = p.resolve(k)
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: a key must be a name, got %s", what, kindOf(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, "duplicate key %q in %s (first at line %d)", k.Value, what, first.Line)
			continue
		}
		seen[k.Value] = k
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, v)
	}
	// Merge keys (<<: *defaults): merged entries fill in keys not written explicitly;
	// of several merged mappings, the first to have a key wins.
	for _, mv := range merges {
		mv = p.resolve(mv)
		sources := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			sources = mv.Content
		}
		for _, src := range sources {
			sm := p.mapping(src, nil, "merged mapping")
			if sm == nil {
				continue
			}
			for i, k := range sm.keys {
				if _, ok := seen[k.Value]; !ok {
					seen[k.Value] = k
					m.keys = append(m.keys, k)
					m.vals = append(m.vals, sm.vals[i])
				}
			}
		}
	}
	if def != nil {
		keys, vals := m.keys[:0], m.vals[:0]
		for i, k := range m.keys {
			if def.has(k.Value) {
				keys, vals = append(keys, k), append(vals, m.vals[i])
				continue
			}
			hint := suggest(k.Value, def.keys())
			if best := closest(k.Value, def.keys()); best != "" {
				if m.guessed == nil {
					m.guessed = map[string]bool{}
				}
				m.guessed[best] = true
			}
			if hint == "" {
				hint = "; expected one of " + strings.Join(def.keys(), ", ")
			}
			p.errorf(k, "unknown key %q in %s%s", k.Value, what, hint)
		}
		m.keys, m.vals = keys, vals
	}
	return m
}

// get returns the value of key, aliases resolved, or nil.
func (m *mapping) get(p *parser, key string) *yaml.Node {
	if i := m.index(key); i >= 0 {
		return p.resolve(m.vals[i])
	}
	return nil
}

// key returns the key node of key, or nil.
func (m *mapping) key(key string) *yaml.Node {
	if i := m.index(key); i >= 0 {
		return m.keys[i]
	}
	return nil
}

func (m *mapping) index(key string) int {
	if m == nil {
		return -1
	}
	for i, k := range m.keys {
		if k.Value == key {
			return i
		}
	}
	return -1
}

// str decodes a string scalar.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.errorf(n, "%s: expected a string, got %s", what, kindOf(n))
		return "", false
	}
	return n.Value, true
}

// integer decodes an integer scalar no smaller than min.
func (p *parser) integer(n *yaml.Node, what string, min int) (int, bool) {
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v > math.MaxInt32*1024 {
		p.errorf(n, "%s: expected an integer, got %s", what, kindOf(n))
		return 0, false
	}
	if int(v) < min {
		p.errorf(n, "%s: expected an integer of at least %d, got %d", what, min, v)
		return 0, false
	}
	return int(v), true
}

// number decodes a number scalar.
func (p *parser) number(n *yaml.Node, what string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, true
		}
	}
	p.errorf(n, "%s: expected a number, got %s", what, kindOf(n))
	return 0, false
}

// boolean decodes true or false.
func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, "%s: expected true or false, got %s", what, kindOf(n))
		return false, false
	}
	var b bool
	return b, n.Decode(&b) == nil
}

// duration decodes a duration string such as "500ms".
func (p *parser) duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		d, err := time.ParseDuration(n.Value)
		if err == nil && d >= 0 {
			return d, true
		}
	}
	msg := fmt.Sprintf("%s: expected a duration such as \"500ms\", \"30s\" or \"1m30s\", got %s", what, kindOf(n))
	if n.Tag == "!!int" || n.Tag == "!!float" {
		unit := "s"
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f >= 100 {
			unit = "ms" // 200 is more likely milliseconds than minutes
		}
		msg += fmt.Sprintf("; add a unit: \"%s%s\"", n.Value, unit)
	}
	p.errorf(n, "%s", msg)
	return 0, false
}

// literal converts a YAML value to JSON types: string-keyed objects, lists, strings,
// booleans, null, int for integral numbers and float64 for others.
func (p *parser) literal(n *yaml.Node) (any, bool) {
	n = p.resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := p.mapping(n, nil, "value")
		if m == nil {
			return nil, false
		}
		obj := make(map[string]any, len(m.keys))
		ok := true
		for i, k := range m.keys {
			v, vok := p.literal(m.vals[i])
			obj[k.Value], ok = v, ok && vok
		}
		return obj, ok
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		ok := true
		for i, e := range n.Content {
			v, eok := p.literal(e)
			list[i], ok = v, ok && eok
		}
		return list, ok
	case yaml.ScalarNode:
		return p.scalar(n)
	}
	p.errorf(n, "unexpected YAML node")
	return nil, false
}

func (p *parser) scalar(n *yaml.Node) (any, bool) {
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err == nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil && i >= -value.MaxInt && i <= value.MaxInt {
			return int(i), true
		}
		p.errorf(n, "the number %s is too large; integers must lie within ±2^53", n.Value)
		return nil, false
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			p.errorf(n, "%s is not a JSON number; quote it if it is a string", n.Value)
			return nil, false
		}
		if i, ok := value.Integral(f); ok {
			return i, true // integral numbers are integers, so % works on them
		}
		return f, true
	}
	return n.Value, true // !!str, !!timestamp, !!binary: the text as written
}
