package runtime_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// The engine's own speed, without process start or loading. The whole-program
// numbers come from ../bench/run; docs/performance.md has both.
//
//	go test ./runtime -run '^$' -bench . -benchmem

// loadFile loads a workflow file of the repository, relative to this package.
func loadFile(b *testing.B, path string) *spec.Workflow {
	b.Helper()
	wf, err := spec.Load(filepath.FromSlash(path), testRegistry(b))
	if err != nil {
		b.Fatalf("load %s: %v", path, err)
	}
	return wf
}

// BenchmarkMapReduce runs bench/mapreduce.yaml (pass-node workers: no action, so it
// measures scheduling, expressions and the merge) at several sizes. "events" adds an
// observer that drops every event, the cost of --events without the JSON encoding.
func BenchmarkMapReduce(b *testing.B) {
	wf := loadFile(b, "../bench/mapreduce.yaml")
	cases := []struct {
		name string
		n    int
		obs  runtime.Observer
	}{
		{"items=1k", 1_000, nil},
		{"items=10k", 10_000, nil},
		{"items=100k", 100_000, nil},
		{"items=10k/events", 10_000, runtime.ObserverFunc(func(*runtime.Event) {})},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			inputs := map[string]any{"n": tc.n}
			opts := runtime.Options{}
			if tc.obs != nil {
				opts.Observers = []runtime.Observer{tc.obs}
			}
			for b.Loop() {
				res, err := runtime.Run(context.Background(), wf, inputs, opts)
				if err != nil {
					b.Fatal(err)
				}
				checkMapReduce(b, res, tc.n)
			}
			b.ReportMetric(float64(tc.n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// checkMapReduce checks a map-reduce result: a wrong answer fast is no benchmark.
func checkMapReduce(b *testing.B, res *runtime.Result, n int) {
	total, count := res.Output["total"], res.Output["count"]
	if want := n * (n + 1); total != want || count != n {
		b.Fatalf("total %v, count %v; want %d, %d", total, count, want, n)
	}
}

// BenchmarkSleepBound runs bench/sleep.yaml: 1,000 items each sleeping 50ms, 100 in
// flight (map concurrency 100, MaxWorkers 100). The ideal is 10 waves of 50ms, 500ms;
// efficiency is ideal/actual, 1 when scheduling costs nothing.
func BenchmarkSleepBound(b *testing.B) {
	wf := loadFile(b, "../bench/sleep.yaml")
	const n, conc, pause = 1000, 100, 50 * time.Millisecond
	inputs := map[string]any{"n": n, "concurrency": conc, "pause": pause.String()}
	ideal := time.Duration((n+conc-1)/conc) * pause
	for b.Loop() {
		res, err := runtime.Run(context.Background(), wf, inputs, runtime.Options{MaxWorkers: conc})
		if err != nil {
			b.Fatal(err)
		}
		if done := res.Output["done"]; done != n {
			b.Fatalf("done %v, want %d", done, n)
		}
	}
	b.ReportMetric(float64(ideal)*float64(b.N)/float64(b.Elapsed()), "efficiency")
}

// BenchmarkLoad loads (parses, checks and compiles) workflow files: the part of a
// CLI run before the first node.
func BenchmarkLoad(b *testing.B) {
	reg := testRegistry(b)
	for _, path := range []string{"../bench/mapreduce.yaml", "../workflows/summarize.yaml"} {
		b.Run(fmt.Sprintf("file=%s", filepath.Base(path)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := spec.Load(filepath.FromSlash(path), reg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
