package value

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode parses one JSON value: integral numbers within ±MaxInt become int, other
// numbers float64. A number out of float64's range, trailing data and nesting
// deeper than MaxDepth are errors.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return numbers(v, false, 0)
}

// Append writes a value as JSON so that DecodeExact gives it back exactly as it
// was: a float64 that happens to be whole is written with ".0" so that it stays a
// float, and object keys are sorted so that equal values give equal bytes. It is
// the codec of the journal. Text that is not valid UTF-8 is written with U+FFFD in
// place of the bad bytes, as encoding/json does.
func Append(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float64:
		n := len(b)
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
		if !bytes.ContainsAny(b[n:], ".eEn") {
			b = append(b, ".0"...)
		}
		return b
	case string:
		return AppendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = Append(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, k)
			b = append(b, ':')
			b = Append(b, x[k])
		}
		return append(b, '}')
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}

// AppendString writes s as a JSON string; plain ASCII goes straight through.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if NeedsEscape(s[i]) {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// NeedsEscape reports whether a byte cannot stand as it is inside a JSON string
// written by AppendString (or starts a multi-byte character, which is checked).
func NeedsEscape(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf }

// DecodeExact decodes JSON written by Append: numbers written with a point or an
// exponent are float64, others int.
func DecodeExact(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v, true, 0)
}

// numbers replaces the json.Number values of a decoded value, in place. exact keeps
// a number written with a point or an exponent a float64 even when it is whole.
func numbers(v any, exact bool, depth int) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if exact && strings.ContainsAny(string(x), ".eE") {
			return x.Float64()
		}
		if i, err := x.Int64(); err == nil && (exact || i >= -MaxInt && i <= MaxInt) {
			return int(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		if exact {
			return f, nil
		}
		return number(f)
	case []any:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		for i, e := range x {
			n, err := numbers(e, exact, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		for k, e := range x {
			n, err := numbers(e, exact, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}
