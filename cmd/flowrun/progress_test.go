//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/flowrun/flowrun/runtime"
)

// openPTY opens a pseudo-terminal of 120 columns and 40 rows.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("TIOCGPTN: %v", errno)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("TIOCSPTLCK: %v", errno)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := struct{ rows, cols, x, y uint16 }{40, 120, 0, 0}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, slave.Fd(), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws))); errno != 0 {
		t.Fatalf("TIOCSWINSZ: %v", errno)
	}
	return master, slave
}

const progressWorkflow = `version: 1
state:
  n: {type: integer, reducer: sum}
nodes:
  outer:
    map: {over: "1..3", as: o, to: inner, with: {o: "${{ o }}"}, concurrency: 3}
  inner:
    map: {over: "1..10", as: i, to: work, with: {bad: "${{ input.o == 3 && i == 10 }}"}, concurrency: 4, max_failures: 1}
  work:
    action: fail
    with: {times: "${{ input.bad ? 9 : 0 }}"}
    update: {n: 1}
    retry: {max_attempts: 2, delay: 500ms, jitter: false}
`

// TestProgressOnTerminal runs flowrun with its stderr on a pseudo-terminal and
// checks the bars: one per map node, the nested one indented, redrawn in place,
// with counts, failures (red unless NO_COLOR) and a final 100%.
func TestProgressOnTerminal(t *testing.T) {
	bin, err := exec.LookPath("flowrun")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(progressWorkflow), 0o644)
	for _, noColor := range []bool{false, true} {
		master, slave := openPTY(t)
		cmd := exec.Command(bin, "run", "p.yaml", "--store", "none")
		cmd.Dir, cmd.Stderr = dir, slave
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Env = append(os.Environ(), "TERM=xterm")
		if noColor {
			cmd.Env = append(cmd.Env, "NO_COLOR=1")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var screen bytes.Buffer
		copied := make(chan struct{})
		go func() { io.Copy(&screen, master); close(copied) }()
		err := cmd.Wait()
		<-copied // EIO once the last writer is gone
		master.Close()
		if err != nil {
			t.Fatalf("run: %v\n%s", err, screen.String())
		}
		out := screen.String()
		for _, want := range []string{
			"outer ", "\r\n  inner ", // the nested map is indented under its parent
			"3/3 [", "30/30 [", "100 %",
			"\x1b[2A", // the bars are redrawn in place
			"1 retrying",
			"run ", "succeeded in", "items: outer 3, inner 29 (and 1 failed); 1 retry",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("NO_COLOR=%v: the terminal does not show %q:\n%s", noColor, want, out)
			}
		}
		if red := strings.Contains(out, "\x1b[31m1 failed"); red == noColor {
			t.Errorf("NO_COLOR=%v: red failure count shown: %v", noColor, red)
		}
		if !strings.Contains(stdout.String(), `"n": 29`) {
			t.Errorf("stdout: %s", stdout.String())
		}
	}
}

const progressStopWorkflow = `version: 1
nodes:
  outer:
    map: {over: "1..3", as: o, to: inner, with: {o: "${{ o }}"}, concurrency: 1}
  inner:
    map: {over: "1..10", as: i, to: work, with: {bad: "${{ input.o == 2 && i == 5 }}"}, concurrency: 1}
  work:
    action: fail
    with: {times: "${{ input.bad ? 1 : 0 }}"}
`

// TestProgressStoppedShort: after a failure (or Ctrl-C) the bars jumped to 100%
// ("75/75" with 36 of 125 done). They keep what really finished.
func TestProgressStoppedShort(t *testing.T) {
	bin, err := exec.LookPath("flowrun")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(progressStopWorkflow), 0o644)
	master, slave := openPTY(t)
	cmd := exec.Command(bin, "run", "p.yaml", "--store", "none")
	cmd.Dir, cmd.Stderr = dir, slave
	cmd.Env = append(os.Environ(), "TERM=xterm", "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, master); close(copied) }()
	cmd.Wait()
	<-copied
	master.Close()
	out := screen.String()
	// inner: the first instance's 10 items and 5 of the second's, of 20 started.
	if !strings.Contains(out, "15/20") {
		t.Errorf("the bars do not show 15 of 20 inner items finished:\n%s", out)
	}
	for _, wrong := range []string{"20/20", "3/3", "100 %"} {
		if strings.Contains(out, wrong) {
			t.Errorf("the bars show %q after the run stopped short:\n%s", wrong, out)
		}
	}
}

// TestProgressSpend: the top bars show the tokens per minute and the dollars of the
// run's metered calls; nested bars and runs without them show nothing.
func TestProgressSpend(t *testing.T) {
	u := runtime.LimitUsage{Calls: 10, Tokens: 30000, USD: 0.125}
	pr := &progress{usage: func() runtime.LimitUsage { return u }, started: time.Now().Add(-2 * time.Minute)}
	top, nested := &runtime.NodeStats{Depth: 0}, &runtime.NodeStats{Depth: 1}
	if got := pr.spend(top); !strings.HasPrefix(got, "  15k tok/min  $0.1") {
		t.Errorf("top bar: %q, want 15k tok/min and $0.12", got)
	}
	if got := pr.spend(nested); got != "" {
		t.Errorf("nested bar: %q", got)
	}
	u = runtime.LimitUsage{}
	if got := pr.spend(top); got != "" {
		t.Errorf("no tokens: %q", got)
	}
	if got := (&progress{}).spend(top); got != "" {
		t.Errorf("no limits: %q", got)
	}
}
