// Command flowrun runs declarative YAML workflows built on the orchestrator-worker
// (map-reduce) pattern. See README.md and docs/.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go interrupts(signals, cancel, os.Stderr, os.Exit)
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// interrupts cancels the run at the first signal, so that in-flight actions stop
// and finished work is kept, and exits at once at the second.
func interrupts(signals <-chan os.Signal, cancel context.CancelCauseFunc, stderr io.Writer, exit func(int)) {
	sig := <-signals
	fmt.Fprintf(stderr, "\nflowrun: %v: stopping; finished items are kept (press Ctrl-C again to quit at once)\n", sig)
	cancel(fmt.Errorf("interrupted by %v", sig))
	sig = <-signals
	fmt.Fprintf(stderr, "flowrun: %v again: quitting\n", sig)
	exit(exitInterrupted)
}
