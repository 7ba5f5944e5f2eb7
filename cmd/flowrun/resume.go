package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

func (e *env) resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "continue an interrupted or failed run without re-running finished items",
		ArgsUsage: "RUN_ID",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "resume even though the workflow file changed since the run started"},
		}, runFlags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("resume: name one run id (flowrun runs lists them)")
			}
			return e.resume(c, c.Args().First())
		},
	}
}

func (e *env) resume(c *cli.Context, id string) error {
	if err := checkRunFlags(c); err != nil {
		return err
	}
	store := storeOf(c)
	if store == nil {
		return usageError("resume needs a run store: --store none keeps nothing to resume")
	}
	meta, err := store.Meta(id)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	switch meta.Status {
	case runtime.StatusRunning:
		return exitWith(exitInvalid, fmt.Errorf("run %s is still running (pid %d)", id, meta.PID))
	case runtime.StatusSucceeded:
		rp, err := runtime.ReadReplay(filepath.Join(store.Dir, "runs", id, "journal.log"))
		if err != nil {
			return exitWith(exitFailed, err)
		}
		out, fields, ok := rp.Finished()
		if !ok {
			return exitWith(exitFailed, fmt.Errorf("run %s finished, but its journal has no result", id))
		}
		fmt.Fprintf(e.stderr, "flowrun: run %s finished already (%s); its result:\n", id, meta.Finished.Local().Format(time.DateTime))
		return writeOutput(e.stdout, c.String("output"), out, fields)
	}
	file := displayPath(meta.Path)
	wf, err := e.load(file)
	if err != nil {
		return err
	}
	if wf.Hash != meta.Hash {
		change := describeChange(store, meta, wf)
		if !c.Bool("force") {
			return exitWith(exitInvalid, fmt.Errorf("%s changed since run %s started: %s\n"+
				"resume with --force to continue with the new file (finished items keep their results), or start a new run", file, id, change))
		}
		fmt.Fprintf(e.stderr, "flowrun: %s changed since run %s started (%s); continuing with the new file (--force)\n", file, id, change)
	}
	inputs, err := runtime.CheckInputs(wf, meta.Inputs)
	if err != nil {
		return exitWith(exitInvalid, fmt.Errorf("the inputs of run %s do not fit the workflow now: %w", id, err))
	}
	opts, err := e.options(c)
	if err != nil {
		return err
	}
	// The flags of the run hold unless resume gives its own.
	opts.RunID = id
	if !c.IsSet("max-workers") {
		opts.MaxWorkers = meta.MaxWorkers
	}
	opts.AllowExec = opts.AllowExec || meta.AllowExec
	opts.AllowPaths = append(append([]string(nil), meta.AllowPaths...), opts.AllowPaths...)
	sr, err := store.Resume(id)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	sr.Meta.Hash, sr.Meta.MaxWorkers, sr.Meta.AllowExec, sr.Meta.AllowPaths = wf.Hash, opts.MaxWorkers, opts.AllowExec, opts.AllowPaths
	opts.Journal, opts.Replay = sr.Journal, sr.Replay
	fmt.Fprintf(e.stderr, "flowrun: resuming run %s: %d items finished before\n", id, sr.Replay.Items)
	return e.execute(c, wf, inputs, opts, sr)
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
func describeChange(store *runtime.Store, meta runtime.Meta, wf *spec.Workflow) string {
	old, err := os.ReadFile(store.WorkflowCopy(meta))
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

func (e *env) runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list the stored runs, newest first",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the runs as JSON, for tools"},
			storeFlag,
		},
		Action: func(c *cli.Context) error {
			store := storeOf(c)
			if store == nil {
				return usageError("runs: --store none has no runs")
			}
			runs, err := store.List()
			if err != nil {
				return exitWith(exitFailed, err)
			}
			if c.Bool("json") {
				if runs == nil {
					runs = []runtime.Meta{}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(runs)
			}
			if len(runs) == 0 {
				fmt.Fprintf(e.stderr, "no runs in %s\n", store.Dir)
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN ID\tWORKFLOW\tSTATUS\tSTARTED\tDURATION\tITEMS\tFAILED")
			for _, m := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", m.ID, m.Workflow, m.Status,
					m.Started.Local().Format(time.DateTime), m.Duration(now).Round(time.Millisecond), m.Items, m.Failed)
			}
			return tw.Flush()
		},
	}
}
