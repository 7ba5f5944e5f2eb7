package action

import (
	"fmt"
	"time"

	"github.com/flowrun/flowrun/value"
)

func (t Type) valid() bool {
	switch t {
	case String, Number, Integer, Boolean, Array, Object, Duration, Any:
		return true
	}
	return false
}

// Noun returns the type as a noun phrase for messages: "a string", "a list".
func (t Type) Noun() string {
	switch t {
	case String:
		return "a string"
	case Number:
		return "a number"
	case Integer:
		return "an integer"
	case Boolean:
		return "a boolean"
	case Array:
		return "a list"
	case Object:
		return "an object"
	case Duration:
		return `a duration such as "150ms" or "2m"`
	}
	return "any value"
}

// Matches reports whether v is of type t.
func (t Type) Matches(v any) bool {
	switch t {
	case Any, "":
		return true
	case String:
		_, ok := v.(string)
		return ok
	case Number:
		_, ok := value.Float(v)
		return ok
	case Integer:
		_, ok := value.Int(v)
		return ok
	case Boolean:
		_, ok := v.(bool)
		return ok
	case Array:
		_, ok := v.([]any)
		return ok
	case Object:
		_, ok := v.(map[string]any)
		return ok
	case Duration:
		s, ok := v.(string)
		if !ok {
			return false
		}
		d, err := time.ParseDuration(s)
		return err == nil && d >= 0
	}
	return false
}

// Check returns "" when v is a valid value of the parameter, else what is wrong with
// it ("expected a string, got a list").
func (p *Param) Check(v any) string {
	if !p.Type.Matches(v) {
		return fmt.Sprintf("expected %s, got %s", p.Type.Noun(), value.Describe(v))
	}
	if p.Type == Array && p.Items != "" && p.Items != Any {
		for i, e := range v.([]any) {
			if !p.Items.Matches(e) {
				return fmt.Sprintf("element %d: expected %s, got %s", i, p.Items.Noun(), value.Describe(e))
			}
		}
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if value.Equal(e, v) {
				return ""
			}
		}
		return fmt.Sprintf("expected one of %s, got %s", enumList(p.Enum), value.Describe(v))
	}
	return ""
}

func enumList(vals []any) string {
	s := ""
	for i, v := range vals {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return s
}
