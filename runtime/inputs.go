package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/spec"
)

// InputError is a problem with a run's inputs: a missing required field, an unknown
// field, a value of the wrong type, or an input that cannot be read.
type InputError struct {
	Msg string
}

func (e *InputError) Error() string { return e.Msg }

// CheckInputs checks inputs against the workflow's state fields and returns them
// normalised to JSON types. Every problem is reported, one per line.
func CheckInputs(wf *spec.Workflow, inputs map[string]any) (map[string]any, error) {
	var problems []string
	out := make(map[string]any, len(inputs))
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := wf.Field(name)
		if f == nil {
			problems = append(problems, fmt.Sprintf("input %q: %s has no state field %q%s", name, wf.File, name, fieldHint(wf, name)))
			continue
		}
		v, err := spec.Normalize(inputs[name])
		if err != nil {
			problems = append(problems, fmt.Sprintf("input %q: %v", name, err))
			continue
		}
		if msg := f.Type.Check(v); msg != "" {
			problems = append(problems, fmt.Sprintf("input %q (state field at %s): %s", name, f.Pos, msg))
			continue
		}
		out[name] = v
	}
	for _, f := range wf.State {
		if _, ok := inputs[f.Name]; !ok && f.Required {
			problems = append(problems, fmt.Sprintf("missing input %q (%s, required at %s): give it with -i %s=...",
				f.Name, f.Type.Noun(), f.Pos, f.Name))
		}
	}
	if problems != nil {
		return nil, &InputError{Msg: strings.Join(problems, "\n")}
	}
	return out, nil
}

func fieldHint(wf *spec.Workflow, name string) string {
	names := make([]string, len(wf.State))
	for i, f := range wf.State {
		names[i] = f.Name
	}
	if hint := spec.DidYouMean(name, names); hint != "" {
		return hint
	}
	if len(names) == 0 {
		return " (it declares no state)"
	}
	return "; its fields are " + strings.Join(names, ", ")
}

// ParseInput parses one -i argument: name=value, where value is JSON when it parses
// as JSON and a string otherwise, or name=@file, a JSON or YAML file. Relative files
// resolve against dir.
func ParseInput(arg, dir string) (string, any, error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return "", nil, &InputError{Msg: fmt.Sprintf("input %q: expected name=value, name=@file.json or name=@file.yaml", arg)}
	}
	if file, isFile := strings.CutPrefix(value, "@"); isFile {
		v, err := ReadInputFile(resolve(dir, file))
		if err != nil {
			return "", nil, &InputError{Msg: fmt.Sprintf("input %q: %v", name, err)}
		}
		return name, v, nil
	}
	if v, err := decodeJSON([]byte(value)); err == nil {
		return name, v, nil
	}
	return name, value, nil
}

// ReadInputFile reads a JSON or YAML file into JSON types.
func ReadInputFile(path string) (any, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if v, err := decodeJSON(src); err == nil {
		return v, nil
	}
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s is neither JSON nor YAML: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return spec.Normalize(doc)
}

// ReadInputsFile reads --input-file: a JSON or YAML object of inputs.
func ReadInputsFile(path string) (map[string]any, error) {
	v, err := ReadInputFile(path)
	if err != nil {
		return nil, &InputError{Msg: "--input-file: " + err.Error()}
	}
	obj, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, &InputError{Msg: fmt.Sprintf("--input-file %s: expected an object of inputs (name: value), got %s", path, describe(v))}
	}
	return obj, nil
}

// decodeJSON decodes one JSON value; integral numbers become int, others float64.
// A number out of float64's range is an error.
func decodeJSON(src []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return convertNumbers(v, false)
}

// convertNumbers replaces the json.Number values in v. Integral numbers become int
// and others float64; exact keeps a number written with a point or an exponent a
// float64 even when it is whole (the journal's "2.0").
func convertNumbers(v any, exact bool) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if exact && strings.ContainsAny(string(x), ".eE") {
			return x.Float64()
		}
		if i, err := x.Int64(); err == nil && (exact || i >= -(1<<53) && i <= 1<<53) {
			return int(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		if !exact && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int(f), nil
		}
		return f, nil
	case []any:
		for i, e := range x {
			n, err := convertNumbers(e, exact)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := convertNumbers(e, exact)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}

func resolve(dir, path string) string {
	if dir == "" || strings.HasPrefix(path, "/") {
		return path
	}
	return dir + string(os.PathSeparator) + path
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
