package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/spec"
)

// FuzzLoad checks that no input makes the loader panic, and that it always returns
// either a workflow or a list of positioned errors. Seeds: testdata/fuzz/FuzzLoad,
// every golden error case and every example workflow.
func FuzzLoad(f *testing.F) {
	reg := registry(f)
	golden, _ := filepath.Glob("testdata/errors/*.txtar")
	for _, file := range golden {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range ar.Files {
			if strings.HasSuffix(af.Name, ".yaml") {
				f.Add(af.Data)
			}
		}
	}
	examples, _ := filepath.Glob("../workflows/*.yaml")
	for _, file := range examples {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		wf, err := spec.Parse(filepath.Join(dir, "fuzz.yaml"), src, reg)
		if (wf == nil) == (err == nil) {
			t.Fatalf("Parse returned workflow %v and error %v: want exactly one", wf != nil, err)
		}
		if err == nil {
			if wf.Start == nil || len(wf.Nodes) == 0 {
				t.Fatal("a loaded workflow has no start node")
			}
			return
		}
		var list spec.Errors
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("Parse error %T is not a non-empty spec.Errors: %v", err, err)
		}
		for _, e := range list {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
				t.Fatalf("problem without a position or message: %q", e.Error())
			}
		}
	})
}
