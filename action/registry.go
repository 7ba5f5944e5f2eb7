package action

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Registry is a set of action declarations, looked up by name. It is a value built
// from declarations (builtins.All(), plus a library user's own) and passed to the
// loader and the runtime; there is no global registry. A Registry is immutable and
// safe for concurrent use.
type Registry struct {
	byName map[string]*Spec
	sorted []*Spec
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// NewRegistry checks the declarations and returns a registry holding them. A name
// declared twice, a malformed name or parameter, or a default that does not match its
// parameter's type is an error: declarations are code, and a broken one should fail
// the program's tests, not a user's run.
func NewRegistry(specs ...*Spec) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Spec, len(specs))}
	for _, s := range specs {
		if err := check(s); err != nil {
			return nil, err
		}
		if _, dup := r.byName[s.Name]; dup {
			return nil, fmt.Errorf("action %q declared twice", s.Name)
		}
		r.byName[s.Name] = s
		r.sorted = append(r.sorted, s)
	}
	sort.Slice(r.sorted, func(i, j int) bool { return r.sorted[i].Name < r.sorted[j].Name })
	return r, nil
}

// With returns a new registry holding r's declarations and specs; a name already in
// r is an error.
func (r *Registry) With(specs ...*Spec) (*Registry, error) {
	return NewRegistry(append(append([]*Spec(nil), r.sorted...), specs...)...)
}

// Lookup returns the declaration of the named action, or nil.
func (r *Registry) Lookup(name string) *Spec { return r.byName[name] }

// Specs returns every declaration, sorted by name. The caller must not modify them.
func (r *Registry) Specs() []*Spec { return r.sorted }

// Names returns the action names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, len(r.sorted))
	for i, s := range r.sorted {
		names[i] = s.Name
	}
	return names
}

func check(s *Spec) error {
	if s == nil {
		return fmt.Errorf("nil action declaration")
	}
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("action name %q: want lower-case words separated by dots", s.Name)
	}
	if s.Summary == "" {
		return fmt.Errorf("action %q: no summary", s.Name)
	}
	if s.Func == nil {
		return fmt.Errorf("action %q: no function", s.Name)
	}
	seen := map[string]bool{}
	for _, p := range s.Params {
		if p.Name == "" || strings.ContainsAny(p.Name, " .") {
			return fmt.Errorf("action %q: bad parameter name %q", s.Name, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("action %q: parameter %q declared twice", s.Name, p.Name)
		}
		seen[p.Name] = true
		if !p.Type.valid() || (p.Items != "" && !p.Items.valid()) {
			return fmt.Errorf("action %q parameter %q: unknown type %q", s.Name, p.Name, p.Type)
		}
		if p.Default != nil {
			if msg := p.Check(p.Default); msg != "" {
				return fmt.Errorf("action %q parameter %q: default: %s", s.Name, p.Name, msg)
			}
			if p.Required {
				return fmt.Errorf("action %q parameter %q: required with a default", s.Name, p.Name)
			}
		}
	}
	for _, g := range s.OneOf {
		for _, name := range g.Params {
			if !seen[name] {
				return fmt.Errorf("action %q: one-of group names unknown parameter %q", s.Name, name)
			}
		}
	}
	return nil
}

// Param returns the declaration of the named parameter, or nil.
func (s *Spec) Param(name string) *Param {
	for i := range s.Params {
		if s.Params[i].Name == name {
			return &s.Params[i]
		}
	}
	return nil
}

// OutputField returns the declaration of the named output field, or nil.
func (s *Spec) OutputField(name string) *Field {
	for i := range s.Output {
		if s.Output[i].Name == name {
			return &s.Output[i]
		}
	}
	return nil
}

// Bind checks the parameters of one call and returns them with defaults applied. It
// reports the first problem: an unknown or missing parameter, a value of the wrong
// type, a value outside the parameter's enum, or a broken one-of group.
func (s *Spec) Bind(with map[string]any) (Params, error) {
	for name := range with {
		if s.Param(name) == nil {
			return nil, fmt.Errorf("unknown parameter %q", name)
		}
	}
	out := make(Params, len(s.Params))
	for _, p := range s.Params {
		v, ok := with[p.Name]
		if !ok || v == nil {
			if p.Required {
				return nil, fmt.Errorf("missing parameter %q", p.Name)
			}
			if p.Default != nil {
				out[p.Name] = p.Default
			}
			continue
		}
		if msg := p.Check(v); msg != "" {
			return nil, fmt.Errorf("parameter %q: %s", p.Name, msg)
		}
		out[p.Name] = v
	}
	for _, g := range s.OneOf {
		if msg := g.Check(func(name string) bool { v, ok := with[name]; return ok && v != nil }); msg != "" {
			return nil, fmt.Errorf("%s", msg)
		}
	}
	return out, nil
}

// Check reports whether exactly one (Required) or at most one of the group's
// parameters is present; it returns "" when the group is satisfied.
func (g OneOf) Check(present func(name string) bool) string {
	var given []string
	for _, name := range g.Params {
		if present(name) {
			given = append(given, name)
		}
	}
	switch {
	case len(given) > 1 && len(given) == len(g.Params):
		return fmt.Sprintf("give only one of %s", quoteList(g.Params))
	case len(given) > 1:
		return fmt.Sprintf("give only one of %s, not %s", quoteList(g.Params), quoteList(given))
	case len(given) == 0 && g.Required:
		return fmt.Sprintf("missing parameter: give one of %s", quoteList(g.Params))
	}
	return ""
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 2 {
		return q[0] + " and " + q[1]
	}
	return strings.Join(q, ", ")
}
