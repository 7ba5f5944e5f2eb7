package natsexec_test

import (
	"context"
	"testing"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/natsexec"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// BenchmarkPassThrough sends calls of a trivial action through an embedded server
// to an in-process worker with 128 slots: the cost of the NATS round trip per call
// (the whole-program numbers, with separate processes, come from bench/nats).
func BenchmarkPassThrough(b *testing.B) {
	c := start(b)
	wf, err := spec.Parse("pass.yaml", []byte(`version: 1
state:
  n: {type: integer, default: 5000}
  words: {type: integer, reducer: sum}
nodes:
  fan:
    map: {over: "1..state.n", to: count}
  count:
    action: text.count
    with: {text: "x"}
    update: {words: "${{ output.words }}"}
`), c.reg)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		n++
		run := "bench" + string(rune('a'+n%26)) + string(rune('a'+n/26%26))
		e, err := natsexec.NewExecutor(context.Background(), c.conn, natsexec.Options{RunID: run, Local: c.reg.Local(action.Env{})})
		if err != nil {
			b.Fatal(err)
		}
		res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{RunID: run, Executor: e, MaxWorkers: 1024})
		if err != nil || res.Output["words"] != 5000 {
			b.Fatal(err, res.Output)
		}
		e.Purge(context.Background())
		e.Close()
	}
	b.ReportMetric(5000*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}
