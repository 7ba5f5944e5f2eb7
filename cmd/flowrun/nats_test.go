package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/flowrun/flowrun/natsexec"
)

// natsRig is a NATS server embedded in the test, a directory with the workflows of
// testdata/nats.txtar, and the flowrun processes started against them.
type natsRig struct {
	t      *testing.T
	bin    string
	dir    string
	jsDir  string
	listen string
	url    string
	srv    *server.Server
}

func newNATSRig(t *testing.T) *natsRig {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a NATS server and flowrun processes")
	}
	bin, err := exec.LookPath("flowrun")
	if err != nil {
		t.Fatal(err)
	}
	r := &natsRig{t: t, bin: bin, dir: t.TempDir(), jsDir: t.TempDir()}
	ar, err := txtar.ParseFile("testdata/nats.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		os.WriteFile(filepath.Join(r.dir, f.Name), f.Data, 0o644)
	}
	r.start("127.0.0.1:0")
	t.Cleanup(func() { r.srv.Shutdown() })
	return r
}

// start starts the server, on addr (the same port again after a restart).
func (r *natsRig) start(addr string) {
	r.t.Helper()
	srv, url, err := natsexec.Embedded(r.jsDir, addr, "")
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv, r.url, r.listen = srv, url, strings.TrimPrefix(url, "nats://")
}

// cmd makes a flowrun command in the rig's directory; output goes to files named
// after it.
func (r *natsRig) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	out, _ := os.Create(filepath.Join(r.dir, name+".out"))
	errf, _ := os.Create(filepath.Join(r.dir, name+".err"))
	cmd.Stdout, cmd.Stderr = out, errf
	return cmd
}

// proc is a worker process; exited is closed when it has.
type proc struct {
	*exec.Cmd
	exited chan struct{}
}

// worker starts a worker process that dies with the test.
func (r *natsRig) worker(name string, extra ...string) *proc {
	args := append([]string{"worker", "--nats", r.url, "--name", name, "--slots", "8", "--ack-wait", "1s", "--allow-exec"}, extra...)
	p := &proc{r.cmd(name, args...), make(chan struct{})}
	if err := p.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { p.Wait(); close(p.exited) }()
	r.t.Cleanup(func() {
		p.Process.Signal(syscall.SIGTERM)
		<-p.exited
	})
	return p
}

func (r *natsRig) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	return string(b)
}

// waitFor polls cond until it holds, failing the test after d.
func (r *natsRig) waitFor(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("waited %s for %s", d, what)
		}
	}
}

// calls counts how often each item of work.yaml ran (calls.log).
func (r *natsRig) calls() map[string]int {
	n := map[string]int{}
	for _, l := range strings.Fields(r.read("calls.log")) {
		n[l]++
	}
	return n
}

// want is work.yaml's output, from a run in one process.
func (r *natsRig) want() []byte {
	r.t.Helper()
	out, err := exec.Command(r.bin, "run", filepath.Join(r.dir, "work.yaml"), "--store", "none", "--allow-exec", "-i", "n=40").Output()
	if err != nil {
		r.t.Fatal(err)
	}
	os.Remove(filepath.Join(r.dir, "calls.log"))
	return out
}

// TestNATSWorkerKilled: a worker killed holding calls; they go to another worker
// once the ack wait passes, and every item is merged exactly once.
func TestNATSWorkerKilled(t *testing.T) {
	r := newNATSRig(t)
	want := r.want()
	run := r.cmd("run", "run", "work.yaml", "--nats", r.url, "--run-id", "k", "--allow-exec", "--events", "ev.jsonl")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	a := r.worker("a")
	r.waitFor("worker a to run calls", 20*time.Second, func() bool { return len(r.calls()) >= 4 })
	a.Process.Signal(syscall.SIGKILL)
	r.worker("b")
	if err := run.Wait(); err != nil {
		t.Fatalf("the run: %v\n%s", err, r.read("run.err"))
	}
	if got := r.read("run.out"); got != string(want) {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	calls := r.calls()
	again := 0
	for i := 1; i <= 40; i++ {
		n := calls[strconv.Itoa(i)]
		if n == 0 {
			t.Errorf("item %d never ran", i)
		}
		again += max(n-1, 0)
	}
	if again == 0 || again > 8 {
		t.Errorf("%d calls ran twice; want some (worker a held them), at most its 8 slots", again)
	}
	journal := r.read(".flowrun/runs/k/journal.log")
	if n := strings.Count(journal, `{"i":`); n != 40 {
		t.Errorf("%d items journalled, want each of the 40 once", n)
	}
}

// TestNATSCoordinatorKilled: the coordinator killed mid-run; the worker finishes
// what was sent, and `flowrun resume --nats` takes those results instead of
// sending the calls again, and ends with the same output.
func TestNATSCoordinatorKilled(t *testing.T) {
	r := newNATSRig(t)
	want := r.want()
	r.worker("w")
	run := r.cmd("run", "run", "work.yaml", "--nats", r.url, "--run-id", "k", "--allow-exec")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitFor("calls to run", 20*time.Second, func() bool { return len(r.calls()) >= 10 })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	r.waitFor("the worker to finish what was sent", 30*time.Second, func() bool { return len(r.calls()) == 40 })
	resume := r.cmd("resume", "resume", "k", "--nats", r.url, "--allow-exec")
	if err := resume.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, r.read("resume.err"))
	}
	if got := r.read("resume.out"); got != string(want) {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	for item, n := range r.calls() {
		if n != 1 {
			t.Errorf("item %s ran %d times; the resume should have taken its result", item, n)
		}
	}
}

// TestNATSServerRestarted: the NATS server stops mid-run and starts again on its
// store; the run goes on (or fails clearly, and a resume ends it) with the same
// output.
func TestNATSServerRestarted(t *testing.T) {
	r := newNATSRig(t)
	want := r.want()
	r.worker("w")
	run := r.cmd("run", "run", "work.yaml", "--nats", r.url, "--run-id", "k", "--allow-exec")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitFor("calls to run", 20*time.Second, func() bool { return len(r.calls()) >= 10 })
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	r.start(r.listen)
	out := "run"
	if err := run.Wait(); err != nil {
		if !strings.Contains(r.read("run.err"), "continue with: flowrun resume k") {
			t.Fatalf("the run failed without saying how to go on: %v\n%s", err, r.read("run.err"))
		}
		out = "resume"
		if err := r.cmd(out, "resume", "k", "--nats", r.url, "--allow-exec").Run(); err != nil {
			t.Fatalf("resume: %v\n%s", err, r.read("resume.err"))
		}
	}
	if got := r.read(out + ".out"); got != string(want) {
		t.Fatalf("output:\n%s\nwant:\n%s\n%s", got, want, r.read(out+".err"))
	}
}

// TestNATSLostCall: a call that kills every worker that takes it fails with kind
// lost after the most deliveries, and on_error handles it like any failure.
func TestNATSLostCall(t *testing.T) {
	r := newNATSRig(t)
	run := r.cmd("run", "run", "poison.yaml", "--nats", r.url, "--store", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	var err error
	for i := 0; ; i++ { // a supervisor: a worker again whenever one dies
		w := r.worker("w" + strconv.Itoa(i))
		select {
		case err = <-exited:
		case <-w.exited:
			continue
		case <-time.After(time.Minute):
			t.Fatal("the run does not end")
		}
		break
	}
	if err != nil {
		t.Fatalf("the run: %v\n%s", err, r.read("run.err"))
	}
	if got := r.read("run.out"); !strings.Contains(got, `"lost"`) || strings.Count(got, ",") != 5 {
		t.Errorf("output %s, want items 1-6 with item 3 lost", got)
	}
	if !strings.Contains(r.read("run.err"), "lost: the task was delivered 5 times and no worker finished it") {
		t.Errorf("the report does not say the call was lost:\n%s", r.read("run.err"))
	}
}

// TestNATSNoWorkers: with no worker, the coordinator says so and fails the calls
// instead of hanging.
func TestNATSNoWorkers(t *testing.T) {
	r := newNATSRig(t)
	run := r.cmd("run", "run", "work.yaml", "--nats", r.url, "--store", "none", "--nats-wait", "5s", "--allow-exec")
	err := run.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("exit %v, want %d", err, exitFailed)
	}
	stderr := r.read("run.err")
	if !strings.Contains(stderr, "no worker served pool default for 5s: start one with `flowrun worker --nats URL --pool default`") {
		t.Errorf("stderr:\n%s", stderr)
	}
	// Said once after a few seconds, not once per waiting call.
	if n := strings.Count(stderr, "[warn] no worker serves pool default: start one with `flowrun worker --nats URL --pool default`"); n != 1 {
		t.Errorf("the warning came %d times, want once:\n%s", n, stderr)
	}
}

// TestNATSDebianServer runs a workflow through the nats-server of the machine
// (Debian's 2.9 package, which .ci/run installs), to check that flowrun works with
// the oldest server it claims.
func TestNATSDebianServer(t *testing.T) {
	path, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("SKIPPED: no nats-server on PATH (apt-get install nats-server); the 2.9 compatibility is not checked")
	}
	r := newNATSRig(t)
	want := r.want()
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	srv := exec.Command(path, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", t.TempDir(), "-l", filepath.Join(r.dir, "server.log"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	var url string
	r.waitFor("nats-server to listen", 10*time.Second, func() bool {
		log := r.read("server.log")
		i := strings.Index(log, "Listening for client connections on ")
		if i < 0 {
			return false
		}
		url = "nats://" + strings.Fields(log[i+len("Listening for client connections on "):])[0]
		return true
	})
	run := r.cmd("run", "run", "work.yaml", "--nats", url, "--store", "none", "--worker-slots", "8", "--allow-exec")
	if err := run.Run(); err != nil {
		t.Fatalf("the run: %v\n%s", err, r.read("run.err"))
	}
	if got := r.read("run.out"); got != string(want) {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

// TestNATSWorkerFlags: a worker obeys its own flags, not the coordinator's: exec
// is refused on a worker started without --allow-exec, though the run allows it.
func TestNATSWorkerFlags(t *testing.T) {
	r := newNATSRig(t)
	w := r.cmd("strict", "worker", "--nats", r.url, "--name", "strict", "--slots", "4")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		w.Process.Signal(syscall.SIGTERM)
		w.Wait()
	}()
	run := r.cmd("run", "run", "work.yaml", "--nats", r.url, "--store", "none", "--allow-exec", "-i", "n=3")
	err := run.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("exit %v, want %d\n%s", err, exitFailed, r.read("run.err"))
	}
	if !strings.Contains(r.read("run.err"), "exec is disabled: pass --allow-exec to flowrun worker to let this workflow run programs") {
		t.Errorf("the report does not say the worker refused exec:\n%s", r.read("run.err"))
	}
	if strings.TrimSpace(r.read("calls.log")) != "" {
		t.Errorf("a program ran: calls.log %q", r.read("calls.log"))
	}
}
