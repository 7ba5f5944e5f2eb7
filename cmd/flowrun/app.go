package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/spec"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // the run failed
	exitInvalid     = 2 // invalid workflow, inputs or usage
	exitInterrupted = 130
)

// exitError carries an exit code out of a command; its message, if any, has been
// printed already or is printed by run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is a mistake in the command line.
func usageError(format string, args ...any) error {
	return exitWith(exitInvalid, fmt.Errorf(format, args...))
}

// env is what the commands share: the registry and the output streams.
type env struct {
	reg    *action.Registry
	stdout io.Writer
	stderr io.Writer
}

// run runs the command line args (args[0] is the program name) and returns the
// process's exit code. It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun: %v\n", err)
		return exitFailed
	}
	e := &env{reg: reg, stdout: stdout, stderr: stderr}
	app := e.app()
	if len(args) > 1 {
		args = append(args[:2:2], permute(args[2:], app.Command(args[1]))...)
	}
	err = app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitInvalid // urfave's own errors are usage errors: unknown flags, bad values
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "flowrun: %s\n", strings.TrimRight(msg, "\n"))
	}
	return code
}

func (e *env) app() *cli.App {
	return &cli.App{
		Name:                      "flowrun",
		Usage:                     "run declarative map-reduce workflows",
		UsageText:                 "flowrun <command> [arguments]",
		Description:               "flowrun runs YAML workflows: an orchestrator fans work out to workers in parallel under limits,\nand reducers fold their results into typed shared state. See https://github.com/flowrun/flowrun.",
		Writer:                    e.stdout,
		ErrWriter:                 e.stderr,
		HideVersion:               true,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Suggest:                   true,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError("%v (see flowrun %s --help)", err, c.Command.Name)
		},
		Commands: []*cli.Command{
			e.runCommand(),
			e.planCommand(),
			e.resumeCommand(),
			e.runsCommand(),
			e.validateCommand(),
			e.graphCommand(),
			e.schemaCommand(),
			e.actionsCommand(),
			e.workerCommand(),
			e.workersCommand(),
			e.versionCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				name := c.Args().First()
				return usageError("unknown command %q%s (run flowrun --help)", name, spec.DidYouMean(name, commandNames(c.App)))
			}
			return cli.ShowAppHelp(c)
		},
	}
}

func commandNames(app *cli.App) []string {
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	return names
}

// permute moves a command's flags before its positional arguments, so that
// `flowrun run FILE -i k=v` works as `flowrun run -i k=v FILE` (urfave/cli stops at
// the first positional argument). "--" ends the flags.
func permute(args []string, cmd *cli.Command) []string {
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, positional...)
}

func (e *env) versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print flowrun's version",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(e.stdout, versionString())
			return nil
		},
	}
}

// versionString is the module version (set by `go install ...@vX`) or "devel" with
// the VCS revision when built from a checkout.
func versionString() string {
	version, goVersion, rev := "devel", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("flowrun %s%s (%s)", version, rev, goVersion)
}
