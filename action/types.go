package action

import (
	"fmt"
	"math"
	"time"
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

// Kind names the JSON kind of a value for messages: string, number, boolean, list,
// object or null.
func Kind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	default:
		if _, ok := Float(v); ok {
			return "number"
		}
		return fmt.Sprintf("%T", v)
	}
}

// Float returns v as a float64 when v is a Go number.
func Float(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case int16:
		return float64(n), true
	case int8:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint8:
		return float64(n), true
	case float32:
		return float64(n), true
	}
	return 0, false
}

// Int returns v as an int when v is an integral number.
func Int(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int(n), true
		}
		return 0, false
	}
	f, ok := Float(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return 0, false
	}
	return int(f), true
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
		_, ok := Float(v)
		return ok
	case Integer:
		_, ok := Int(v)
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
		return fmt.Sprintf("expected %s, got %s", p.Type.Noun(), describe(v))
	}
	if p.Type == Array && p.Items != "" && p.Items != Any {
		for i, e := range v.([]any) {
			if !p.Items.Matches(e) {
				return fmt.Sprintf("element %d: expected %s, got %s", i, p.Items.Noun(), describe(e))
			}
		}
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if e == v {
				return ""
			}
		}
		return fmt.Sprintf("expected one of %s, got %s", enumList(p.Enum), describe(v))
	}
	return ""
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("%q", v)
	case nil, bool:
		return fmt.Sprint(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	if _, ok := Float(v); ok {
		return fmt.Sprint(v)
	}
	return Kind(v)
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
