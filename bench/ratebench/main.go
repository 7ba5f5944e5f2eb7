// Command ratebench measures flowrun's shared rate limits in real time against an
// OpenAI-compatible stub that enforces its own requests per minute (answering 429
// with Retry-After above it), as docs/limits.md and docs/performance.md report:
//
//	go run ./bench/ratebench                 2,000 calls, both cases (about 7 minutes)
//	go run ./bench/ratebench -calls 500      shorter
//
// "match": requests 600/m against a stub of 600/m: there should be no 429, and the
// achieved rate within 5% of the limit. "too high": requests 1200/m against the same
// stub: the limit adapts, the 429s stop within seconds of the first, and every call
// succeeds.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowrun/flowrun/internal/llmstub"
)

const workflow = `version: 1
state:
  n: {type: integer, default: 100}
  rpm: {type: string, default: 600/m}
  replies: {type: integer, reducer: sum}
limits:
  rate:
    api: {requests: "%s"}
nodes:
  fan:
    map: {over: "1..state.n", to: ask, concurrency: 64}
  ask:
    action: llm.chat
    rate: api
    with: {prompt: "item ${{ input.item }}", max_tokens: 5}
    update: {replies: 1}
`

func main() {
	calls := flag.Int("calls", 2000, "calls per case")
	rpm := flag.Int("rpm", 600, "the stub's requests per minute")
	flag.Parse()
	if err := run(*calls, *rpm); err != nil {
		fmt.Fprintln(os.Stderr, "ratebench:", err)
		os.Exit(1)
	}
}

func run(calls, rpm int) error {
	tmp, err := os.MkdirTemp("", "ratebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "flowrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flowrun")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building flowrun (run it from the repository's root): %w", err)
	}
	fmt.Printf("%d calls per case; the stub allows %d requests/minute (a second's burst), 429 with Retry-After: 1 above\n\n", calls, rpm)
	fmt.Printf("%-9s %9s %7s %6s %12s %10s  %s\n", "case", "limit", "calls", "429s", "rate/min", "time", "")
	for _, c := range []struct {
		name  string
		limit int
	}{{"match", rpm}, {"too high", 2 * rpm}} {
		srv, err := llmstub.Start(llmstub.Options{RPM: rpm, RetryAfter: "1", CompletionTokens: 5})
		if err != nil {
			return err
		}
		wf := filepath.Join(tmp, "wf.yaml")
		if err := os.WriteFile(wf, fmt.Appendf(nil, workflow, strconv.Itoa(c.limit)+"/m"), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(bin, "run", wf, "--store", "none", "--progress", "never", "--max-workers", "64", "-i", "n="+strconv.Itoa(calls))
		cmd.Env = append(os.Environ(), "FLOWRUN_LLM_BASE_URL="+srv.URL, "FLOWRUN_LLM_MODEL=stub")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		took := time.Since(start)
		st := srv.Stats()
		srv.Close()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", c.name, err, stderr.String())
		}
		if !strings.Contains(string(out), fmt.Sprintf(`"replies": %d`, calls)) {
			return fmt.Errorf("%s: not every call succeeded: %s", c.name, out)
		}
		rate := float64(st.Calls-1) / st.Last.Sub(st.First).Minutes()
		note := fmt.Sprintf("%.1f%% of the limit", 100*rate/float64(c.limit))
		if st.Limited > 0 {
			note = fmt.Sprintf("429s from %s to %s after the start; %.1f%% of the stub's rate",
				st.FirstLimited.Sub(start).Round(100*time.Millisecond), st.LastLimited.Sub(start).Round(100*time.Millisecond), 100*rate/float64(rpm))
		}
		fmt.Printf("%-9s %7d/m %7d %6d %12.1f %10s  %s\n", c.name, c.limit, st.Calls, st.Limited, rate, took.Round(100*time.Millisecond), note)
	}
	return nil
}
