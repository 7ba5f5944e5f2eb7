// Command flowrun runs declarative YAML workflows built on the orchestrator-worker
// (map-reduce) pattern. See README.md and docs/.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "\nflowrun: %v: stopping; finished items are kept (press Ctrl-C again to quit at once)\n", sig)
		cancel(fmt.Errorf("interrupted by %v", sig))
		<-signals
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}
