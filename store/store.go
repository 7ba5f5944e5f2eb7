// Package store keeps runs on disk, so that they can be listed, inspected and
// resumed: one folder per run under Dir/runs/<id>:
//
//	meta.json     what was run, with which inputs and flags, and how it ended
//	workflow/     a copy of the workflow file and its sub-workflows
//	journal.log   the finished work, appended as the run goes (package journal)
//	events.jsonl  the run's notable events (runtime.Notable), one JSON object a line
//	lock          held by the process running it
//
// A Session is one attempt of a stored run: Create starts a run, Reopen continues
// one, and Session.Run runs it with a journal and records how it ended. Resume
// does all of that in one call.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/value"
)

// Store keeps runs in the folder Dir.
type Store struct {
	Dir string
}

// Run statuses, as Meta.Status has them: a runtime status, running, or stopped.
const (
	StatusRunning     = "running"
	StatusSucceeded   = runtime.StatusSucceeded
	StatusFailed      = runtime.StatusFailed
	StatusInterrupted = runtime.StatusInterrupted
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
	// The flags the last attempt ran with (the inputs are kept in inputs.json).
	MaxWorkers int      `json:"max_workers,omitempty"`
	AllowExec  bool     `json:"allow_exec,omitempty"`
	AllowPaths []string `json:"allow_paths,omitempty"`

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
	// Spent is what the run's budgets counted, over every attempt: "" for the
	// run's own, a map's scope for a map's (see Spender).
	Spent map[string]runtime.LimitUsage `json:"spent,omitempty"`
}

// Duration is how long the run took, or has been taking.
func (m *Meta) Duration(now time.Time) time.Duration {
	if m.Finished != nil {
		return m.Finished.Sub(m.Started)
	}
	return now.Sub(m.Started)
}

func (s *Store) runDir(id string) string { return filepath.Join(s.Dir, "runs", id) }

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
		return Meta{}, fmt.Errorf("run %s: %s is damaged (%v): the run cannot be resumed; start it again", id, filepath.Join(dir, "meta.json"), err)
	}
	if m.ID != id || m.Started.IsZero() || m.Path == "" || m.Status == "" {
		return Meta{}, fmt.Errorf("run %s: %s is damaged (it lacks the run's id, start, workflow or status): the run cannot be resumed; start it again", id, filepath.Join(dir, "meta.json"))
	}
	switch m.Status {
	case StatusRunning:
		if !lockHeld(filepath.Join(dir, "lock")) {
			m.Status = StatusStopped
		}
	case StatusSucceeded, StatusFailed, StatusInterrupted:
		if m.Finished == nil {
			m.Status = StatusStopped // it did not get to record its end
		}
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
			if rp, err := journal.Read(filepath.Join(s.runDir(m.ID), "journal.log")); err == nil {
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

// Result returns the output of a run that succeeded, and the order of its fields.
func (s *Store) Result(id string) (map[string]any, []string, error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	rp, err := journal.Read(filepath.Join(s.runDir(id), "journal.log"))
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: reading the journal: %w", id, err)
	}
	out, fields, ok := rp.Result()
	if !ok {
		return nil, nil, fmt.Errorf("run %s has no result in its journal", id)
	}
	return out, fields, nil
}

// WorkflowCopy returns the path of the stored copy of the run's workflow file.
func (s *Store) WorkflowCopy(m Meta) string {
	return filepath.Join(s.runDir(m.ID), "workflow", filepath.Base(m.Path))
}

// inputs reads a run's inputs: inputs.json, or the "inputs" of an older meta.json.
func (s *Store) inputs(m Meta) (map[string]any, error) {
	dir := s.runDir(m.ID)
	b, err := os.ReadFile(filepath.Join(dir, "inputs.json"))
	if errors.Is(err, os.ErrNotExist) {
		var old struct {
			Inputs map[string]any `json:"inputs"`
		}
		if b, err = os.ReadFile(filepath.Join(dir, "meta.json")); err == nil {
			if err = json.Unmarshal(b, &old); err == nil {
				b = value.Append(nil, old.Inputs)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: reading its inputs: %w", m.ID, err)
	}
	v, err := value.DecodeExact(b)
	in, ok := v.(map[string]any)
	if err != nil || !ok && v != nil {
		return nil, fmt.Errorf("run %s: %s is damaged: the run cannot be resumed; start it again", m.ID, filepath.Join(dir, "inputs.json"))
	}
	return in, nil
}

// Files and folders of the store are private to their owner: a run's inputs and
// outputs may be anything.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// writeFile writes a file of the store.
func writeFile(path string, data []byte) error { return os.WriteFile(path, data, fileMode) }

// storeError explains an error of the store's file system: a store that cannot be
// written says so, not that a run is busy.
func storeError(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("run store %s cannot be written (%v): give another with --store DIR, or --store none", dir, unwrapPath(err))
	}
	return fmt.Errorf("run store: %w", err)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." || strings.HasPrefix(id, ".") {
		return fmt.Errorf("bad run id %q: use letters, digits, - and _", id)
	}
	return nil
}
