package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowrun/flowrun/runtime"
)

// writeSummary prints a short account of a run on stderr: how it ended and how
// long it took, items by map node, failures, retries, and the slowest node.
func writeSummary(w io.Writer, id, status string, res *runtime.Result) {
	if res == nil {
		return
	}
	fmt.Fprintf(w, "flowrun: run %s %s in %s", id, status, roundDuration(res.Duration))
	var maps []string
	var slowest *runtime.NodeStats
	if res.Stats != nil {
		for _, ns := range res.Stats.Nodes() {
			if ns.Kind == "map" || ns.Kind == "parallel" {
				s := fmt.Sprintf("%s %d", ns.Node, ns.Done.Load())
				if f := ns.Failed.Load(); f > 0 {
					s += fmt.Sprintf(" (and %d failed)", f)
				}
				maps = append(maps, s)
			}
			if ns.Depth == 0 && (slowest == nil || ns.Busy.Load() > slowest.Busy.Load()) {
				slowest = ns
			}
		}
	}
	if len(maps) > 0 {
		fmt.Fprintf(w, "; items: %s", strings.Join(maps, ", "))
	}
	if n := res.Stats.Retries.Load(); n > 0 {
		fmt.Fprintf(w, "; %d %s", n, plural(int(n), "retry", "retries"))
	}
	if slowest != nil && len(res.Stats.Nodes()) > 1 {
		fmt.Fprintf(w, "; slowest node: %s (%s)", slowest.Node, roundDuration(time.Duration(slowest.Busy.Load())))
	}
	fmt.Fprintln(w)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
