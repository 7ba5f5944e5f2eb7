package spec_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/spec"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata with what the code produces now")

func registry(t testing.TB) *action.Registry {
	t.Helper()
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestErrors loads each testdata/errors/*.txtar archive's workflow.yaml (with the
// archive's other files beside it) and compares every reported problem, one per
// line, with the archive's "errors" section. Refresh with -update, then review.
func TestErrors(t *testing.T) {
	reg := registry(t)
	files, err := filepath.Glob("testdata/errors/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			want, hasWant := "", false
			for _, f := range ar.Files {
				if f.Name == "errors" {
					want, hasWant = string(f.Data), true
					continue
				}
				path := filepath.Join(dir, f.Name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := loadReport(t, reg, filepath.Join(dir, "workflow.yaml"), dir)
			if *update {
				ar.Files = replaceSection(ar.Files, "errors", got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !hasWant {
				t.Fatalf("%s has no errors section; run go test ./spec -run TestErrors -update", file)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}
}

// loadReport loads a workflow and returns its problems (or its warnings, when it
// loads), one per line, with dir's path cut from file names.
func loadReport(t *testing.T, reg *action.Registry, path, dir string) string {
	t.Helper()
	wf, err := spec.Load(path, reg)
	var list spec.Errors
	switch {
	case err == nil:
		if wf == nil {
			t.Fatal("Load returned neither a workflow nor an error")
		}
		list = wf.Warnings
	case errors.As(err, &list):
		if wf != nil {
			t.Fatal("Load returned a workflow and an error")
		}
		if list.Err() == nil {
			t.Fatal("Load returned an error list without errors")
		}
	default:
		t.Fatalf("Load returned %T, want spec.Errors: %v", err, err)
	}
	var b strings.Builder
	for _, e := range list {
		b.WriteString(strings.ReplaceAll(e.Error(), dir+string(filepath.Separator), ""))
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(no problems)\n"
	}
	return b.String()
}

func replaceSection(files []txtar.File, name, data string) []txtar.File {
	for i := range files {
		if files[i].Name == name {
			files[i].Data = []byte(data)
			return files
		}
	}
	return append(files, txtar.File{Name: name, Data: []byte(data)})
}
