package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// journalInterval is how often the journal is written and fsynced.
const journalInterval = 10 * time.Millisecond

// Session is one attempt of a stored run, made by Create or Reopen: it holds the
// run's lock until Run (or Close) records how it ended.
type Session struct {
	// Meta is the run's metadata, as it will be written.
	Meta Meta
	// Workflow is the workflow the run runs, and Inputs its checked inputs.
	Workflow *spec.Workflow
	Inputs   map[string]any
	// Changed says where the workflow changed since the run started, when Reopen
	// was told to continue anyway; "" otherwise.
	Changed string
	// Replayed counts the items earlier attempts finished.
	Replayed int

	dir     string
	lock    *os.File
	journal *journal.Journal
	replay  *journal.Replay // nil for a new run
}

// Create starts a stored run of wf with inputs (checked already): its folder, with
// its metadata, its inputs and a copy of the workflow, appears whole or not at all.
// meta gives the run's id (a new one when empty), how the workflow was named, and
// the flags to record; the rest is filled in.
func (s *Store) Create(wf *spec.Workflow, inputs map[string]any, meta Meta) (*Session, error) {
	if meta.ID == "" {
		meta.ID = runtime.NewRunID(time.Now())
	}
	if err := checkID(meta.ID); err != nil {
		return nil, err
	}
	if meta.Workflow == "" {
		meta.Workflow = wf.File
	}
	meta.Path = filepath.Join(wf.Dir, filepath.Base(wf.File))
	meta.Name, meta.Hash = wf.Name, wf.Hash
	meta.Status, meta.Started, meta.PID = StatusRunning, time.Now().UTC(), os.Getpid()
	runs := filepath.Join(s.Dir, "runs")
	if err := os.MkdirAll(runs, dirMode); err != nil {
		return nil, storeError(s.Dir, err)
	}
	dir := s.runDir(meta.ID)
	exists := func() error {
		return fmt.Errorf("run %s exists already in %s: resume it with flowrun resume %s, or choose another --run-id", meta.ID, s.Dir, meta.ID)
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, exists()
	}
	// Everything is made in a hidden folder, renamed into place when complete: a
	// kill leaves no half-made run (hidden folders are not runs).
	tmp, err := os.MkdirTemp(runs, ".new-"+meta.ID+"-")
	if err != nil {
		return nil, storeError(s.Dir, err)
	}
	ss := &Session{Meta: meta, Workflow: wf, Inputs: inputs, dir: tmp}
	err = writeFile(filepath.Join(tmp, "inputs.json"), value.Append(nil, inputs))
	if err == nil {
		err = copyWorkflow(filepath.Join(tmp, "workflow"), wf)
	}
	if err == nil {
		err = ss.lockAndWrite()
	}
	if err == nil {
		if _, serr := os.Lstat(dir); serr == nil {
			err = exists()
		} else if err = os.Rename(tmp, dir); err != nil {
			err = storeError(s.Dir, err)
		}
	}
	if err != nil {
		if ss.lock != nil {
			unlockFile(ss.lock)
		}
		os.RemoveAll(tmp)
		return nil, err
	}
	ss.dir = dir
	if err := ss.openJournal(); err != nil {
		return nil, err
	}
	return ss, nil
}

// ChangedError is a workflow file that changed since its run started.
type ChangedError struct {
	ID, File string
	// Change says where the file first differs.
	Change string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%s changed since run %s started: %s", e.File, e.ID, e.Change)
}

// Reopen continues a stored run that is not running and did not succeed: it loads
// the workflow with ld, checks that the file has not changed (unless force),
// checks the stored inputs against it, takes the run's lock and reads its journal.
// A changed file is a *ChangedError; a workflow that no longer loads, the
// spec.Errors of spec.Load.
func (s *Store) Reopen(id string, ld *spec.Loader, force bool) (*Session, error) {
	meta, err := s.Meta(id)
	if err != nil {
		return nil, err
	}
	switch meta.Status {
	case StatusRunning:
		return nil, fmt.Errorf("run %s is still running (pid %d)", id, meta.PID)
	case StatusSucceeded:
		return nil, fmt.Errorf("run %s succeeded already: nothing to resume", id)
	}
	file := displayPath(meta.Path)
	wf, err := ld.Load(file)
	if err != nil {
		return nil, err
	}
	ss := &Session{Meta: meta, Workflow: wf, dir: s.runDir(id)}
	if wf.Hash != meta.Hash {
		ss.Changed = describeChange(s, meta, wf)
		if !force {
			return nil, &ChangedError{ID: id, File: file, Change: ss.Changed}
		}
	}
	stored, err := s.inputs(meta)
	if err != nil {
		return nil, err
	}
	if ss.Inputs, err = runtime.CheckInputs(wf, stored); err != nil {
		return nil, fmt.Errorf("the inputs of run %s do not fit the workflow now: %w", id, err)
	}
	if ss.replay, err = journal.Read(filepath.Join(ss.dir, "journal.log")); err != nil {
		return nil, fmt.Errorf("run %s: reading the journal: %w", id, err)
	}
	ss.Replayed = ss.replay.Items
	m := &ss.Meta
	m.Resumes++
	m.Hash, m.Status, m.Finished, m.Error, m.PID = wf.Hash, StatusRunning, nil, "", os.Getpid()
	if err := ss.lockAndWrite(); err != nil {
		return nil, err
	}
	if err := ss.openJournal(); err != nil {
		return nil, err
	}
	return ss, nil
}

// lockAndWrite takes the run's lock and writes its metadata.
func (ss *Session) lockAndWrite() error {
	lock, err := lockFile(filepath.Join(ss.dir, "lock"))
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("run %s is running in another process (pid %d)", ss.Meta.ID, ss.Meta.PID)
		}
		return storeError(filepath.Dir(filepath.Dir(ss.dir)), err)
	}
	ss.lock = lock
	if err := ss.writeMeta(); err != nil {
		unlockFile(lock)
		ss.lock = nil
		return err
	}
	return nil
}

func (ss *Session) openJournal() error {
	j, err := journal.Open(filepath.Join(ss.dir, "journal.log"), journalInterval)
	if err != nil {
		unlockFile(ss.lock)
		return storeError(ss.dir, err)
	}
	ss.journal = j
	return nil
}

// Run runs the session's workflow with opts, journalling its work and keeping its
// notable events in events.jsonl, and records how it ended. opts' RunID, Journal
// and Replay are the session's. Without an Executor, the run's actions run in this
// process as runtime.Run's default, with the store out of their reach; an Executor
// of the caller's should keep them out too (action.Env.Private). The error is the
// run's (a *runtime.RunError when it failed); a failure to record the end is
// returned too (errors.Join).
func (ss *Session) Run(ctx context.Context, opts runtime.Options) (*runtime.Result, error) {
	opts.RunID, opts.Journal, opts.Replay = ss.Meta.ID, ss.journal, ss.replay
	if opts.Executor == nil {
		// The default executor's, with the store out of its file actions' reach.
		opts.Executor = ss.Workflow.Registry.Local(action.Env{Dir: ss.Workflow.Dir, Getenv: opts.Getenv,
			Logger: opts.Logger, Sleep: sleepOf(opts.Clock), Private: []string{filepath.Dir(filepath.Dir(ss.dir))}})
	}
	events, err := os.OpenFile(filepath.Join(ss.dir, "events.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return nil, errors.Join(err, ss.Close(nil, err))
	}
	ew := runtime.NewEventWriter(events)
	opts.Observers = append(append([]runtime.Observer(nil), opts.Observers...), runtime.Notable(ew))
	res, runErr := runtime.Run(ctx, ss.Workflow, ss.Inputs, opts)
	if sp, ok := opts.Executor.(Spender); ok {
		ss.Meta.Spent = sp.Spent()
	}
	eerr := ew.Close()
	if cerr := events.Close(); eerr == nil {
		eerr = cerr
	}
	if eerr != nil {
		eerr = fmt.Errorf("run %s: events: %w", ss.Meta.ID, eerr)
	}
	return res, errors.Join(runErr, ss.Close(res, runErr), eerr)
}

// A Spender is an executor that counts what a run spent against its budgets (such
// as limit.Limits): the session keeps it in meta.json, for a resume to go on from.
type Spender interface {
	Spent() map[string]runtime.LimitUsage
}

func sleepOf(c runtime.Clock) func(context.Context, time.Duration) error {
	if c == nil {
		return nil
	}
	return c.Sleep
}

// Close records how the run ended, with its output when it succeeded, and
// releases it. res is nil when the run did not start; Run calls Close itself.
func (ss *Session) Close(res *runtime.Result, runErr error) error {
	status := StatusFailed
	if res != nil {
		status = res.Status
		if status == StatusSucceeded {
			ss.journal.AppendEnd(res.Output, res.Fields)
		}
	}
	jerr := ss.journal.Close()
	var failures []runtime.Failure
	if res != nil {
		failures = res.Failures
	}
	ferr := ss.writeFailures(failures)
	now := time.Now().UTC()
	m := &ss.Meta
	m.Status, m.Finished, m.PID = status, &now, 0
	m.Items = ss.Replayed + ss.journal.Items()
	if res != nil {
		m.Failed = res.FailedItems
	}
	if runErr != nil {
		m.Error = runErr.Error()
	}
	err := errors.Join(ss.writeMeta(), ferr)
	unlockFile(ss.lock)
	if jerr != nil {
		return fmt.Errorf("run %s: journal: %w", m.ID, jerr)
	}
	return err
}

// FailuresFile is the file that lists the failed items of the run's last attempt,
// one JSON object (a runtime.Failure) a line.
func (ss *Session) FailuresFile() string { return filepath.Join(ss.dir, "failed.jsonl") }

func (ss *Session) writeFailures(failures []runtime.Failure) error {
	if len(failures) == 0 {
		if err := os.Remove(ss.FailuresFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return storeError(ss.dir, err)
		}
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, f := range failures {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	if err := writeFile(ss.FailuresFile(), b.Bytes()); err != nil {
		return storeError(ss.dir, err)
	}
	return nil
}

// Repair drops the damaged records in the middle of a run's journal (see
// journal.DamageError), so that it can be resumed; the work they held runs again.
// It returns how many lines it dropped.
func (s *Store) Repair(id string) (int, error) {
	meta, err := s.Meta(id)
	if err != nil {
		return 0, err
	}
	if meta.Status == StatusRunning {
		return 0, fmt.Errorf("run %s is still running (pid %d)", id, meta.PID)
	}
	return journal.Repair(filepath.Join(s.runDir(id), "journal.log"))
}

// Resume continues a stored run (see Reopen) and runs it to its end (see
// Session.Run): what a Go program calls to resume a run.
func (s *Store) Resume(ctx context.Context, id string, reg *action.Registry, opts runtime.Options) (*runtime.Result, error) {
	ss, err := s.Reopen(id, &spec.Loader{Registry: reg}, false)
	if err != nil {
		return nil, err
	}
	return ss.Run(ctx, opts)
}

func (ss *Session) writeMeta() error {
	b, err := json.MarshalIndent(ss.Meta, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(ss.dir, "meta.json.tmp")
	if err := writeFile(tmp, append(b, '\n')); err != nil {
		return storeError(ss.dir, err)
	}
	return os.Rename(tmp, filepath.Join(ss.dir, "meta.json"))
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
		if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
			return err
		}
		if err := writeFile(path, w.Source); err != nil {
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

// displayPath shows an absolute path relative to the current directory when it lies
// below it.
func displayPath(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

// describeChange says where the workflow file first differs from the copy the run
// started with, or which sub-workflow changed.
func describeChange(s *Store, meta Meta, wf *spec.Workflow) string {
	old, err := os.ReadFile(s.WorkflowCopy(meta))
	if err != nil {
		return "its content differs"
	}
	if string(old) == string(wf.Source) {
		return "a sub-workflow it uses changed"
	}
	a, b := strings.Split(string(old), "\n"), strings.Split(string(wf.Source), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d was %q, is %q", i+1, strings.TrimSpace(x), strings.TrimSpace(y))
		}
	}
	return "its content differs"
}
