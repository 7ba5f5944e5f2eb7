package natsexec_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/natsexec"
)

// cluster is an embedded server, a connection to it, and a worker.
type cluster struct {
	conn   *natsexec.Conn
	url    string
	reg    *action.Registry
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, extra ...*action.Spec) *cluster {
	t.Helper()
	srv, url, err := natsexec.Embedded(t.TempDir(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	reg, err := action.NewRegistry(append(builtins.All(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{url: url, reg: reg, done: make(chan error, 1)}
	if c.conn, err = natsexec.Dial(context.Background(), url, "", "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.conn.Close)
	wconn, err := natsexec.Dial(context.Background(), url, "", "worker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wconn.Close)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	slots := 4
	if _, isBench := t.(*testing.B); isBench {
		slots = 128
	}
	w := &natsexec.Worker{Conn: wconn, Exec: reg.Local(action.Env{Dir: t.TempDir()}), Name: "w1", Slots: slots, Version: "test"}
	go func() { c.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *cluster) executor(t testing.TB, run string, epoch int) *natsexec.Executor {
	t.Helper()
	e, err := natsexec.NewExecutor(context.Background(), c.conn, natsexec.Options{RunID: run, Epoch: epoch, Name: "coordinator",
		Local: c.reg.Local(action.Env{}), NoWorkerWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func call(run, action_ string, params action.Params, key string) *action.Call {
	return &action.Call{Action: action_, Params: params, RunID: run, Node: "n", Attempt: 1, Key: run + "/" + key}
}

func TestRoundTrip(t *testing.T) {
	c := start(t)
	e := c.executor(t, "r1", 0)
	defer e.Close()
	ctx := context.Background()
	out, err := e.Execute(ctx, call("r1", "text.count", action.Params{"text": "a b c"}, "@1:x"))
	if err != nil || out["words"] != 3 {
		t.Fatalf("text.count: %v, %v", out, err)
	}
	big := strings.Repeat("word ", 100_000) // 500 KB: through the object store, both ways
	out, err = e.Execute(ctx, call("r1", "text.join", action.Params{"parts": []any{big, "end"}, "separator": "|"}, "@2:big"))
	if err != nil || len(out["text"].(string)) != len(big)+4 {
		t.Fatalf("a big payload: %v", err)
	}
	_, err = e.Execute(ctx, call("r1", "file.read", action.Params{"path": "missing.txt", "format": "text"}, "@3:read"))
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent || !strings.Contains(ae.Msg, "missing.txt") {
		t.Fatalf("a failed call: %#v", err)
	}
	local := call("r1", "text.count", action.Params{"text": "x"}, "@4:local")
	local.Pool = natsexec.LocalPool
	if out, err := e.Execute(ctx, local); err != nil || out["words"] != 1 {
		t.Fatalf("pool local: %v, %v", out, err)
	}
	infos, err := natsexec.Workers(ctx, c.conn)
	if err != nil || len(infos) != 1 || infos[0].Name != "w1" || infos[0].Slots != 4 || infos[0].Pools[0] != "default" {
		t.Fatalf("workers: %+v, %v", infos, err)
	}
}

func TestTimeoutAndPanicOnTheWorker(t *testing.T) {
	slow := &action.Spec{Name: "test.slow", Summary: "s", Func: func(ctx context.Context, c *action.Call, _ *action.Env) (map[string]any, error) {
		if c.Params.Bool("panic") {
			panic("boom")
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}, Params: []action.Param{{Name: "panic", Type: action.Boolean}}}
	c := start(t, slow)
	e := c.executor(t, "r2", 0)
	defer e.Close()
	cl := call("r2", "test.slow", action.Params{}, "@1:slow")
	cl.Timeout = 200 * time.Millisecond
	_, err := e.Execute(context.Background(), cl)
	var ae *action.Error
	if !errors.As(err, &ae) || ae.Kind != "timeout" || ae.Msg != "timed out after 200ms" {
		t.Fatalf("timeout: %#v", err)
	}
	_, err = e.Execute(context.Background(), call("r2", "test.slow", action.Params{"panic": true}, "@2:panic"))
	if !errors.As(err, &ae) || ae.Kind != "panic" || !strings.Contains(ae.Msg, "action panicked: boom") {
		t.Fatalf("panic: %#v", err)
	}
}

func TestNoWorkerForThePool(t *testing.T) {
	c := start(t)
	e := c.executor(t, "r3", 0)
	defer e.Close()
	cl := call("r3", "text.count", action.Params{"text": "x"}, "@1:x")
	cl.Pool = "gpu"
	_, err := e.Execute(context.Background(), cl)
	if err == nil || !strings.Contains(err.Error(), "no worker served pool gpu for 5s: start one with `flowrun worker --nats URL --pool gpu`") {
		t.Fatalf("err = %v", err)
	}
}

// TestResultsOfAnEarlierEpoch: a resumed coordinator (the next epoch) takes a result
// a worker sent while it was away instead of sending the call again.
func TestResultsOfAnEarlierEpoch(t *testing.T) {
	c := start(t)
	e := c.executor(t, "r4", 0)
	cl := call("r4", "text.count", action.Params{"text": "a b"}, "@1:x")
	if _, err := e.Execute(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = c.executor(t, "r4", 1)
	defer e.Close()
	c.cancel() // no worker from now on: only a kept result can answer
	<-c.done
	c.done <- nil
	out, err := e.Execute(context.Background(), cl)
	if err != nil || out["words"] != 2 {
		t.Fatalf("the earlier epoch's result: %v, %v", out, err)
	}
	changed := call("r4", "text.count", action.Params{"text": "other"}, "@1:x")
	changed.Attempt = 1
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.Execute(ctx, changed); err == nil {
		t.Error("a result was reused for other parameters")
	}
}

// TestResend: an attempt sent again after a rate limit's pause is another task,
// not a duplicate the server drops (which would leave the call waiting forever).
func TestResend(t *testing.T) {
	c := start(t)
	e := c.executor(t, "r6", 0)
	defer e.Close()
	cl := call("r6", "text.count", action.Params{"text": "a b"}, "@1:x")
	for resend := range 3 {
		cl.Resend = resend
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := e.Execute(ctx, cl)
		cancel()
		if err != nil || out["words"] != 2 {
			t.Fatalf("sent the %d time(s) more: %v, %v", resend, out, err)
		}
	}
}
