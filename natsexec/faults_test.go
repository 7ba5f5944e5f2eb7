package natsexec

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/nats-io/nats-server/v2/server"
)

// The bad inputs of issue 12: each a clear error with the fix, never a hang.

func TestServerVersions(t *testing.T) {
	for v, ok := range map[string]bool{"2.9.0": true, "2.10.22": true, "v2.9.10": true, "3.0.0": true,
		"2.8.4": false, "2.2.0": false, "1.4.1": false, "": true} {
		err := checkVersion(v)
		if (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v", v, err)
		}
		if err != nil && !strings.Contains(err.Error(), "flowrun needs 2.9 or later (it uses DiscardNewPerSubject): upgrade the server") {
			t.Errorf("checkVersion(%q) = %v", v, err)
		}
	}
}

func TestUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, "nats://127.0.0.1:1", "", "test")
	if err == nil || !strings.HasPrefix(err.Error(), "cannot reach the NATS server at nats://127.0.0.1:1: ") ||
		!strings.HasSuffix(err.Error(), "start one (nats-server -js), or run with --nats embedded") {
		t.Fatalf("err = %v", err)
	}
}

func TestServerWithoutJetStream(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the server did not start")
	}
	_, err = Dial(context.Background(), s.ClientURL(), "", "test")
	if err == nil || !strings.Contains(err.Error(), "has no JetStream: start it with -js (or a jetstream {} block in its configuration)") {
		t.Fatalf("err = %v", err)
	}
}

// rig is a server with the given max_payload, and a worker.
func rig(t *testing.T, maxPayload int32) (*Conn, *action.Registry) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the server did not start")
	}
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(name string) *Conn {
		c, err := Dial(context.Background(), s.ClientURL(), "", name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	conn := dial("coordinator")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := &Worker{Conn: dial("worker"), Exec: reg.Local(action.Env{Dir: t.TempDir()}), Name: "w", Slots: 4, Version: "test"}
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return conn, reg
}

// TestSmallMaxPayload: on a server whose max_payload is below flowrun's inline
// limit, what does not fit in a message goes through the object store.
func TestSmallMaxPayload(t *testing.T) {
	conn, reg := rig(t, 16<<10)
	e, err := NewExecutor(context.Background(), conn, Options{RunID: "p", Name: "c", Local: reg.Local(action.Env{})})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, n := range []int{10, 3000, 20_000} { // 50 B, 15 KB, 100 KB
		text := strings.Repeat("word ", n)
		out, err := e.Execute(context.Background(), &action.Call{Action: "text.join", RunID: "p", Node: "n", Attempt: 1,
			Key: "p/" + strings.Repeat("k", n%7+1), Params: action.Params{"parts": []any{text, "end"}, "separator": "|"}})
		if err != nil || len(out["text"].(string)) != len(text)+4 {
			t.Fatalf("%d words: %v", n, err)
		}
	}
}

// TestIncompatibleWorker: a worker refuses a batch of another protocol version,
// and says to run the same version on both sides.
func TestIncompatibleWorker(t *testing.T) {
	conn, _ := rig(t, 0)
	b := appendBatch(nil, &batch{V: 7, ID: "x", Run: "v", Tasks: []*task{{ID: "v/k/0/1", Hash: "h",
		Call: &action.Call{Action: "text.count", Params: action.Params{"text": "a"}, Attempt: 1, Key: "v/k"}}}})
	sub, err := conn.NC.SubscribeSync(resultsOf("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.JS.Publish(context.Background(), taskSubject(DefaultPool, "v"), b); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	results, err := readResults(msg.Data)
	if err != nil || len(results) != 1 || results[0].Error == nil {
		t.Fatalf("results %+v, %v", results, err)
	}
	if want := "worker w speaks protocol 1 and the coordinator 7: run the same flowrun version on both"; results[0].Error.Msg != want || !results[0].Error.Permanent {
		t.Fatalf("error %+v, want %q", results[0].Error, want)
	}
}

// TestLease: a second coordinator of a running run is refused; a resumed one (a
// later epoch, which holds the run's store, so the first is gone) takes over.
func TestLease(t *testing.T) {
	conn, reg := rig(t, 0)
	open := func(name string, epoch int) (*Executor, error) {
		return NewExecutor(context.Background(), conn, Options{RunID: "l", Epoch: epoch, Name: name, Local: reg.Local(action.Env{})})
	}
	first, err := open("first", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := open("second", 0); err == nil || err.Error() != "run l is coordinated by first (through the same NATS server); wait for it to end, or stop it" {
		t.Fatalf("a second coordinator: %v", err)
	}
	resumed, err := open("resumed", 1) // first never closed: as if killed
	if err != nil {
		t.Fatalf("the resumed coordinator: %v", err)
	}
	resumed.Close()
	again, err := open("again", 1) // the lease was released
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}

// TestEmbeddedToken: the embedded server refuses a client without its token, and
// says how to give it; the token lasts across restarts of the same store.
func TestEmbeddedToken(t *testing.T) {
	dir := t.TempDir()
	token, err := Token(dir)
	if err != nil || len(token) < 16 {
		t.Fatalf("token %q, %v", token, err)
	}
	if again, _ := Token(dir); again != token {
		t.Errorf("the token changed: %q, then %q", token, again)
	}
	s, url, err := Embedded(dir, "127.0.0.1:0", token)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if !strings.HasPrefix(url, "nats://"+token+"@127.0.0.1:") {
		t.Fatalf("url %s does not carry the token", url)
	}
	bare := "nats://" + url[strings.LastIndexByte(url, '@')+1:]
	_, err = Dial(context.Background(), bare, "", "test")
	if err == nil || !strings.Contains(err.Error(), "refused the connection (authorization violation): give the URL with its credentials") {
		t.Fatalf("without the token: %v", err)
	}
	_, err = Dial(context.Background(), "nats://wrong@"+url[strings.LastIndexByte(url, '@')+1:], "", "test")
	if err == nil || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "nats://***@127.0.0.1:") {
		t.Fatalf("with a wrong token: %v (the message should hide it)", err)
	}
	c, err := Dial(context.Background(), url, "", "test")
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	c.Close()
}
