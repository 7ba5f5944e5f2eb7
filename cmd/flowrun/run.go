package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// storeFlag, runFlags: shared by run and resume.
var storeFlag = &cli.StringFlag{Name: "store", Value: ".flowrun", Usage: "keep runs in `DIR`, so they can resume; none to keep nothing"}

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-workers", Usage: "actions in flight across the run (default: limits.concurrency, else 16)"},
		&cli.StringFlag{Name: "output", Value: "json", Usage: "json or yaml"},
		&cli.StringFlag{Name: "events", Usage: "write one JSON event per line to `FILE` (- for stderr)"},
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress bars on stderr: auto (on a terminal), always or never"},
		&cli.BoolFlag{Name: "allow-exec", Usage: "allow the exec action to run programs"},
		&cli.StringSliceFlag{Name: "allow-path", Usage: "let file actions use `DIR` too (repeatable)"},
		storeFlag,
	}
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
	file := c.Args().First()
	wf, err := e.load(file)
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
	opts, err := e.options(c)
	if err != nil {
		return err
	}
	if opts.RunID == "" {
		opts.RunID = runtime.NewRunID(time.Now())
	}
	var sr *runtime.StoredRun
	if store := storeOf(c); store != nil {
		abs, _ := filepath.Abs(file)
		sr, err = store.Create(runtime.Meta{ID: opts.RunID, Workflow: file, Path: abs, Name: wf.Name, Hash: wf.Hash,
			Inputs: inputs, MaxWorkers: opts.MaxWorkers, AllowExec: opts.AllowExec, AllowPaths: opts.AllowPaths}, wf)
		if err != nil {
			return exitWith(exitInvalid, err)
		}
		opts.Journal = sr.Journal
	}
	return e.execute(c, wf, inputs, opts, sr)
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
func storeOf(c *cli.Context) *runtime.Store {
	dir := c.String("store")
	if dir == "none" || dir == "" {
		return nil
	}
	return &runtime.Store{Dir: dir}
}

// execute runs a loaded workflow, records how it ended in the store, and prints
// its output or its failure.
func (e *env) execute(c *cli.Context, wf *spec.Workflow, inputs map[string]any, opts runtime.Options, sr *runtime.StoredRun) error {
	closeEvents := func() error { return nil }
	if path := c.String("events"); path != "" {
		w, closer, err := e.eventWriter(path)
		if err != nil {
			if sr != nil {
				sr.Finish(nil, err, runtime.StatusFailed)
			}
			return usageError("--events: %v", err)
		}
		ew := newEventWriter(w)
		opts.Observer = ew
		closeEvents = func() error {
			err := ew.close()
			if cerr := closer(); err == nil {
				err = cerr
			}
			return err
		}
	}
	show, err := progressMode(c.String("progress"), e.stderr)
	if err != nil {
		closeEvents()
		if sr != nil {
			sr.Finish(nil, err, runtime.StatusFailed)
		}
		return err
	}
	opts.Stats = &runtime.Stats{}
	var pr *progress
	if show {
		pr = startProgress(e.stderr, opts.Stats, wf.Name)
		opts.Log = func(level, msg string) { fmt.Fprintf(pr, "[%s] %s\n", level, msg) }
	}
	res, runErr := runtime.Run(c.Context, wf, inputs, opts)
	if pr != nil {
		pr.finish()
	}
	if err := closeEvents(); err != nil {
		fmt.Fprintf(e.stderr, "flowrun: --events: %v\n", err)
	}
	status := runtime.StatusSucceeded
	switch {
	case runErr != nil && c.Context.Err() != nil:
		status = runtime.StatusInterrupted
	case runErr != nil:
		status = runtime.StatusFailed
	}
	if sr != nil {
		if err := sr.Finish(res, runErr, status); err != nil {
			fmt.Fprintf(e.stderr, "flowrun: run store: %v\n", err)
		}
	}
	if runErr != nil {
		err := e.runFailed(c.Context, runErr)
		writeSummary(e.stderr, opts.RunID, status, res)
		if sr != nil {
			fmt.Fprintf(e.stderr, "flowrun: finished items are saved; continue with: %s\n", resumeCommand(c, opts.RunID))
		}
		return err
	}
	if len(res.Failures) > 0 {
		fmt.Fprint(e.stderr, runtime.Report(res.Failures))
	}
	writeSummary(e.stderr, opts.RunID, status, res)
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
func (e *env) load(file string) (*spec.Workflow, error) {
	wf, err := spec.Load(file, e.reg)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, exitWith(exitInvalid, nil)
	}
	for _, w := range wf.Warnings {
		fmt.Fprintln(e.stderr, w)
	}
	return wf, nil
}

// runFailed reports a failed or interrupted run and picks the exit code.
func (e *env) runFailed(ctx context.Context, err error) error {
	var ie *runtime.InputError
	if errors.As(err, &ie) {
		return exitWith(exitInvalid, err)
	}
	var re *runtime.RunError
	if errors.As(err, &re) {
		fmt.Fprint(e.stderr, runtime.Report(re.Failures))
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
		obj, err := runtime.ReadInputsFile(f)
		if err != nil {
			return nil, err
		}
		for k, v := range obj {
			inputs[k] = v
		}
	}
	for _, arg := range c.StringSlice("input") {
		name, v, err := runtime.ParseInput(arg, "")
		if err != nil {
			return nil, err
		}
		inputs[name] = v
	}
	return inputs, nil
}

// options builds the run's options from the flags.
func (e *env) options(c *cli.Context) (runtime.Options, error) {
	opts := runtime.Options{
		RunID:      c.String("run-id"),
		MaxWorkers: c.Int("max-workers"),
		AllowExec:  c.Bool("allow-exec"),
		Log: func(level, msg string) {
			fmt.Fprintf(e.stderr, "[%s] %s\n", level, msg)
		},
	}
	for _, dir := range c.StringSlice("allow-path") {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return opts, usageError("--allow-path %s: %v", dir, err)
		}
		opts.AllowPaths = append(opts.AllowPaths, abs)
	}
	return opts, nil
}

func (e *env) eventWriter(path string) (io.Writer, func() error, error) {
	if path == "-" {
		return e.stderr, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// eventWriter writes events as JSON lines, buffered, and flushed at least every
// flushEvery so that a program tailing the file sees the run as it goes.
type eventWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	err  error
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

func newEventWriter(w io.Writer) *eventWriter {
	ew := &eventWriter{w: bufio.NewWriter(w), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ew.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ew.mu.Lock()
				if ew.err == nil && ew.w.Buffered() > 0 {
					ew.err = ew.w.Flush()
				}
				ew.mu.Unlock()
			case <-ew.stop:
				return
			}
		}
	}()
	return ew
}

func (ew *eventWriter) Observe(ev *runtime.Event) {
	b, err := json.Marshal(ev)
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if err == nil && ew.err == nil {
		b = append(b, '\n')
		_, ew.err = ew.w.Write(b)
	}
}

// close stops the flusher and flushes what is left.
func (ew *eventWriter) close() error {
	close(ew.stop)
	<-ew.done
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if ew.err != nil {
		return ew.err
	}
	return ew.w.Flush()
}
