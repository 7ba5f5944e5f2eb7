//go:build unix

package builtins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

func TestExecRefusedWithoutAllowExec(t *testing.T) {
	_, err := run(t, "exec", &action.Env{Dir: t.TempDir()}, map[string]any{"argv": []any{"true"}})
	wantPermanent(t, err, "--allow-exec")
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"sub/file.txt": "x"})
	if err := os.WriteFile(filepath.Join(dir, "script.sh"), []byte("#!/bin/sh\necho script \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &action.Env{Dir: dir, AllowExec: true}
	tests := []struct {
		name string
		with map[string]any
		want map[string]any
	}{
		{
			name: "arguments are not interpreted by a shell",
			with: map[string]any{"argv": []any{"printf", "%s|", "$HOME", "a b", "*"}},
			want: map[string]any{"stdout": "$HOME|a b|*|", "stderr": "", "exit_code": 0},
		},
		{
			name: "stdin, env and stderr",
			with: map[string]any{"argv": []any{"sh", "-c", "cat; echo \"$FOO $N\" >&2"}, "stdin": "in", "env": map[string]any{"FOO": "bar", "N": 3}},
			want: map[string]any{"stdout": "in", "stderr": "bar 3\n", "exit_code": 0},
		},
		{
			name: "runs in the workflow directory",
			with: map[string]any{"argv": []any{"ls"}},
			want: map[string]any{"stdout": "script.sh\nsub\n", "stderr": "", "exit_code": 0},
		},
		{
			name: "dir is relative to the workflow directory",
			with: map[string]any{"argv": []any{"ls"}, "dir": "sub"},
			want: map[string]any{"stdout": "file.txt\n", "stderr": "", "exit_code": 0},
		},
		{
			name: "relative program path",
			with: map[string]any{"argv": []any{"./script.sh", "go"}},
			want: map[string]any{"stdout": "script go\n", "stderr": "", "exit_code": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, "exec", e, tt.with)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecNonZeroExit(t *testing.T) {
	e := &action.Env{Dir: t.TempDir(), AllowExec: true}
	script := `i=0; while [ $i -lt 200 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo "the real cause" >&2; exit 3`
	_, err := run(t, "exec", e, map[string]any{"argv": []any{"sh", "-c", script}})
	var ae *action.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an action error", err)
	}
	if ae.Permanent {
		t.Error("a non-zero exit is permanent, want retryable")
	}
	if diff := cmp.Diff(map[string]any{"exit_code": 3}, ae.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(ae.Msg, "the real cause") || !strings.Contains(ae.Msg, "status 3") {
		t.Errorf("message %q lacks the status or the end of stderr", ae.Msg)
	}
	if strings.Contains(ae.Msg, "noise line 1\n") || len(ae.Msg) > 700 {
		t.Errorf("message is not cut to the tail of stderr: %d bytes", len(ae.Msg))
	}
}

func TestExecErrors(t *testing.T) {
	dir := t.TempDir()
	e := &action.Env{Dir: dir, AllowExec: true}
	_, err := run(t, "exec", e, map[string]any{"argv": []any{"no-such-program-flowrun"}})
	wantPermanent(t, err, "no-such-program-flowrun")
	_, err = run(t, "exec", e, map[string]any{"argv": []any{}})
	wantPermanent(t, err, "argv")
	_, err = run(t, "exec", e, map[string]any{"argv": []any{"ls"}, "dir": "../"})
	wantPermanent(t, err, "--allow-path")
}

// TestExecTimeoutKillsProcessGroup checks that a cancelled command and the children
// it started are killed at once, even while they hold its output open.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	s := spec(t, "exec")
	params, err := s.Bind(map[string]any{"argv": []any{"sh", "-c", "sleep 30 & echo $! > child.pid; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = local(t, &action.Env{Dir: dir, AllowExec: true}).Execute(ctx, &action.Call{Action: s.Name, Params: params, Attempt: 1})
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %s, want under a second", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still alive after the command was cancelled", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether a process runs; a zombie (killed, not yet reaped by an init
// that may never reap it) does not count.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: trust kill
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
