package natsexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// Worker takes the tasks of some pools and runs them with a local executor, whose
// policy (exec, paths) is the worker's own: nothing in a task widens it.
type Worker struct {
	Conn *Conn
	// Exec runs the calls: Registry.Local with the worker's policy.
	Exec action.Executor
	// Name identifies the worker in `flowrun workers`.
	Name string
	// Pools are the pools it takes tasks of; empty means DefaultPool.
	Pools []string
	// Slots bounds the tasks it runs at once (0: 16).
	Slots int
	// Version is the program's version, shown by `flowrun workers`.
	Version string
	// AckWait is how long the server waits for a sign of life of a task a worker
	// of the pool holds before it delivers it again (0: DefaultAckWait). The last
	// worker of a pool to start sets it for the pool: give all the same.
	AckWait time.Duration
	// Log receives what the worker has to say (nil: nothing).
	Log *slog.Logger

	slots   chan struct{}
	held    atomic.Int64  // calls of fetched batches not yet run
	freed   chan struct{} // a call ended: fetch more
	busy    atomic.Int64  // calls running
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // task id → its attempt's cancel
	wg      sync.WaitGroup
}

// Info is what a live worker says of itself.
type Info struct {
	Name     string    `json:"name"`
	Pools    []string  `json:"pools"`
	Slots    int       `json:"slots"`
	Busy     int64     `json:"busy"`
	Version  string    `json:"version"`
	Protocol int       `json:"protocol"`
	Started  time.Time `json:"started"`
	Seen     time.Time `json:"seen"`
}

// Run takes tasks until ctx is done; then it takes no more, finishes the tasks it
// holds (their results are sent), and returns.
func (w *Worker) Run(ctx context.Context) error {
	if w.Slots <= 0 {
		w.Slots = 16
	}
	if len(w.Pools) == 0 {
		w.Pools = []string{DefaultPool}
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.AckWait <= 0 {
		w.AckWait = DefaultAckWait
	}
	w.slots, w.freed = make(chan struct{}, w.Slots), make(chan struct{}, 1)
	w.running = map[string]context.CancelCauseFunc{}
	cancels, err := w.Conn.NC.Subscribe(cancelSubject+".>", w.cancelled)
	if err != nil {
		return err
	}
	defer cancels.Unsubscribe()
	info := Info{Name: w.Name, Pools: w.Pools, Slots: w.Slots, Version: w.Version, Protocol: Protocol, Started: time.Now().UTC()}
	w.announce(ctx, &info)
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		t := time.NewTicker(workerTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.announce(ctx, &info)
			case <-ctx.Done():
				return
			}
		}
	}()
	var loops sync.WaitGroup
	errs := make(chan error, len(w.Pools))
	for _, pool := range w.Pools {
		cons, err := w.Conn.poolConsumer(ctx, pool, w.AckWait)
		if err != nil {
			return err
		}
		loops.Add(1)
		go func() {
			defer loops.Done()
			errs <- w.take(ctx, pool, cons)
		}()
	}
	loops.Wait()
	w.wg.Wait() // finish what it holds
	<-beats
	w.Conn.workers.Delete(context.Background(), token(w.Name))
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// announce puts the worker's record in the workers bucket.
func (w *Worker) announce(ctx context.Context, info *Info) {
	info.Busy, info.Seen = w.busy.Load(), time.Now().UTC()
	b, _ := json.Marshal(info)
	if _, err := w.Conn.workers.Put(ctx, token(w.Name), b); err != nil && ctx.Err() == nil {
		w.Log.Warn("could not announce the worker", "error", err)
	}
}

// take fetches a pool's batches while the worker holds fewer calls than it has
// slots, until ctx is done: a batch per free slot (the coordinator keeps the work
// of a batch small, so that one worker does not hoard what others could run).
func (w *Worker) take(ctx context.Context, pool string, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		free := int64(w.Slots) - w.held.Load()
		if free <= 0 {
			select {
			case <-w.freed:
			case <-ctx.Done():
			}
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a stop ends the wait at once
		batch, err := cons.Fetch(int(free), jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				b, err := w.read(ctx, msg)
				if err != nil {
					w.Log.Error("a task that cannot be read: dropped", "error", err)
					msg.Term()
					continue
				}
				w.held.Add(int64(len(b.Tasks)))
				w.wg.Add(1)
				go w.handle(msg, b)
			}
			err = batch.Error()
		}
		cancel()
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			w.Log.Warn("fetching tasks", "pool", pool, "error", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

// read decodes a batch.
func (w *Worker) read(ctx context.Context, msg jetstream.Msg) (*batch, error) {
	data, err := w.Conn.payload(ctx, msg.Headers(), msg.Data())
	if err != nil {
		return nil, err
	}
	return readBatch(data)
}

// handle runs the calls of one batch as slots free up, then sends their results
// together and acknowledges the batch.
func (w *Worker) handle(msg jetstream.Msg, b *batch) {
	defer w.wg.Done()
	ctx := context.Background() // a worker that is told to stop finishes what it holds
	stop := w.heartbeat(msg)
	defer stop()
	results := make([]*result, len(b.Tasks))
	var calls sync.WaitGroup
	for i, t := range b.Tasks {
		w.slots <- struct{}{}
		calls.Add(1)
		go func() {
			defer calls.Done()
			results[i] = w.run(ctx, b, t)
			<-w.slots
			w.held.Add(-1)
			select {
			case w.freed <- struct{}{}:
			default:
			}
		}()
	}
	calls.Wait()
	if err := w.send(ctx, b, results); err != nil {
		w.Log.Error("sending results", "batch", b.ID, "error", err)
		msg.Nak() // its calls run again, here or elsewhere
		return
	}
	msg.Ack()
}

// run runs one task of a batch and makes its result.
func (w *Worker) run(ctx context.Context, b *batch, t *task) *result {
	w.busy.Add(1)
	defer w.busy.Add(-1)
	res := &result{V: Protocol, ID: t.ID, Hash: t.Hash, Worker: w.Name}
	switch {
	case t.Call == nil:
		res.Error = &wireError{Msg: "a task without a call", Permanent: true}
	case b.V != Protocol:
		res.Key = t.Call.Key
		res.Error = &wireError{Msg: fmt.Sprintf("worker %s speaks protocol %d and the coordinator %d: run the same flowrun version on both", w.Name, Protocol, b.V), Permanent: true}
	default:
		res.Key = t.Call.Key
		start := time.Now()
		res.Output, res.Error = w.call(ctx, t)
		res.Took = time.Since(start)
	}
	return res
}

// heartbeat tells the server the task is being worked on, so that a long call is
// not delivered again; it returns the function that stops it.
func (w *Worker) heartbeat(msg jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(w.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// call runs the task's call with the local executor, bounded by its timeout,
// turning a panic into an error.
func (w *Worker) call(ctx context.Context, t *task) (map[string]any, *wireError) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[t.ID] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, t.ID)
		w.mu.Unlock()
	}()
	if t.Call.Timeout > 0 {
		timer := time.AfterFunc(t.Call.Timeout, func() { cancel(errTimeout) })
		defer timer.Stop()
	}
	type outcome struct {
		out map[string]any
		err error
	}
	exec := func() (o outcome) {
		defer func() {
			if p := recover(); p != nil {
				o = outcome{err: action.Panicked(p, debug.Stack())}
			}
		}()
		o.out, o.err = w.Exec.Execute(actx, t.Call)
		return o
	}
	var o outcome
	if t.Call.Timeout <= 0 {
		o = exec() // nothing to end it early but a cancel, which the action hears
	} else { // in a goroutine of its own, so that the timeout ends it even if it does not listen
		done := make(chan outcome, 1)
		go func() { done <- exec() }()
		select {
		case o = <-done:
		case <-actx.Done():
		}
	}
	switch cause := context.Cause(actx); {
	case errors.Is(cause, errTimeout):
		return nil, &wireError{Kind: "timeout", Msg: fmt.Sprintf("timed out after %s", t.Call.Timeout)}
	case errors.Is(cause, errCancelled):
		return nil, &wireError{Kind: "cancel", Msg: "cancelled by the coordinator"}
	}
	if o.err != nil {
		return nil, wireErr(o.err)
	}
	out, err := value.Normalize(o.out)
	if err != nil {
		return nil, &wireError{Msg: fmt.Sprintf("action %s returned %v", t.Call.Action, err)}
	}
	obj, _ := out.(map[string]any)
	if obj == nil {
		obj = map[string]any{}
	}
	return obj, nil
}

var (
	errTimeout   = errors.New("the attempt timed out")
	errCancelled = errors.New("cancelled by the coordinator")
)

// wireErr turns an action's error into its travelling form.
func wireErr(err error) *wireError {
	e := &wireError{Msg: err.Error()}
	var ae *action.Error
	if errors.As(err, &ae) {
		e.Kind, e.Permanent = ae.Kind, ae.Permanent
		if f, nerr := value.Normalize(ae.Fields); nerr == nil {
			e.Fields, _ = f.(map[string]any)
		}
	}
	return e
}

// cancelled handles a coordinator's notice that it no longer waits for a task.
func (w *Worker) cancelled(m *nats.Msg) {
	w.mu.Lock()
	cancel := w.running[string(m.Data)]
	w.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
}

// send publishes a batch's results; a batch that has results already (it was
// delivered twice) keeps the first.
func (w *Worker) send(ctx context.Context, b *batch, results []*result) error {
	msg, err := w.Conn.message(ctx, resultSubject(b.Run, b.ID), "r-"+hash(b.Run+"/"+b.ID), appendResults(nil, b.ID, results))
	if err != nil {
		return err
	}
	fut, err := w.Conn.JS.PublishMsgAsync(msg, jetstream.WithMsgID("r/"+b.ID))
	if err == nil {
		select {
		case <-fut.Ok():
		case err = <-fut.Err():
		}
	}
	if err != nil && strings.Contains(err.Error(), "maximum messages per subject exceeded") {
		return nil // the first results of this batch are there already
	}
	return err
}

// Hostname names a worker by default: the host and the process.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		h = "worker"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
