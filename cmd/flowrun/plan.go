package main

import (
	"encoding/json"
	"errors"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/limit"
	"github.com/flowrun/flowrun/runtime"
)

// exitOverBudget is plan's exit code when a budget would be exceeded, or when the
// dry run found that the run would fail.
const exitOverBudget = 1

func (e *env) planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "say what a run would do, without making any call that costs, writes or waits",
		ArgsUsage: "FILE",
		Description: `Plan runs nothing that matters: it dry-runs the workflow, making the calls of
read-only actions (file.read, file.list, text.*) so that a fan-out over the files a
workflow reads has its real size, and only counting every other call (llm.chat,
http.request, exec, file.write, sleep, ...). It prints, per node, the items and calls,
the estimated tokens and dollars of model calls, and the calls in flight at most;
the time each rate limit implies; and whether each budget would hold. What depends
on a reply the plan does not get says "depends on NODE".

Exit status: 0 planned, every budget fits; 1 a budget would be exceeded, or the dry
run failed where a real run would fail too; 2 an invalid workflow, inputs or usage.`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "an input: `name=value` (JSON if it parses, else a string) or name=@file.json|yaml"},
			&cli.StringFlag{Name: "input-file", Usage: "a JSON or YAML `FILE` holding an object of inputs"},
			&cli.Int64Flag{Name: "max-input-bytes", Value: runtime.DefaultMaxInputBytes, Usage: "the largest input file (-i name=@file, --input-file), in `BYTES`"},
			&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON (docs/plan.md describes it)"},
			&cli.IntFlag{Name: "max-workers", Usage: "actions in flight across the run (default: limits.concurrency, else 16)"},
			allowPathFlag,
			&cli.StringFlag{Name: "store", Value: ".flowrun", Usage: "the run store, `DIR`, which read-only file actions may not read"},
		}, budgetFlags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("plan: name one workflow file (flowrun plan FILE [-i name=value]...)")
			}
			return e.plan(c)
		},
	}
}

func (e *env) plan(c *cli.Context) error {
	if n := c.Int("max-workers"); n < 0 {
		return usageError("--max-workers %d: expected a positive number", n)
	}
	budget, err := budgetOf(c)
	if err != nil {
		return err
	}
	fl, err := flagsOf(c)
	if err != nil {
		return err
	}
	wf, err := e.load(fl.loader(e.reg), c.Args().First())
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
	opts := limit.PlanOptions{MaxWorkers: fl.maxWorkers, Budget: budget, AllowPaths: fl.allowPaths}
	if st := storeOf(c); st != nil {
		if abs, err := filepath.Abs(st.Dir); err == nil {
			opts.Private = []string{abs}
		}
	}
	p, err := limit.NewPlan(c.Context, wf, inputs, opts)
	if err != nil {
		var ie *runtime.InputError
		if errors.As(err, &ie) {
			return exitWith(exitInvalid, err)
		}
		return exitWith(exitInterrupted, err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			return err
		}
	} else {
		writePlan(e.stdout, p)
	}
	if p.Exceeded() || (p.Stopped != nil && len(p.Stopped.DependsOn) == 0) {
		return exitWith(exitOverBudget, nil)
	}
	return nil
}
