package workflows_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/natsexec"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// TestExamplesThroughNATS runs every example workflow with its action calls sent
// through NATS JetStream to one worker and to three, and checks that the output
// is byte-identical to a run in one process.
func TestExamplesThroughNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server and workers")
	}
	srv, url, err := natsexec.Embedded(t.TempDir(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	stub := httptest.NewServer(&chatStub{})
	defer stub.Close()
	env := llmEnv(stub.URL)
	getenv := func(name string) string { return env[name] }
	reg := registry(t)
	dial := func(name string) *natsexec.Conn {
		c, err := natsexec.Dial(context.Background(), url, "", name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	coord := dial("coordinator")
	defer coord.Close()
	for _, file := range topLevel(t) {
		t.Run(file, func(t *testing.T) {
			wf, err := spec.Load(file, reg)
			if err != nil {
				t.Fatal(err)
			}
			local := reg.Local(action.Env{Dir: wf.Dir, Getenv: getenv})
			want := runOutput(t, wf, runtime.Options{Getenv: getenv, Executor: local})
			for _, n := range []int{1, 3} {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{}, n)
				for i := range n {
					w := &natsexec.Worker{Conn: dial("worker"), Exec: local, Name: fmt.Sprintf("w%d", i), Slots: 8}
					go func() {
						w.Run(ctx)
						w.Conn.Close()
						done <- struct{}{}
					}()
				}
				run := fmt.Sprintf("%s-%d", wf.Name, n)
				e, err := natsexec.NewExecutor(context.Background(), coord, natsexec.Options{RunID: run, Local: local, NoWorkerWait: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				got := runOutput(t, wf, runtime.Options{RunID: run, Getenv: getenv, Executor: e, MaxWorkers: 64})
				e.Close()
				cancel()
				for range n {
					<-done
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%d workers: the output differs from one process's:\n got %s\nwant %s", n, got, want)
				}
			}
		})
	}
}

func runOutput(t *testing.T, wf *spec.Workflow, opts runtime.Options) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := runtime.Run(ctx, wf, nil, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return outputJSON(t, res)
}
