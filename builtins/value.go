package builtins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// This file holds what several families share: reading object parameters as text,
// and encoding and decoding JSON.

// stringMap returns an object parameter whose values are scalars as a sorted list
// of name/value pairs; lists and objects are refused.
func stringMap(p action.Params, name string) ([][2]string, error) {
	m := p.Object(name)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(m))
	for _, k := range keys {
		s, ok := scalarString(m[k])
		if !ok {
			return nil, action.Permanentf("parameter %q: value of %q: expected a string, got %s", name, k, value.Kind(m[k]))
		}
		out = append(out, [2]string{k, s})
	}
	return out, nil
}

// scalarString formats a string, number, boolean or null as text.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case nil:
		return "", true
	case bool:
		return strconv.FormatBool(v), true
	case []any, map[string]any:
		return "", false
	}
	if n, ok := value.Int(v); ok {
		return strconv.Itoa(n), true
	}
	if f, ok := value.Float(v); ok {
		return strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return fmt.Sprint(v), true
}

// jsonText encodes v as compact JSON without escaping <, > and &.
func jsonText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// decodeJSON parses exactly one JSON value, with the line and column of a syntax
// error.
func decodeJSON(data []byte) (any, error) {
	v, err := value.Decode(data)
	if err != nil {
		return nil, jsonError(data, err)
	}
	return v, nil
}

// jsonError adds a line and column to a JSON syntax error.
func jsonError(data []byte, err error) error {
	var off int64
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	default:
		return err
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
