package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowrun/flowrun/action"
)

// This file holds what several families share: reading bound parameters, turning
// decoded JSON and YAML into the JSON types actions return, and waiting.

// env returns the call's environment, or an empty one when the caller gave none.
func env(call *action.Call) *action.Env {
	if call.Env == nil {
		return &action.Env{}
	}
	return call.Env
}

// getenv reads an environment variable through the run's Env.
func getenv(e *action.Env, name string) string {
	if e.Getenv != nil {
		return e.Getenv(name)
	}
	return os.Getenv(name)
}

// wait sleeps for d through Env.Sleep when set, else on a timer; it returns early
// with the context's cause when ctx is done.
func wait(ctx context.Context, e *action.Env, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// str returns a string parameter, "" when absent.
func str(p map[string]any, name string) string {
	s, _ := p[name].(string)
	return s
}

// integer returns an integer parameter and whether it was given.
func integer(p map[string]any, name string) (int, bool) {
	v, ok := p[name]
	if !ok || v == nil {
		return 0, false
	}
	return action.Int(v)
}

// number returns a number parameter and whether it was given.
func number(p map[string]any, name string) (float64, bool) {
	v, ok := p[name]
	if !ok || v == nil {
		return 0, false
	}
	return action.Float(v)
}

// duration returns a duration parameter, 0 when absent.
func duration(p map[string]any, name string) (time.Duration, error) {
	s := str(p, name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, action.Permanentf("parameter %q: %v", name, err)
	}
	return d, nil
}

// stringMap returns an object parameter whose values are scalars as a sorted list
// of name/value pairs; lists and objects are refused.
func stringMap(p map[string]any, name string) ([][2]string, error) {
	m, _ := p[name].(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(m))
	for _, k := range keys {
		s, ok := scalarString(m[k])
		if !ok {
			return nil, action.Permanentf("parameter %q: value of %q: expected a string, got %s", name, k, action.Kind(m[k]))
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
	if n, ok := action.Int(v); ok {
		return strconv.Itoa(n), true
	}
	if f, ok := action.Float(v); ok {
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

// decodeJSON parses exactly one JSON value and normalises it to JSON types.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("unexpected data after the JSON value at offset %d", dec.InputOffset())
	}
	return normalize(v), nil
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

// normalize converts decoded JSON or YAML to the JSON types actions return:
// string-keyed maps, []any, int for integral numbers, float64, string, bool, nil.
func normalize(v any) any {
	switch v := v.(type) {
	case nil, string, bool, int:
		return v
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n >= math.MinInt && n <= math.MaxInt {
			return int(n)
		}
		f, err := v.Float64()
		if err != nil {
			return string(v)
		}
		return normalize(f)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int(v)
		}
		return v
	case float32:
		return normalize(float64(v))
	case int64:
		if v >= math.MinInt && v <= math.MaxInt {
			return int(v)
		}
		return float64(v)
	case uint64:
		if v <= math.MaxInt {
			return int(v)
		}
		return float64(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := scalarString(k)
			if !ok {
				ks = fmt.Sprint(k)
			}
			out[ks] = normalize(e)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	if n, ok := action.Int(v); ok {
		return n
	}
	if f, ok := action.Float(v); ok {
		return f
	}
	return fmt.Sprint(v)
}
