package value

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Normalize converts a Go value to a value: what an expression built, what an
// action returned, what a decoder produced. Maps become map[string]any (keys
// formatted as text), slices []any, numbers int or float64 by the integer rule,
// json.Number likewise, times RFC 3339 strings and durations "1m30s". Infinities,
// NaN, values nested deeper than MaxDepth and types with no JSON form (funcs,
// channels) are errors. Text that is not valid UTF-8 has U+FFFD in place of each
// bad byte sequence, so that it survives a trip through JSON (the journal) as it is.
//
// A value that is already normalised is returned as it is, without allocating;
// otherwise only the containers that change are copied.
func Normalize(v any) (any, error) { return normalize(v, 0) }

func normalize(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return v, nil
	case string:
		if !utf8.ValidString(x) {
			return strings.ToValidUTF8(x, "\uFFFD"), nil // valid, so the journal gives it back as it is
		}
		return v, nil
	case int:
		if x < -MaxInt || x > MaxInt {
			return float64(x), nil
		}
		return v, nil
	case float64:
		if x != math.Trunc(x) && !math.IsInf(x, 0) && !math.IsNaN(x) {
			return v, nil // no need to box it again
		}
		return number(x)
	case []any:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		var out []any
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			if out == nil && !same(n, e) {
				out = make([]any, len(x))
				copy(out, x[:i])
			}
			if out != nil {
				out[i] = n
			}
		}
		if out == nil {
			return v, nil // as it was (boxing x again would allocate)
		}
		return out, nil
	case map[string]any:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		var out map[string]any
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			if out == nil && !same(n, e) {
				out = make(map[string]any, len(x))
				for k2, e2 := range x {
					out[k2] = e2
				}
			}
			if out != nil {
				out[k] = n
			}
		}
		if out == nil {
			return v, nil // as it was (boxing x again would allocate)
		}
		return out, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return normalize(int(i), depth)
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return number(f)
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case time.Duration:
		return x.String(), nil
	}
	if f, ok := Float(v); ok {
		if i, isInt := v.(int64); isInt && i >= -MaxInt && i <= MaxInt {
			return int(i), nil
		}
		return number(f)
	}
	return reflected(v, depth)
}

var errTooDeep = fmt.Errorf("a value nested more than %d levels deep", MaxDepth)

// number applies the integer rule to a float.
func number(f float64) (any, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("%v is not a JSON number (a division by zero?)", f)
	}
	if i, ok := Integral(f); ok {
		return i, nil // whole numbers are integers, so % works on them
	}
	return f, nil
}

// reflected normalises the containers and pointers that are not JSON types already.
func reflected(v any, depth int) (any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			n, err := normalize(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(it.Key().Interface())] = n
		}
		return out, nil
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), depth)
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	}
	return nil, fmt.Errorf("a %T is not a JSON value", v)
}

// same reports whether normalising kept the value as it was; only scalars and
// containers that were already JSON types are kept as they are.
func same(n, e any) bool {
	switch e := e.(type) {
	case float64:
		_, isInt := n.(int)
		return !isInt // a whole float became an int
	case int:
		_, isInt := n.(int)
		return isInt
	case []any:
		m, ok := n.([]any)
		return ok && len(m) == len(e) && (len(e) == 0 || &m[0] == &e[0])
	case map[string]any:
		m, ok := n.(map[string]any)
		return ok && reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(e).UnsafePointer()
	case string:
		s, ok := n.(string)
		return ok && s == e
	case nil, bool:
		return true
	}
	return false
}
