package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/store"
)

// gate is an action that fails for the ids in closed and records the ids it ran.
type gate struct {
	mu     sync.Mutex
	closed map[string]bool
	ran    []string
}

func (g *gate) registry(t *testing.T) *action.Registry {
	t.Helper()
	reg, err := action.NewRegistry(&action.Spec{Name: "test.gate", Summary: "s",
		Params: []action.Param{{Name: "id", Type: action.String, Required: true}},
		Output: []action.Field{{Name: "id"}},
		Func: func(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
			id := call.Params.String("id")
			g.mu.Lock()
			defer g.mu.Unlock()
			g.ran = append(g.ran, id)
			if g.closed[id] {
				return nil, action.Permanentf("%s is closed", id)
			}
			return map[string]any{"id": id}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func (g *gate) took() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.ran
	g.ran = nil
	slices.Sort(out)
	return out
}

// setup writes the archive's files into a directory and returns it with a store
// inside it.
func setup(t *testing.T, archive string) (string, *store.Store) {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", archive+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, &store.Store{Dir: filepath.Join(dir, ".flowrun")}
}

// TestCreateRunResume fails a run, then resumes it with one call: only the failed
// item runs again, and the store records both attempts and their events.
func TestCreateRunResume(t *testing.T) {
	dir, st := setup(t, "resume")
	g := &gate{closed: map[string]bool{"b": true}}
	reg := g.registry(t)
	wf, err := spec.Load(filepath.Join(dir, "workflow.yaml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := st.Create(wf, nil, store.Meta{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ss.Run(context.Background(), runtime.Options{MaxWorkers: 1})
	var re *runtime.RunError
	if !errors.As(err, &re) {
		t.Fatalf("first attempt: %v, want a RunError", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, g.took()); diff != "" {
		t.Errorf("first attempt ran (-want +got):\n%s", diff)
	}
	meta, err := st.Meta("r1")
	if err != nil || meta.Status != store.StatusFailed || meta.Items != 1 || meta.Failed != 1 || meta.Name != "workflow" {
		t.Errorf("meta after the failure: %+v, %v", meta, err)
	}
	held, err := st.Reopen("r1", &spec.Loader{Registry: reg}, false)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := st.Reopen("r1", &spec.Loader{Registry: reg}, false); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("reopening a run another session holds: %v", err)
	}
	if err := held.Close(nil, errors.New("given up")); err != nil {
		t.Fatal(err)
	}

	g.closed = nil
	res, err := st.Resume(context.Background(), "r1", reg, runtime.Options{})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if diff := cmp.Diff([]string{"b", "c"}, g.took()); diff != "" {
		t.Errorf("the resume ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"got": []any{"a", "b", "c"}, "n": 3}, res.Output); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	meta, _ = st.Meta("r1")
	if meta.Status != store.StatusSucceeded || meta.Resumes != 2 || meta.Items != 3 || meta.Failed != 0 || meta.Error != "" {
		t.Errorf("meta after the resume: %+v", meta)
	}
	out, fields, err := st.Result("r1")
	if err != nil || !cmp.Equal(out, res.Output) || !cmp.Equal(fields, []string{"got", "n"}) {
		t.Errorf("Result: %v %v %v", out, fields, err)
	}
	if _, err := st.Reopen("r1", &spec.Loader{Registry: reg}, false); err == nil || !strings.Contains(err.Error(), "succeeded already") {
		t.Errorf("reopening a run that succeeded: %v", err)
	}
	events, err := os.ReadFile(filepath.Join(st.Dir, "runs", "r1", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(events)
	if strings.Count(text, `"type":"run.started"`) != 2 || !strings.Contains(text, `"type":"item.failed"`) ||
		strings.Contains(text, `"type":"item.started"`) || strings.Count(text, `"type":"run.finished"`) != 2 || strings.Contains(text, `"tolerated":true`) {
		t.Errorf("events.jsonl should hold each attempt's notable events, and no item progress:\n%s", text)
	}
}

// TestReopenChangedWorkflow refuses a run whose workflow changed, unless forced.
func TestReopenChangedWorkflow(t *testing.T) {
	dir, st := setup(t, "resume")
	g := &gate{closed: map[string]bool{"a": true}}
	reg := g.registry(t)
	path := filepath.Join(dir, "workflow.yaml")
	wf, err := spec.Load(path, reg)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := st.Create(wf, nil, store.Meta{ID: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Run(context.Background(), runtime.Options{MaxWorkers: 1}); err == nil {
		t.Fatal("the run did not fail")
	}
	src, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(src), "max_failures: 0", "max_failures: 1", 1)), 0o644)
	_, err = st.Reopen("r2", &spec.Loader{Registry: reg}, false)
	var ce *store.ChangedError
	if !errors.As(err, &ce) || !strings.Contains(ce.Change, `line 7 was "map: {over: \"['a', 'b', 'c']\", to: work, max_failures: 0}"`) {
		t.Fatalf("reopen a changed workflow: %v", err)
	}
	ss, err = st.Reopen("r2", &spec.Loader{Registry: reg}, true)
	if err != nil || ss.Changed == "" || ss.Replayed != 0 {
		t.Fatalf("forced: %v, %+v", err, ss)
	}
	res, err := ss.Run(context.Background(), runtime.Options{})
	if err != nil || res.Output["n"] != 2 || res.Status != runtime.StatusSucceeded {
		t.Errorf("the forced resume: %v, %v", res, err)
	}
}

// TestCreateIsWhole: a kill in the first milliseconds of a run left a folder
// without meta.json ("no run" to resume, "exists already" to run). A run is made in
// a hidden folder and renamed whole: what a kill leaves behind is not a run, and
// the id stays free. Inputs are kept once, compactly, in inputs.json.
func TestCreateIsWhole(t *testing.T) {
	dir, st := setup(t, "resume")
	g := &gate{}
	reg := g.registry(t)
	wf, err := spec.Load(filepath.Join(dir, "workflow.yaml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(st.Dir, "runs", ".new-k-123")
	if err := os.MkdirAll(filepath.Join(left, "workflow"), 0o700); err != nil {
		t.Fatal(err)
	}
	if runs, err := st.List(); err != nil || len(runs) != 0 {
		t.Errorf("List shows %v (%v) from a half-made run", runs, err)
	}
	ss, err := st.Create(wf, map[string]any{"got": []any{"x", 1.5}}, store.Meta{ID: "k"})
	if err != nil {
		t.Fatalf("the id of a half-made run is not free: %v", err)
	}
	if _, err := st.Create(wf, nil, store.Meta{ID: "k"}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a second run k: %v", err)
	}
	ss.Close(nil, nil)
	meta, _ := os.ReadFile(filepath.Join(st.Dir, "runs", "k", "meta.json"))
	inputs, _ := os.ReadFile(filepath.Join(st.Dir, "runs", "k", "inputs.json"))
	if strings.Contains(string(meta), "inputs") || string(inputs) != `{"got":["x",1.5]}` {
		t.Errorf("meta.json:\n%s\ninputs.json: %s", meta, inputs)
	}
	entries, _ := os.ReadDir(filepath.Join(st.Dir, "runs"))
	if len(entries) != 2 {
		t.Errorf("runs/ holds %d entries, want k and the left-over folder", len(entries))
	}
}
