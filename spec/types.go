package spec

import (
	"fmt"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// Type is the type of a state field or of part of one, a subset of JSON Schema:
// a type name, the element type of a list, the field types of an object, and an
// optional closed set of values.
type Type struct {
	Name        string // string, number, integer, boolean, array, object or any
	Items       *Type
	Properties  map[string]*Type
	Enum        []any
	Description string
}

var typeNames = []string{"string", "number", "integer", "boolean", "array", "object", "any"}

// Noun names the type for messages: "a string", "a list of numbers".
func (t *Type) Noun() string {
	switch t.Name {
	case "array":
		if t.Items != nil && t.Items.Name != "any" {
			return "a list of " + plural(t.Items.Name)
		}
		return "a list"
	case "any":
		return "any value"
	}
	return action.Type(t.Name).Noun()
}

func plural(name string) string {
	switch name {
	case "array":
		return "lists"
	case "boolean":
		return "booleans"
	case "integer":
		return "integers"
	case "number":
		return "numbers"
	case "object":
		return "objects"
	}
	return name + "s"
}

// Zero returns the type's zero value: "", 0, false, an empty list or object, or null.
func (t *Type) Zero() any {
	switch t.Name {
	case "string":
		return ""
	case "number", "integer":
		return 0
	case "boolean":
		return false
	case "array":
		return []any{}
	case "object":
		return map[string]any{}
	}
	return nil
}

// Check returns "" when v is a value of type t, else what is wrong, with the path to
// the offending part ("[3]: expected a string, got 7").
func (t *Type) Check(v any) string {
	if t == nil || t.Name == "any" && len(t.Enum) == 0 {
		return ""
	}
	if t.Name != "any" && !action.Type(t.Name).Matches(v) {
		return fmt.Sprintf("expected %s, got %s", t.Noun(), value.Describe(v))
	}
	if len(t.Enum) > 0 && !inEnum(t.Enum, v) {
		return fmt.Sprintf("expected one of %s, got %s", enumText(t.Enum), value.Describe(v))
	}
	switch v := v.(type) {
	case []any:
		if t.Items != nil {
			for i, e := range v {
				if msg := t.Items.Check(e); msg != "" {
					return fmt.Sprintf("[%d]: %s", i, msg)
				}
			}
		}
	case map[string]any:
		for name, pt := range t.Properties {
			if e, ok := v[name]; ok {
				if msg := pt.Check(e); msg != "" {
					return fmt.Sprintf(".%s: %s", name, msg)
				}
			}
		}
	}
	return ""
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if value.Equal(e, v) {
			return true
		}
	}
	return false
}

func enumText(enum []any) string {
	s := ""
	for i, e := range enum {
		if i > 0 {
			s += ", "
		}
		s += value.Describe(e)
	}
	return s
}

// JSONSchema returns the type as a JSON Schema fragment.
func (t *Type) JSONSchema() map[string]any {
	s := map[string]any{}
	if t.Name != "any" {
		s["type"] = t.Name
	}
	if t.Items != nil {
		s["items"] = t.Items.JSONSchema()
	}
	if len(t.Properties) > 0 {
		props := map[string]any{}
		for name, pt := range t.Properties {
			props[name] = pt.JSONSchema()
		}
		s["properties"] = props
	}
	if len(t.Enum) > 0 {
		s["enum"] = t.Enum
	}
	if t.Description != "" {
		s["description"] = t.Description
	}
	return s
}
