package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/store"
)

// allowPathFlag is shared by the commands that load workflows.
var allowPathFlag = &cli.StringSliceFlag{Name: "allow-path", Usage: "let file actions and sub-workflows use `DIR` too (repeatable)"}

// storeFlag, runFlags: shared by run and resume.
var storeFlag = &cli.StringFlag{Name: "store", Value: ".flowrun", Usage: "keep runs in `DIR`, so they can resume; none to keep nothing"}

func runFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "max-workers", Usage: "actions in flight across the run (default: limits.concurrency, else 16)"},
		&cli.StringFlag{Name: "output", Value: "json", Usage: "json or yaml"},
		&cli.StringFlag{Name: "events", Usage: "write one JSON event per line to `FILE` (- for stderr)"},
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress bars on stderr: auto (on a terminal), always or never"},
		&cli.BoolFlag{Name: "allow-exec", Usage: "allow the exec action to run programs"},
		allowPathFlag,
		storeFlag,
	}, append(budgetFlags(), natsFlags()...)...)
}

func (e *env) runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a workflow and print its final state (or output fields) as JSON",
		ArgsUsage: "FILE",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "an input: `name=value` (JSON if it parses, else a string) or name=@file.json|yaml"},
			&cli.StringFlag{Name: "input-file", Usage: "a JSON or YAML `FILE` holding an object of inputs"},
			&cli.StringFlag{Name: "run-id", Usage: "the run's id (default: a new one)"},
			&cli.Int64Flag{Name: "max-input-bytes", Value: runtime.DefaultMaxInputBytes, Usage: "the largest input file (-i name=@file, --input-file), in `BYTES`"},
		}, runFlags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("run: name one workflow file (flowrun run FILE [-i name=value]...)")
			}
			return e.run(c)
		},
	}
}

func (e *env) run(c *cli.Context) error {
	if err := checkRunFlags(c); err != nil {
		return err
	}
	fl, err := flagsOf(c)
	if err != nil {
		return err
	}
	file := c.Args().First()
	wf, err := e.load(fl.loader(e.reg), file)
	if err != nil {
		return err
	}
	inputs, err := readInputs(c)
	if err == nil {
		inputs, err = runtime.CheckInputs(wf, inputs)
	}
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	so, err := e.connectNATS(c)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	st := storeOf(c)
	if st == nil {
		return e.execute(c, wf, inputs, fl, nil, so)
	}
	ss, err := st.Create(wf, inputs, store.Meta{ID: c.String("run-id"), Workflow: file,
		MaxWorkers: fl.maxWorkers, AllowExec: fl.allowExec, AllowPaths: fl.allowPaths})
	if err != nil {
		so.stop(false)
		return exitWith(exitInvalid, err)
	}
	return e.execute(c, wf, inputs, fl, ss, so)
}

func checkRunFlags(c *cli.Context) error {
	if f := c.String("output"); f != "json" && f != "yaml" {
		return usageError("--output %q: expected json or yaml", f)
	}
	if n := c.Int("max-workers"); n < 0 {
		return usageError("--max-workers %d: expected a positive number", n)
	}
	return nil
}

// storeOf is the run store the flags name, or nil for --store none.
func storeOf(c *cli.Context) *store.Store {
	dir := c.String("store")
	if dir == "none" || dir == "" {
		return nil
	}
	return &store.Store{Dir: dir}
}

// runFlagValues are what run and resume take from their flags.
type runFlagValues struct {
	maxWorkers int
	allowExec  bool
	allowPaths []string // absolute
}

// loader loads workflows whose sub-workflows may lie in the allowed paths.
func (fl runFlagValues) loader(reg *action.Registry) *spec.Loader {
	return &spec.Loader{Registry: reg, AllowPaths: fl.allowPaths}
}

func flagsOf(c *cli.Context) (runFlagValues, error) {
	paths, err := allowedPaths(c)
	return runFlagValues{maxWorkers: c.Int("max-workers"), allowExec: c.Bool("allow-exec"), allowPaths: paths}, err
}

// allowedPaths are the --allow-path directories, absolute.
func allowedPaths(c *cli.Context) ([]string, error) {
	var out []string
	for _, dir := range c.StringSlice("allow-path") {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, usageError("--allow-path %s: %v", dir, err)
		}
		out = append(out, abs)
	}
	return out, nil
}

// execute runs a loaded workflow, in a stored session when ss is not nil, its
// calls through NATS when so is not nil, and prints its output or its failure.
func (e *env) execute(c *cli.Context, wf *spec.Workflow, inputs map[string]any, fl runFlagValues, ss *store.Session, so *scaledOut) error {
	abort := func(err error) error {
		so.stop(false)
		if ss != nil {
			ss.Close(nil, err)
		}
		return err
	}
	opts := runtime.Options{RunID: c.String("run-id"), MaxWorkers: fl.maxWorkers, Stats: &runtime.Stats{}}
	if ss != nil {
		opts.RunID = ss.Meta.ID
	} else if opts.RunID == "" {
		opts.RunID = runtime.NewRunID(time.Now())
	}
	closeEvents := func() error { return nil }
	if path := c.String("events"); path != "" {
		w, closer, err := e.eventFile(path)
		if err != nil {
			return abort(usageError("--events: %v", err))
		}
		ew := runtime.NewEventWriter(w)
		opts.Observers = append(opts.Observers, ew)
		closeEvents = func() error { return errors.Join(ew.Close(), closer()) }
	}
	show, err := progressMode(c.String("progress"), e.stderr)
	if err != nil {
		closeEvents()
		return abort(err)
	}
	log := &lineHandler{w: e.stderr}
	env := action.Env{Dir: wf.Dir, AllowExec: fl.allowExec, AllowPaths: fl.allowPaths, Logger: slogOf(log)}
	if st := storeOf(c); st != nil {
		if abs, err := filepath.Abs(st.Dir); err == nil {
			env.Private = []string{abs}
		}
	}
	opts.Executor = e.reg.Local(env)
	if so != nil {
		if err := so.start(c, opts.RunID, opts.Executor, ss, log); err != nil {
			closeEvents()
			return abort(exitWith(exitInvalid, err))
		}
		opts.Executor = so.exec
		natsOptions(c, &opts)
	}
	lim, err := e.limits(c, wf, opts.Executor, opts.MaxWorkers, ss)
	if err != nil {
		closeEvents()
		return abort(err)
	}
	opts.Executor = lim
	var pr *progress
	if show {
		pr = startProgress(e.stderr, opts.Stats, wf.Name, lim.Totals)
		log.to(pr)
	}
	var res *runtime.Result
	var runErr error
	if ss != nil {
		res, runErr = ss.Run(c.Context, opts)
	} else {
		res, runErr = runtime.Run(c.Context, wf, inputs, opts)
	}
	if pr != nil {
		pr.finish()
		log.to(e.stderr)
	}
	so.stop(runErr == nil)
	if err := closeEvents(); err != nil {
		fmt.Fprintf(e.stderr, "flowrun: --events: %v\n", err)
	}
	status := runtime.StatusFailed
	if res != nil {
		status = res.Status
	}
	if runErr != nil && status == runtime.StatusSucceeded {
		// The run succeeded, but the store could not record it.
		fmt.Fprintf(e.stderr, "flowrun: run store: %v\n", runErr)
		runErr = nil
	}
	if runErr != nil {
		err := e.runFailed(c.Context, runErr, ss)
		writeSummary(e.stderr, opts.RunID, status, res)
		writeLimits(e.stderr, lim)
		switch {
		case ss != nil && lim.Reached() != "":
			fmt.Fprintln(e.stderr, budgetHint(resumeCommand(c, opts.RunID), lim))
		case ss != nil:
			fmt.Fprintf(e.stderr, "flowrun: finished items are saved; continue with: %s\n", resumeCommand(c, opts.RunID))
		}
		return err
	}
	e.report(res.Failures, ss)
	writeSummary(e.stderr, opts.RunID, status, res)
	writeLimits(e.stderr, lim)
	return writeOutput(e.stdout, c.String("output"), res.Output, res.Fields)
}

func resumeCommand(c *cli.Context, id string) string {
	cmd := "flowrun resume " + id
	if dir := c.String("store"); dir != storeFlag.Value {
		cmd += " --store " + dir
	}
	return cmd
}

// load loads a workflow, printing its problems; warnings do not stop it.
func (e *env) load(ld *spec.Loader, file string) (*spec.Workflow, error) {
	wf, err := ld.Load(file)
	if err != nil {
		return nil, e.invalid(err)
	}
	e.warn(wf)
	return wf, nil
}

// invalid prints the problems of a workflow that did not load.
func (e *env) invalid(err error) error {
	fmt.Fprintln(e.stderr, err)
	return exitWith(exitInvalid, nil)
}

func (e *env) warn(wf *spec.Workflow) {
	for _, w := range wf.Warnings {
		fmt.Fprintln(e.stderr, w)
	}
}

// reportLines bounds the failure report on stderr; the store keeps the full list.
const reportLines = 20

// report prints the failed items, at most reportLines of them, and where the rest are.
func (e *env) report(failures []runtime.Failure, ss *store.Session) {
	fmt.Fprint(e.stderr, runtime.ReportAtMost(failures, reportLines))
	if len(failures) > reportLines && ss != nil {
		fmt.Fprintf(e.stderr, "flowrun: every failed item is listed in %s\n", ss.FailuresFile())
	}
}

// runFailed reports a failed or interrupted run and picks the exit code.
func (e *env) runFailed(ctx context.Context, err error, ss *store.Session) error {
	var ie *runtime.InputError
	if errors.As(err, &ie) {
		return exitWith(exitInvalid, err)
	}
	var re *runtime.RunError
	if errors.As(err, &re) {
		e.report(re.Failures, ss)
		for _, f := range re.Failures {
			if f.Map == "" && !f.Tolerated && !f.Handled && strings.HasSuffix(err.Error(), f.Error) {
				// A top-level node failed: the report has said it all.
				err = fmt.Errorf("run failed at node %q", f.Node)
			}
		}
	}
	if ctx.Err() != nil {
		return exitWith(exitInterrupted, err)
	}
	return exitWith(exitFailed, err)
}

// readInputs gathers --input-file, then -i (which wins).
func readInputs(c *cli.Context) (map[string]any, error) {
	inputs := map[string]any{}
	if f := c.String("input-file"); f != "" {
		obj, err := runtime.ReadInputsFile(f, c.Int64("max-input-bytes"))
		if err != nil {
			return nil, err
		}
		for k, v := range obj {
			inputs[k] = v
		}
	}
	for _, arg := range c.StringSlice("input") {
		name, v, err := runtime.ParseInput(arg, "", c.Int64("max-input-bytes"))
		if err != nil {
			return nil, err
		}
		inputs[name] = v
	}
	return inputs, nil
}

func (e *env) eventFile(path string) (io.Writer, func() error, error) {
	if path == "-" {
		return e.stderr, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// lineHandler prints log records as "[level] message" lines: what actions log.
type lineHandler struct {
	mu sync.Mutex
	w  io.Writer
}

// to sends the lines to w from now on.
func (h *lineHandler) to(w io.Writer) {
	h.mu.Lock()
	h.w = w
	h.mu.Unlock()
}

func slogOf(h *lineHandler) *slog.Logger { return slog.New(h) }

func (h *lineHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.w, "[%s] %s\n", strings.ToLower(r.Level.String()), r.Message)
	return err
}

func (h *lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *lineHandler) WithGroup(string) slog.Handler      { return h }
