package runtime

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
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
		v, err := value.Normalize(inputs[name])
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

// DefaultMaxInputBytes bounds an input file (-i name=@file, --input-file) unless a
// caller says otherwise: 256 MiB.
const DefaultMaxInputBytes = 256 << 20

// ParseInput parses one -i argument: name=value, where value is JSON when it parses
// as JSON and a string otherwise, or name=@file, a JSON or YAML file of at most
// maxBytes (0: DefaultMaxInputBytes). Relative files resolve against dir.
func ParseInput(arg, dir string, maxBytes int64) (string, any, error) {
	name, text, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return "", nil, &InputError{Msg: fmt.Sprintf("input %q: expected name=value, name=@file.json or name=@file.yaml", arg)}
	}
	if file, isFile := strings.CutPrefix(text, "@"); isFile {
		v, err := ReadInputFile(resolve(dir, file), maxBytes)
		if err != nil {
			return "", nil, &InputError{Msg: fmt.Sprintf("input %q: %v", name, err)}
		}
		return name, v, nil
	}
	if v, err := value.Decode([]byte(text)); err == nil {
		return name, v, nil
	}
	return name, text, nil
}

// ReadInputFile reads a JSON or YAML file of at most maxBytes (0:
// DefaultMaxInputBytes) into JSON types. A regular file or a pipe is read; a
// directory or a device is refused.
func ReadInputFile(path string, maxBytes int64) (any, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInputBytes
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("cannot read %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if int64(len(src)) > maxBytes {
		limit := fmt.Sprintf("%d bytes", maxBytes)
		if maxBytes >= 1<<20 {
			limit = fmt.Sprintf("%d MiB", maxBytes>>20)
		}
		return nil, fmt.Errorf("%s is larger than %s, the limit on input files: raise it with --max-input-bytes", path, limit)
	}
	if v, err := value.Decode(src); err == nil {
		return v, nil
	}
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s is neither JSON nor YAML: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return value.Normalize(doc)
}

// ReadInputsFile reads --input-file: a JSON or YAML object of inputs, of at most
// maxBytes (0: DefaultMaxInputBytes).
func ReadInputsFile(path string, maxBytes int64) (map[string]any, error) {
	v, err := ReadInputFile(path, maxBytes)
	if err != nil {
		return nil, &InputError{Msg: "--input-file: " + err.Error()}
	}
	obj, ok := v.(map[string]any)
	if !ok && v != nil {
		// Not quoted: a file that is not an object of inputs may hold anything.
		return nil, &InputError{Msg: fmt.Sprintf("--input-file %s: expected an object of inputs (name: value), got a %s", path, value.Kind(v))}
	}
	return obj, nil
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
