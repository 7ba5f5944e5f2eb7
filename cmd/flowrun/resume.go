package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/store"
)

func (e *env) resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "continue an interrupted or failed run without re-running finished items",
		ArgsUsage: "RUN_ID",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "resume even though the workflow file changed since the run started"},
			&cli.BoolFlag{Name: "repair", Usage: "drop the damaged records of the run's journal first (their work runs again)"},
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
	st := storeOf(c)
	if st == nil {
		return usageError("resume needs a run store: --store none keeps nothing to resume")
	}
	meta, err := st.Meta(id)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	if meta.Status == store.StatusSucceeded {
		out, fields, err := st.Result(id)
		if err != nil {
			return exitWith(exitFailed, err)
		}
		fmt.Fprintf(e.stderr, "flowrun: run %s finished already (%s); its result:\n", id, meta.Finished.Local().Format(time.DateTime))
		return writeOutput(e.stdout, c.String("output"), out, fields)
	}
	fl, err := flagsOf(c)
	if err != nil {
		return err
	}
	if c.Bool("repair") {
		n, err := st.Repair(id)
		if err != nil {
			return exitWith(exitFailed, err)
		}
		fmt.Fprintf(e.stderr, "flowrun: dropped %d damaged %s of run %s's journal; the work they held runs again\n", n, plural(n, "line", "lines"), id)
	}
	so, err := e.connectNATS(c)
	if err != nil {
		return exitWith(exitInvalid, err)
	}
	ss, err := st.Reopen(id, fl.loader(e.reg), c.Bool("force"))
	if err != nil {
		so.stop(false)
	}
	var changed *store.ChangedError
	var invalid spec.Errors
	var damaged *journal.DamageError
	switch {
	case errors.As(err, &damaged):
		return exitWith(exitFailed, fmt.Errorf("%w\n"+
			"flowrun resume %s --repair drops the damaged records, and the work they held runs again", err, id))
	case errors.As(err, &changed):
		return exitWith(exitInvalid, fmt.Errorf("%w\n"+
			"resume with --force to continue with the new file (finished items keep their results), or start a new run", err))
	case errors.As(err, &invalid):
		return e.invalid(err)
	case err != nil:
		return exitWith(exitInvalid, err)
	}
	e.warn(ss.Workflow)
	if ss.Changed != "" {
		fmt.Fprintf(e.stderr, "flowrun: %s changed since run %s started (%s); continuing with the new file (--force)\n", meta.Workflow, id, ss.Changed)
	}
	// A stored flag grants nothing: the run gets what this command allows. Only
	// --max-workers, which grants nothing, carries over.
	if !c.IsSet("max-workers") {
		fl.maxWorkers = meta.MaxWorkers
	}
	if again := flagsToRepeat(meta, fl); again != "" {
		fmt.Fprintf(e.stderr, "flowrun: run %s was started with %s; this resume does not allow it: give it again to allow it\n", id, again)
	}
	ss.Meta.MaxWorkers, ss.Meta.AllowExec, ss.Meta.AllowPaths = fl.maxWorkers, fl.allowExec, fl.allowPaths
	fmt.Fprintf(e.stderr, "flowrun: resuming run %s: %d items finished before\n", id, ss.Replayed)
	return e.execute(c, ss.Workflow, ss.Inputs, fl, ss, so)
}

// flagsToRepeat lists the --allow-* flags a run was started with that a resume
// does not give again.
func flagsToRepeat(meta store.Meta, fl runFlagValues) string {
	var again []string
	if meta.AllowExec && !fl.allowExec {
		again = append(again, "--allow-exec")
	}
	for _, p := range meta.AllowPaths {
		if !slices.Contains(fl.allowPaths, p) {
			again = append(again, "--allow-path "+p)
		}
	}
	return strings.Join(again, " ")
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
			st := storeOf(c)
			if st == nil {
				return usageError("runs: --store none has no runs")
			}
			runs, err := st.List()
			if err != nil {
				return exitWith(exitFailed, err)
			}
			if c.Bool("json") {
				if runs == nil {
					runs = []store.Meta{}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(runs)
			}
			if len(runs) == 0 {
				fmt.Fprintf(e.stderr, "no runs in %s\n", st.Dir)
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
