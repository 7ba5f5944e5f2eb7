package runtime_test

import (
	"context"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/runtime"
)

// calls records which units an action ran for, and fails the ones listed in failing.
type calls struct {
	mu      sync.Mutex
	ran     []string
	failing map[string]bool
}

func (c *calls) action() *action.Spec {
	return testAction("test.call", []action.Param{{Name: "id", Type: action.String, Required: true}},
		[]action.Field{{Name: "id"}, {Name: "half"}},
		func(ctx context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
			id := call.Params["id"].(string)
			c.mu.Lock()
			c.ran = append(c.ran, id)
			fail := c.failing[id]
			c.mu.Unlock()
			if fail {
				return nil, action.Errorf("%s failed", id)
			}
			return map[string]any{"id": id, "half": 0.5 * float64(len(id))}, nil
		})
}

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ran
	c.ran = nil
	sort.Strings(out)
	return out
}

// TestResume fails a run part-way, resumes it from its journal, and checks that
// nothing finished runs again and the result equals an uninterrupted run's.
func TestResume(t *testing.T) {
	tests := []struct {
		name      string
		failing   []string // units failing in the first attempt
		firstRan  []string
		secondRan []string // what the resumed attempt runs
	}{
		{"a nested item fails: its finished siblings and earlier items are kept",
			[]string{"b2"}, []string{"a1", "a2", "b1", "b2", "prep"}, []string{"b2", "c1", "c2", "post"}},
		{"the last top-level node fails: only it runs again",
			[]string{"post"}, []string{"a1", "a2", "b1", "b2", "c1", "c2", "post", "prep"}, []string{"post"}},
		{"the first node fails: everything runs",
			[]string{"prep"}, []string{"prep"}, []string{"a1", "a2", "b1", "b2", "c1", "c2", "post", "prep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &calls{failing: map[string]bool{}}
			reg := testRegistry(t, c.action())
			wf := loadArchive(t, reg, "resume", "resume.yaml")
			want := runJSON(t, wf, nil, runtime.Options{})
			c.take()

			for _, id := range tt.failing {
				c.failing[id] = true
			}
			path := filepath.Join(t.TempDir(), "journal.log")
			j, err := journal.Open(path, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r", Journal: j}); err == nil {
				t.Fatal("the first attempt succeeded")
			}
			j.Close()
			if diff := cmp.Diff(tt.firstRan, c.take()); diff != "" {
				t.Errorf("first attempt ran (-want +got):\n%s", diff)
			}

			c.failing = map[string]bool{}
			rp, err := journal.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			j, _ = journal.Open(path, time.Millisecond)
			res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: "r", Journal: j, Replay: rp})
			j.Close()
			if err != nil {
				t.Fatalf("resumed attempt: %v", err)
			}
			if diff := cmp.Diff(tt.secondRan, c.take()); diff != "" {
				t.Errorf("resumed attempt ran (-want +got):\n%s", diff)
			}
			if got := mustJSON(t, res.Output); got != want {
				t.Errorf("resumed output differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestResumeKeepsHandledErrors checks that errors on_error handled in items that
// are replayed still appear in the resumed run's report.
func TestResumeKeepsHandledErrors(t *testing.T) {
	c := &calls{failing: map[string]bool{"x1": true, "x2": true}}
	wf := loadArchive(t, testRegistry(t, c.action()), "resume", "resume-keeps-handled-errors.yaml")
	path := filepath.Join(t.TempDir(), "journal.log")
	j, _ := journal.Open(path, time.Millisecond)
	first, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Journal: j})
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := journal.Read(path)
	second, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Replay: rp})
	if err != nil {
		t.Fatal(err)
	}
	if ran := c.take(); len(ran) != 2 {
		t.Errorf("the resumed run ran %v; want nothing more", ran)
	}
	if diff := cmp.Diff(runtime.Report(first.Failures), runtime.Report(second.Failures)); diff != "" {
		t.Errorf("reports differ (-first +resumed):\n%s", diff)
	}
}

// TestConcurrentItemsJournalWithoutRace: items of one map built their journal keys
// from their parent chain concurrently (found by -race). Nested maps at high
// concurrency, journalled, then replayed to the same output.
func TestConcurrentItemsJournalWithoutRace(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "resume", "concurrent-items-journal-without-race.yaml")
	path := filepath.Join(t.TempDir(), "journal.log")
	j, _ := journal.Open(path, time.Millisecond)
	want := runJSON(t, wf, nil, runtime.Options{Journal: j, MaxWorkers: 16})
	j.Close()
	rp, err := journal.Read(path)
	if err != nil || rp.Items != 420 {
		t.Fatalf("%d items journalled (%v), want 400 + 20", rp.Items, err)
	}
	if got := runJSON(t, wf, nil, runtime.Options{Replay: rp, MaxWorkers: 16}); got != want {
		t.Errorf("replayed output differs:\n got %s\nwant %s", got, want)
	}
}
