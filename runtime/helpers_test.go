package runtime_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// testRegistry holds the built-ins and the given test actions.
func testRegistry(t testing.TB, extra ...*action.Spec) *action.Registry {
	t.Helper()
	reg, err := action.NewRegistry(append(builtins.All(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// load writes files (name → YAML) into a temporary directory and loads
// "workflow.yaml" from it.
func load(t testing.TB, reg *action.Registry, files map[string]string) *spec.Workflow {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wf, err := spec.Load(filepath.Join(dir, "workflow.yaml"), reg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return wf
}

// loadSrc loads a single workflow file.
func loadSrc(t testing.TB, reg *action.Registry, src string) *spec.Workflow {
	t.Helper()
	return load(t, reg, map[string]string{"workflow.yaml": src})
}

// runJSON runs a workflow and returns its output as JSON.
func runJSON(t testing.TB, wf *spec.Workflow, inputs map[string]any, opts runtime.Options) string {
	t.Helper()
	res, err := runtime.Run(context.Background(), wf, inputs, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := json.Marshal(res.Output)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testAction declares a test action with the given parameters and function.
func testAction(name string, params []action.Param, out []action.Field, fn action.Func) *action.Spec {
	return &action.Spec{Name: name, Summary: "test action " + name, Params: params, Output: out, Func: fn}
}

func runJSONValue(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runJSONValueErr(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// loadArchive writes the files of testdata/<archive>.txtar into a temporary
// directory and loads main from it.
func loadArchive(t testing.TB, reg *action.Registry, archive, main string) *spec.Workflow {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", archive+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range ar.Files {
		files[f.Name] = string(f.Data)
	}
	files["workflow.yaml"] = files[main]
	return load(t, reg, files)
}
