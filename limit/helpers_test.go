package limit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/spec"
)

// planCorpus writes testdata/plan.txtar to a new directory and returns it.
func planCorpus(t *testing.T) string {
	t.Helper()
	ar, err := txtar.ParseFile("testdata/plan.txtar")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadPlanned loads one workflow of the corpus in dir.
func loadPlanned(t *testing.T, dir, name string) *spec.Workflow {
	t.Helper()
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := (&spec.Loader{Registry: reg}).Load(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return wf
}
