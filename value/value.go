// Package value is flowrun's model of data: the JSON values that state fields,
// inputs, expression results, action parameters and outputs hold, and the rules
// every package applies to them.
//
// A value is nil, a bool, an int, a float64, a string, a []any or a map[string]any
// whose elements are values. Numbers follow one rule (see Int): a whole number
// within ±2^53 is an int, any other number a float64, so that `%` works on whole
// numbers wherever they come from and every int survives a trip through JSON.
// Values nest at most MaxDepth levels deep.
//
// The package is a leaf: it uses the standard library only.
package value

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// MaxInt is the largest integer a value holds as an int: 2^53, the last of the
// consecutive integers a float64 (and so JSON in most languages) holds exactly.
const MaxInt = 1 << 53

// MaxDepth is how deeply values may nest: lists and objects inside lists and
// objects. Normalize refuses deeper values, so every value can be encoded, decoded
// and walked without exhausting the stack.
const MaxDepth = 1000

// Integral returns f as an int when it is a whole number within ±MaxInt.
func Integral(f float64) (int, bool) {
	if f == math.Trunc(f) && f >= -MaxInt && f <= MaxInt {
		return int(f), true
	}
	return 0, false
}

// Int returns v as an int when v is a whole number within ±MaxInt, of any Go
// numeric type.
func Int(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, n >= -MaxInt && n <= MaxInt
	case float64:
		return Integral(n)
	}
	f, ok := Float(v)
	if !ok {
		return 0, false
	}
	return Integral(f)
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

// Kind names the JSON kind of a value for messages: null, boolean, number, string,
// list or object.
func Kind(v any) string {
	switch v.(type) {
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
	}
	if _, ok := Float(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// Describe shows a value briefly in a message: strings quoted (and cut short),
// numbers and booleans as they are, null, "a list of 3", "an object".
func Describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return fmt.Sprintf("a list of %d", len(v))
	case map[string]any:
		return "an object"
	case int:
		return strconv.Itoa(v)
	}
	if f, ok := Float(v); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprintf("a %T", v)
}

// Text renders a value inside an interpolated string: strings as they are, null as
// nothing, everything else as compact JSON.
func Text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case int:
		return strconv.Itoa(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Equal reports whether two values are equal, numbers by value (1 == 1.0).
func Equal(a, b any) bool {
	fa, okA := Float(a)
	fb, okB := Float(b)
	if okA || okB {
		return okA && okB && fa == fb
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !Equal(e, f) {
				return false
			}
		}
		return true
	}
	return a == b
}

// Key returns a comparable key of a value, equal for equal values (Equal): scalars
// as they are, whole numbers as ints, lists and objects as canonical JSON.
func Key(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int:
		return v
	case float64:
		if i, ok := Integral(x); ok {
			return i
		}
		return x
	}
	b, _ := json.Marshal(v) // objects marshal with sorted keys; 2.0 as 2
	return "\x00" + string(b)
}
