package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestInterrupt runs the real flowrun process (testscript.Main put it on PATH),
// interrupts it while items are in flight, and checks that it stops at once with
// exit code 130 and says so.
func TestInterrupt(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			bin, err := exec.LookPath("flowrun")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "slow.yaml"), []byte(`version: 1
nodes:
  fan:
    map: {over: "1..8", to: wait, concurrency: 4}
  wait:
    action: sleep
    with: {duration: 1m}
`), 0o644)
			events := filepath.Join(dir, "events.jsonl")
			cmd := exec.Command(bin, "run", "slow.yaml", "--events", events)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				b, _ := os.ReadFile(events)
				if bytes.Count(b, []byte(`"item.started"`)) == 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no items started; stderr:\n%s", stderr.String())
				}
			}
			cmd.Process.Signal(sig)
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Fatalf("exit %v, want %d; stderr:\n%s", err, exitInterrupted, stderr.String())
			}
			for _, want := range []string{
				"stopping; finished items are kept (press Ctrl-C again to quit at once)",
				"flowrun: run interrupted: interrupted by " + sig.String(),
			} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			b, _ := os.ReadFile(events)
			if !bytes.Contains(b, []byte(`"status":"interrupted"`)) {
				t.Errorf("the events do not end with an interrupted run:\n%s", b)
			}
		})
	}
}

// TestSecondInterrupt checks that the first signal cancels the run and the second
// quits at once.
func TestSecondInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signals := make(chan os.Signal, 2)
		ctx, cancel := context.WithCancelCause(context.Background())
		var stderr bytes.Buffer
		exited := make(chan int, 1)
		go interrupts(signals, cancel, &stderr, func(code int) { exited <- code })
		signals <- os.Interrupt
		synctest.Wait() // the handler has taken the signal and waits for another
		if cause := context.Cause(ctx); cause == nil || cause.Error() != "interrupted by interrupt" {
			t.Errorf("cause %v, want the interruption", cause)
		}
		select {
		case <-exited:
			t.Fatal("exited at the first signal")
		default:
		}
		signals <- os.Interrupt
		if code := <-exited; code != exitInterrupted {
			t.Errorf("exit code %d, want %d", code, exitInterrupted)
		}
		if !strings.Contains(stderr.String(), "interrupt again: quitting") {
			t.Errorf("stderr: %q", stderr.String())
		}
	})
}

// TestInterruptLeavesNoPrograms: Ctrl-C or SIGTERM sometimes left exec's programs
// running (4 of 40 runs): the process exited before their process groups were
// killed. flowrun now waits for the calls in flight to return.
func TestInterruptLeavesNoPrograms(t *testing.T) {
	bin, err := exec.LookPath("flowrun")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "progs.yaml"), []byte(`version: 1
nodes:
  fan:
    map: {over: "1..4", to: wait, concurrency: 4}
  wait:
    action: exec
    with: {argv: [sh, -c, "sleep 120 & echo $! > pid.${{ input.item }}; wait"]}
`), 0o644)
		cmd := exec.Command(bin, "run", "progs.yaml", "--allow-exec", "--store", "none")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var pids []string
		for deadline := time.Now().Add(20 * time.Second); len(pids) < 4; time.Sleep(20 * time.Millisecond) {
			pids = pids[:0]
			for i := 1; i <= 4; i++ {
				if b, err := os.ReadFile(filepath.Join(dir, "pid."+string(rune('0'+i)))); err == nil && len(b) > 1 {
					pids = append(pids, strings.TrimSpace(string(b)))
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: the programs did not start", round)
			}
		}
		sig := []os.Signal{os.Interrupt, syscall.SIGTERM}[round%2]
		cmd.Process.Signal(sig)
		cmd.Wait()
		// When flowrun has exited, every program it started is gone (a zombie is
		// gone too: its parent, killed, left it to init).
		for _, pid := range pids {
			// A SIGKILLed process may take a moment to die: wait a little.
			for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(pid) {
				t.Errorf("round %d (%v): program %s still runs after flowrun exited", round, sig, pid)
				syscall.Kill(atoi(pid), syscall.SIGKILL)
			}
		}
	}
}

// alive reports whether a process runs (and is not a zombie).
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
