// Package runtime runs compiled workflows: shared state merged through reducers,
// fan-out under limits with a deterministic merge, retries and timeouts, failure
// thresholds, cancellation and events.
//
// The runtime is the scheduler. It decides when each action call is made, bounds
// it with a timeout, retries it and recovers its panics, and carries it out only
// through an action.Executor (Options.Executor): in this process by default, on
// other machines or against mocks otherwise. Its time is a Clock, its finished
// work goes to a journal (package journal) when it has one, and what happens is
// told to any number of Observers as Events.
package runtime

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// Options configure a run. The zero value runs with the workflow's limits, its
// actions in this process with no exec and files confined to the workflow's
// directory, on the wall clock, with no journal and no observers.
type Options struct {
	// RunID names the run; empty means a new id.
	RunID string
	// MaxWorkers caps actions in flight across the run, at every depth; 0 means the
	// workflow's limits.concurrency, else 16.
	MaxWorkers int
	// Executor carries out the run's action calls. Nil means the workflow's
	// registry in this process (Registry.Local) granting no more than the
	// defaults: no exec, files inside the workflow's directory, the process
	// environment, this Logger and Clock.
	Executor action.Executor
	// Getenv reads environment variables for env() in expressions; nil means the
	// process environment.
	Getenv func(string) string
	// Logger receives the run's log records, each with the run's id and, where
	// they concern one, the node and item: retries at debug level, failed items at
	// warn. Nil discards them.
	Logger *slog.Logger
	// Observers receive the run's events (see Notable for observers that need
	// not see every item).
	Observers []Observer
	// Clock is the run's time; nil means WallClock.
	Clock Clock
	// Journal, when set, records finished work as the run goes, so that an
	// interrupted or failed run can resume (see package store).
	Journal *journal.Journal
	// Replay, when set, holds the work an earlier attempt of this run finished: it
	// is taken from there instead of running again.
	Replay *journal.Replay
	// Stats, when set, receives the run's counters as it goes (a progress display
	// reads them); otherwise the run makes its own. Result.Stats holds them.
	Stats *Stats
}

// Run statuses: how a run ended (Result.Status, the run.finished event).
const (
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// Result is a finished run.
type Result struct {
	RunID string
	// Status says how the run ended: succeeded, failed or interrupted.
	Status string
	// State is the final state.
	State map[string]any
	// Output holds the workflow's output fields, or the whole state when it names none.
	Output map[string]any
	// Fields lists the names in Output in declaration order.
	Fields []string
	// Failures are the items that failed within their map's max_failures, and the
	// errors on_error handled, in item order.
	Failures []Failure
	// Items counts the items that finished (at every depth, replayed ones
	// included); FailedItems those that failed.
	Items, FailedItems int
	Duration           time.Duration
	// Stats are the run's counters per node.
	Stats *Stats
	// MaxWorkers is the number of actions the run allowed in flight at once
	// (Options.MaxWorkers, else limits.concurrency, else 16).
	MaxWorkers int
}

// Run runs the workflow with the given inputs (initial values of state fields) and
// returns its final state. Inputs are checked against the state's types first: a
// problem is an *InputError. A run that fails returns a *RunError listing every
// failed item; when ctx is cancelled the error wraps ctx's cause. Run returns once
// the calls it abandoned (to a timeout or a cancellation) have returned too, or 5 s
// after the run's end: their programs are gone by then.
func Run(ctx context.Context, wf *spec.Workflow, inputs map[string]any, opts Options) (*Result, error) {
	inputs, err := CheckInputs(wf, inputs)
	if err != nil {
		return nil, err
	}
	r := newRun(wf, opts)
	ctx = context.WithValue(ctx, runKey{}, r)
	start := r.now()
	r.emit(Event{Type: RunStarted, Workflow: wf.Name})
	if err := r.limit(wf, newState(wf, inputs).view()); err != nil {
		return nil, err
	}
	st, err := r.workflow(ctx, wf, inputs, nil, "")
	end := r.now()
	r.drain()
	if rep, ok := r.exec.(Reporter); ok {
		for _, e := range rep.Report() {
			r.emit(e)
		}
	}
	var ie *ItemError
	if errors.As(err, &ie) && ie.Kind != KindMap && ie.Kind != KindCancel && ie.Kind != KindBudget {
		// A top-level node failed: report it like a failed item. (A failed map
		// has reported its items already.)
		f := Failure{Kind: ie.Kind, Attempts: ie.Attempts, Error: ie.Err.Error()}
		if ie.Node != nil {
			f.Node, f.Pos = ie.Node.Name, ie.Node.Pos.String()
		}
		r.fail(f)
	}
	res := &Result{RunID: r.id, Duration: end.Sub(start), Failures: sortFailures(r.failureList()),
		Items: int(r.itemsDone.Load()), FailedItems: int(r.itemsFailed.Load()), Stats: r.stats, MaxWorkers: cap(r.slots)}
	res.Status = StatusSucceeded
	if err != nil {
		res.Status = StatusFailed
		if ctx.Err() != nil {
			res.Status = StatusInterrupted
			err = fmt.Errorf("run interrupted: %w", context.Cause(ctx))
		}
		r.emit(Event{Type: RunFinished, Workflow: wf.Name, Status: res.Status, DurationMS: ms(res.Duration), Error: err.Error()})
		return res, &RunError{Err: err, Failures: res.Failures}
	}
	res.State = st
	res.Output, res.Fields = outputOf(wf, st)
	r.emit(Event{Type: RunFinished, Workflow: wf.Name, Status: res.Status, DurationMS: ms(res.Duration)})
	return res, nil
}

// run is one run's mutable context, shared by all its goroutines.
type run struct {
	wf    *spec.Workflow
	opts  Options
	id    string
	exec  action.Executor
	timed bool // the executor bounds attempts by their timeout itself
	clock Clock
	log   *slog.Logger  // nil: no records
	slots chan struct{} // run-wide action slots
	// dirs holds each workflow's directory relative to the run's (action.Call.Dir).
	dirs map[*spec.Workflow]string
	// obs are the observers of every event; itemObs those of item.started and
	// item.finished too.
	obs, itemObs []Observer
	// runVar is the `run` variable; envFn and secretFn the `env` and `secret`
	// functions; secrets the values secret() has read, masked in what calls return.
	runVar   map[string]any
	envFn    spec.EnvFunc
	secretFn spec.SecretFunc
	secrets  atomic.Pointer[[]string]

	journal *journal.Journal
	replay  *journal.Replay
	keyed   bool // units of work need keys: journaling or replaying
	stats   *Stats

	calls       sync.WaitGroup // action calls running, abandoned ones included
	mu          sync.Mutex
	failures    []Failure
	itemsDone   atomic.Int64
	itemsFailed atomic.Int64
}

func newRun(wf *spec.Workflow, opts Options) *run {
	r := &run{wf: wf, opts: opts, id: opts.RunID, exec: opts.Executor, clock: opts.Clock, log: opts.Logger,
		dirs: map[*spec.Workflow]string{}, journal: opts.Journal, replay: opts.Replay}
	r.keyed = r.journal != nil || r.replay != nil
	if r.stats = opts.Stats; r.stats == nil {
		r.stats = &Stats{}
	}
	if r.clock == nil {
		r.clock = WallClock
	}
	if r.id == "" {
		r.id = NewRunID(r.clock.Now())
	}
	if r.log != nil {
		r.log = r.log.With(slog.String("run", r.id))
	}
	for _, o := range opts.Observers {
		if n, ok := o.(notable); ok {
			r.obs = append(r.obs, n.o)
			continue
		}
		r.obs, r.itemObs = append(r.obs, o), append(r.itemObs, o)
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	r.envFn = func(name string, def ...any) (any, error) {
		if spec.LooksSecret(name) {
			return nil, fmt.Errorf("env(%q): the name looks like a secret's: read it with secret(%q) in an action's with:", name, name)
		}
		if v := getenv(name); v != "" {
			return v, nil
		}
		if len(def) > 0 {
			return def[0], nil
		}
		return "", nil
	}
	r.secretFn = func(name string) (string, error) {
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("secret(%q): the environment variable %s is not set", name, name)
		}
		r.addSecret(v)
		return v, nil
	}
	if r.exec == nil {
		r.exec = wf.Registry.Local(action.Env{Dir: wf.Dir, Getenv: getenv, Logger: opts.Logger, Sleep: r.clock.Sleep})
	}
	if te, ok := r.exec.(action.TimedExecutor); ok {
		r.timed = te.EnforcesTimeouts()
	}
	r.runVar = map[string]any{"id": r.id, "name": wf.Name}
	var addDir func(w *spec.Workflow)
	addDir = func(w *spec.Workflow) {
		if _, ok := r.dirs[w]; ok {
			return
		}
		rel, err := filepath.Rel(wf.Dir, w.Dir)
		if err != nil {
			rel = w.Dir
		}
		if rel = filepath.ToSlash(rel); rel == "." {
			rel = ""
		}
		r.dirs[w] = rel
		for _, inc := range w.Includes {
			addDir(inc)
		}
	}
	addDir(wf)
	return r
}

// limit sizes the run-wide action slots; limits.concurrency sees the initial state.
func (r *run) limit(wf *spec.Workflow, initial map[string]any) error {
	n := r.opts.MaxWorkers
	if n <= 0 && wf.Limits.Concurrency != nil {
		v, err := r.count(wf.Limits.Concurrency, map[string]any{"state": initial, "input": initial, "run": r.runVar, "env": r.envFn}, 1)
		if err != nil {
			return &InputError{Msg: fmt.Sprintf("limits.concurrency: %v", err)}
		}
		n = v
	}
	if n <= 0 {
		n = spec.DefaultConcurrency
	}
	r.slots = make(chan struct{}, n)
	return nil
}

// count evaluates an integer setting (a concurrency, a batch size) of at least min.
func (r *run) count(v *spec.Value, vars map[string]any, min int) (int, error) {
	x, err := v.Eval(nil, vars)
	if err != nil {
		return 0, err
	}
	n, ok := value.Int(x)
	if !ok {
		if s, isStr := x.(string); isStr {
			if _, err := fmt.Sscan(s, &n); err == nil {
				ok = true
			}
		}
	}
	if !ok || n < min {
		return 0, fmt.Errorf("%s: expected an integer of at least %d, got %s", v.Pos, min, value.Describe(x))
	}
	return n, nil
}

// workflow runs a workflow's top-level chain on a fresh state and returns the final
// state. from is the chain of the workflow node that runs it as a sub-workflow (nil
// for the run's own), key the journal key of its chain.
func (r *run) workflow(ctx context.Context, wf *spec.Workflow, inputs map[string]any, from *chain, key string) (map[string]any, error) {
	c := &chain{r: r, wf: wf, dir: r.dirs[wf], m: spec.NewVM(), st: newState(wf, inputs), key: key, keyMade: true}
	if from != nil {
		c.path, c.owner, c.depth, c.budgets = from.path, from.owner, from.depth, from.budgets
	}
	if err := c.run(ctx, wf.Start); err != nil {
		return nil, err
	}
	return c.st.view(), nil
}

// outputOf picks the workflow's output fields from a final state.
func outputOf(wf *spec.Workflow, st map[string]any) (map[string]any, []string) {
	fields := wf.Output
	if fields == nil {
		fields = wf.State
	}
	out := make(map[string]any, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		out[f.Name] = st[f.Name]
		names[i] = f.Name
	}
	return out, names
}

func (r *run) now() time.Time { return r.clock.Now() }

func (r *run) fail(f Failure) {
	r.mu.Lock()
	r.failures = append(r.failures, f)
	r.mu.Unlock()
}

// tolerate marks the failures recorded inside the item at path as tolerated.
func (r *run) tolerate(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.failures {
		if f := &r.failures[i]; strings.HasPrefix(f.Item, path+"/") && !f.Handled {
			f.Tolerated = true
		}
	}
}

func (r *run) failureList() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Failure(nil), r.failures...)
}

// callDrain bounds how long a run that ends waits for the calls it abandoned (a
// timeout, a cancellation) to return.
const callDrain = 5 * time.Second

// drain waits, up to callDrain, for action calls still running to return: their
// programs are killed when their context ends, and should be gone when Run returns
// (and the process may exit).
func (r *run) drain() {
	done := make(chan struct{})
	go func() {
		r.calls.Wait()
		close(done)
	}()
	t := time.NewTimer(callDrain)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// addSecret adds a value secret() read to those masked.
func (r *run) addSecret(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.secrets.Load()
	if old != nil && slices.Contains(*old, v) {
		return
	}
	var list []string
	if old != nil {
		list = append(list, *old...)
	}
	list = append(list, v)
	r.secrets.Store(&list)
}

// secretsOf lists what must not appear in what a call of a returns: the values of
// its secret parameters and every value secret() has read.
func (r *run) secretsOf(a *action.Spec, p action.Params) []string {
	out := a.Secrets(p)
	if read := r.secrets.Load(); read != nil {
		out = append(out, *read...)
	}
	if len(out) > 1 { // the longest first, so that one inside another is masked alike every time
		slices.SortFunc(out, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	}
	return out
}

// NewRunID returns a new run id: the start time, sortable, and random letters.
func NewRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
