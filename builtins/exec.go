package builtins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowrun/flowrun/action"
)

// maxOutput bounds what exec keeps of each of stdout and stderr.
const maxOutput = 32 << 20

// execWaitDelay is how long exec waits for a killed command's output pipes to close.
const execWaitDelay = 500 * time.Millisecond

func execAction() *action.Spec {
	return &action.Spec{
		Name:    "exec",
		NoCache: true,
		Summary: "Run a program and capture its output.",
		Doc: `Runs a program directly, without a shell: ` + "`argv[0]`" + ` is looked up in ` + "`PATH`" + `
(or taken relative to ` + "`dir`" + ` when it contains a ` + "`/`" + `) and the other elements are its
arguments, passed as they are, so no quoting is needed or interpreted. To use shell
features, run the shell yourself: ` + "`argv: [sh, -c, \"ls | wc -l\"]`" + `.

**exec is refused unless the run is started with ` + "`--allow-exec`" + `**: a workflow file
could otherwise run anything with your permissions.

The program inherits flowrun's environment plus ` + "`env`" + `, and runs in ` + "`dir`" + `
(default: the workflow's directory; confined like file paths, see ` + "`--allow-path`" + `).
When the node's ` + "`timeout`" + ` expires or the run is cancelled, the program and every
process it started are killed (the whole process group). A non-zero exit status is a
retryable error whose ` + "`error.exit_code`" + ` holds the status and whose message ends with
the last 500 bytes of standard error. Each output stream keeps at most 32 MiB.`,
		Params: []action.Param{
			{Name: "argv", Type: action.Array, Items: action.String, Required: true, Doc: "The program and its arguments, such as `[git, log, -1]`."},
			{Name: "stdin", Type: action.String, Doc: "Text fed to the program's standard input; empty input when not given."},
			{Name: "env", Type: action.Object, Doc: "Environment variables added to (or replacing) those flowrun has, name to value."},
			{Name: "dir", Type: action.String, Doc: "The working directory, relative to the workflow's directory; default the workflow's directory."},
		},
		Output: []action.Field{
			{Name: "stdout", Type: action.String, Doc: "What the program wrote to standard output."},
			{Name: "stderr", Type: action.String, Doc: "What the program wrote to standard error."},
			{Name: "exit_code", Type: action.Integer, Doc: "The exit status: 0 on success (other statuses are errors)."},
		},
		Examples: []action.Example{
			{
				Summary: "Run a program with arguments.",
				With:    "argv: [echo, hello, world]",
				Output:  "stdout: \"hello world\\n\"\nstderr: \"\"\nexit_code: 0",
			},
			{
				Summary: "Feed standard input and set a variable.",
				With:    "argv: [sh, -c, 'tr a-z A-Z; echo \"$GREETING\" >&2']\nstdin: quiet please\nenv: {GREETING: hi}",
				Output:  "stdout: QUIET PLEASE\nstderr: \"hi\\n\"\nexit_code: 0",
			},
		},
		Func: runExec,
	}
}

func runExec(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	if !env.AllowExec {
		grantor := env.Grantor
		if grantor == "" {
			grantor = "flowrun run (or resume)"
		}
		return nil, action.Permanentf("exec is disabled: pass --allow-exec to %s to let this workflow run programs", grantor)
	}
	argv := call.Params.Strings("argv") // a list of strings: checked when bound
	if len(argv) == 0 {
		return nil, action.Permanentf("parameter \"argv\": want at least the program name")
	}
	if argv[0] == "" {
		return nil, action.Permanentf("parameter \"argv\": empty program name")
	}
	vars, err := stringMap(call.Params, "env")
	if err != nil {
		return nil, err
	}
	dir := call.Params.String("dir")
	if dir == "" {
		dir = "."
	}
	pl, err := confine(env, dir)
	if err != nil {
		return nil, err
	}

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(pl.root, pl.rel)
	cmd.Env = os.Environ()
	for _, v := range vars {
		cmd.Env = append(cmd.Env, v[0]+"="+v[1])
	}
	if call.Params.Has("stdin") {
		cmd.Stdin = strings.NewReader(call.Params.String("stdin"))
	}
	stdout, stderr := &capped{}, &capped{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	killGroup(cmd)
	cmd.WaitDelay = execWaitDelay
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, action.Permanentf("start %q: %v", argv[0], unwrapExec(err))
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	out := map[string]any{"stdout": stdout.String(), "stderr": stderr.String(), "exit_code": 0}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay: the program exited 0, but a background child kept its output open.
	case errors.As(err, &exitErr):
		code := exitErr.ExitCode()
		what := fmt.Sprintf("exited with status %d", code)
		if code < 0 {
			what = "was killed: " + exitErr.String()
		}
		msg := fmt.Sprintf("%s %s", argv[0], what)
		if tail := tail(stderr.String(), 500); tail != "" {
			msg += ": " + tail
		}
		return nil, &action.Error{Msg: msg, Fields: map[string]any{"exit_code": code}, Err: err}
	default:
		return nil, action.Errorf("run %q: %w", argv[0], err)
	}
	if stdout.over || stderr.over {
		return nil, action.Permanentf("%s wrote more than 32 MiB to standard output or error", argv[0])
	}
	return out, nil
}

// unwrapExec drops the *fs.PathError or *exec.Error wrapper's repetition of the name.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// tail returns the last n bytes of s, trimmed, starting at a character boundary.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "..." + s[i:]
}

// capped is a buffer that keeps the first maxOutput bytes written to it.
type capped struct {
	bytes.Buffer
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); len(p) > room {
		c.over = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
