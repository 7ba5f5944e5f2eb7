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
