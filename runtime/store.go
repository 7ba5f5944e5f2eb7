package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/flowrun/flowrun/spec"
)

// Store keeps runs on disk, one folder per run under Dir/runs/<id>:
//
//	meta.json     what was run, with which inputs and flags, and how it ended
//	workflow/     a copy of the workflow file and its sub-workflows
//	journal.log   the finished work, appended as the run goes (see Journal)
//	lock          held by the process running it
type Store struct {
	Dir string
}

// Run statuses.
const (
	StatusRunning     = "running"
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	StatusStopped     = "stopped" // marked running, but no process holds it: killed
)

// Meta describes a stored run.
type Meta struct {
	ID string `json:"id"`
	// Workflow is the workflow file as it was named; Path is its absolute path.
	Workflow string `json:"workflow"`
	Path     string `json:"path"`
	Name     string `json:"name"`
	Hash     string `json:"hash"`
	// Inputs are the run's inputs; the flags below change what it may do.
	Inputs     map[string]any `json:"inputs"`
	MaxWorkers int            `json:"max_workers,omitempty"`
	AllowExec  bool           `json:"allow_exec,omitempty"`
	AllowPaths []string       `json:"allow_paths,omitempty"`

	Status   string     `json:"status"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// Items counts the finished items, over every attempt; Failed the items that
	// failed in the last attempt.
	Items   int    `json:"items"`
	Failed  int    `json:"failed"`
	Resumes int    `json:"resumes,omitempty"`
	Error   string `json:"error,omitempty"`
	PID     int    `json:"pid,omitempty"`
}

// Duration is how long the run took, or has been taking.
func (m *Meta) Duration(now time.Time) time.Duration {
	if m.Finished != nil {
		return m.Finished.Sub(m.Started)
	}
	return now.Sub(m.Started)
}

// StoredRun is a run being written to the store by this process.
type StoredRun struct {
	Meta    Meta
	Journal *Journal
	// Replay holds the work finished by earlier attempts (empty for a new run).
	Replay *Replay
	dir    string
	lock   *os.File
}

// journalInterval is how often the journal is written and fsynced.
const journalInterval = 10 * time.Millisecond

func (s *Store) runDir(id string) string { return filepath.Join(s.Dir, "runs", id) }

// Create starts a stored run: its folder, a copy of the workflow, its metadata.
func (s *Store) Create(meta Meta, wf *spec.Workflow) (*StoredRun, error) {
	if err := checkID(meta.ID); err != nil {
		return nil, err
	}
	dir := s.runDir(meta.ID)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("run store: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("run %s exists already in %s: resume it with flowrun resume %s, or choose another --run-id", meta.ID, s.Dir, meta.ID)
		}
		return nil, fmt.Errorf("run store: %w", err)
	}
	if err := copyWorkflow(filepath.Join(dir, "workflow"), wf); err != nil {
		return nil, fmt.Errorf("run store: copying the workflow: %w", err)
	}
	meta.Status, meta.Started, meta.PID = StatusRunning, time.Now().UTC(), os.Getpid()
	return s.start(dir, meta, &Replay{items: map[string]*record{}, nodes: map[string]*record{}})
}

// Resume reopens a stored run for resuming: it takes the run's lock (refusing a run
// that is still running) and reads its journal.
func (s *Store) Resume(id string) (*StoredRun, error) {
	meta, err := s.Meta(id)
	if err != nil {
		return nil, err
	}
	dir := s.runDir(id)
	rp, err := ReadReplay(filepath.Join(dir, "journal.log"))
	if err != nil {
		return nil, fmt.Errorf("run %s: reading the journal: %w", id, err)
	}
	meta.Resumes++
	meta.Status, meta.Finished, meta.Error, meta.PID = StatusRunning, nil, "", os.Getpid()
	return s.start(dir, meta, rp)
}

func (s *Store) start(dir string, meta Meta, rp *Replay) (*StoredRun, error) {
	lock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("run %s is running in another process (pid %d): %w", meta.ID, meta.PID, err)
	}
	sr := &StoredRun{Meta: meta, Replay: rp, dir: dir, lock: lock}
	if err := sr.writeMeta(); err != nil {
		unlockFile(lock)
		return nil, err
	}
	if sr.Journal, err = OpenJournal(filepath.Join(dir, "journal.log"), journalInterval); err != nil {
		unlockFile(lock)
		return nil, err
	}
	return sr, nil
}

// Finish records how the run ended, with its output when it succeeded, and
// releases the run.
func (sr *StoredRun) Finish(res *Result, runErr error, status string) error {
	if status == StatusSucceeded && res != nil {
		b := []byte(`{"t":"end","o":`)
		b = appendValue(b, res.Output)
		b = append(b, `,"f":`...)
		f, _ := json.Marshal(res.Fields)
		b = append(append(b, f...), '}')
		sr.Journal.append(b)
	}
	jerr := sr.Journal.Close()
	now := time.Now().UTC()
	sr.Meta.Status, sr.Meta.Finished, sr.Meta.PID = status, &now, 0
	sr.Meta.Items = sr.Replay.Items + sr.Journal.Items()
	if res != nil {
		sr.Meta.Failed = res.FailedItems
	}
	if runErr != nil {
		sr.Meta.Error = runErr.Error()
	}
	err := sr.writeMeta()
	unlockFile(sr.lock)
	if jerr != nil {
		return fmt.Errorf("run %s: journal: %w", sr.Meta.ID, jerr)
	}
	return err
}

func (sr *StoredRun) writeMeta() error {
	b, err := json.MarshalIndent(sr.Meta, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(sr.dir, "meta.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("run store: %w", err)
	}
	return os.Rename(tmp, filepath.Join(sr.dir, "meta.json"))
}

// Meta reads a run's metadata. A run marked running that no process holds was
// killed: its status reads stopped.
func (s *Store) Meta(id string) (Meta, error) {
	if err := checkID(id); err != nil {
		return Meta{}, err
	}
	dir := s.runDir(id)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Meta{}, fmt.Errorf("no run %s in %s (flowrun runs lists them)", id, s.Dir)
		}
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("run %s: meta.json: %w", id, err)
	}
	m.Inputs, _ = normalizeInputs(m.Inputs)
	if m.Status == StatusRunning && !lockHeld(filepath.Join(dir, "lock")) {
		m.Status = StatusStopped
	}
	return m, nil
}

// List returns every run's metadata, newest first.
func (s *Store) List() ([]Meta, error) {
	entries, err := os.ReadDir(filepath.Join(s.Dir, "runs"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []Meta
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := s.Meta(e.Name())
		if err != nil {
			continue // a folder being created, or not a run
		}
		if m.Status == StatusRunning || m.Status == StatusStopped {
			if rp, err := ReadReplay(filepath.Join(s.runDir(m.ID), "journal.log")); err == nil {
				m.Items = rp.Items
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// WorkflowCopy returns the path of the stored copy of the run's workflow file.
func (s *Store) WorkflowCopy(m Meta) string {
	return filepath.Join(s.runDir(m.ID), "workflow", filepath.Base(m.Path))
}

// copyWorkflow copies a workflow file and its sub-workflows into dir, keeping
// their paths relative to the main file's directory.
func copyWorkflow(dir string, wf *spec.Workflow) error {
	seen := map[*spec.Workflow]bool{}
	var copyOne func(w *spec.Workflow) error
	copyOne = func(w *spec.Workflow) error {
		if seen[w] {
			return nil
		}
		seen[w] = true
		rel, err := filepath.Rel(wf.Dir, filepath.Join(w.Dir, filepath.Base(w.File)))
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = filepath.Join("_outside", strings.ReplaceAll(filepath.Clean(filepath.Join(w.Dir, filepath.Base(w.File))), string(filepath.Separator), "_"))
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, w.Source, 0o644); err != nil {
			return err
		}
		for _, inc := range w.Includes {
			if err := copyOne(inc); err != nil {
				return err
			}
		}
		return nil
	}
	return copyOne(wf)
}

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." || strings.HasPrefix(id, ".") {
		return fmt.Errorf("bad run id %q: use letters, digits, - and _", id)
	}
	return nil
}

// normalizeInputs makes stored inputs JSON-typed again (integral numbers as int).
func normalizeInputs(in map[string]any) (map[string]any, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(b)
	obj, _ := v.(map[string]any)
	return obj, err
}
