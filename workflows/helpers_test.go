package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

func registry(t *testing.T) *action.Registry {
	t.Helper()
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// yamlFiles lists every workflow file under this directory, lib/ included.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no workflow files found")
	}
	return files
}

// what env holds) and returns its result.
func run(t *testing.T, file string, inputs map[string]any, opts runtime.Options, env map[string]string) *runtime.Result {
	t.Helper()
	wf, err := spec.Load(file, registry(t))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	opts.Getenv = func(name string) string { return env[name] }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := runtime.Run(ctx, wf, inputs, opts)
	if err != nil {
		var re *runtime.RunError
		if errors.As(err, &re) {
			t.Fatalf("run: %v\n%s", err, runtime.Report(re.Failures))
		}
		t.Fatalf("run: %v", err)
	}
	return res
}

// outputJSON renders a result's output as `flowrun run` prints it: an object with
// the output fields in declaration order.
func outputJSON(t *testing.T, res *runtime.Result) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("{")
	for i, name := range res.Fields {
		if i > 0 {
			b.WriteString(",")
		}
		key, _ := json.Marshal(name)
		val, err := json.Marshal(res.Output[name])
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		b.Write(key)
		b.WriteString(":")
		b.Write(val)
	}
	b.WriteString("}")
	return b.Bytes()
}

// plain turns a value into what encoding/json decodes it to (float64 numbers,
// map[string]any objects), so that it compares with a JSON literal.
func plain(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func parse(t *testing.T, s string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("bad want JSON: %v\n%s", err, s)
	}
	return out
}

// wantOutput compares the whole output with a JSON literal.
func wantOutput(t *testing.T, res *runtime.Result, want string) {
	t.Helper()
	if diff := cmp.Diff(parse(t, want), plain(t, res.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// field returns one output field as plain JSON values.
func field(t *testing.T, res *runtime.Result, name string) any {
	t.Helper()
	v, ok := res.Output[name]
	if !ok {
		t.Fatalf("output has no field %q (fields %v)", name, res.Fields)
	}
	return plain(t, v)
}

// events collects a run's events.
type events struct {
	mu  sync.Mutex
	all []runtime.Event
}

func (e *events) Observe(ev *runtime.Event) {
	e.mu.Lock()
	e.all = append(e.all, *ev)
	e.mu.Unlock()
}

// lines returns the events as the JSON lines --events writes.
func (e *events) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.all))
	for i, ev := range e.all {
		b, _ := json.Marshal(ev)
		out[i] = string(b)
	}
	return out
}
