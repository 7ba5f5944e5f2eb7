package natsexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// lingerFor is how long a busy coordinator waits to fill a batch.
const lingerFor = time.Millisecond

// leaseTTL is how long a coordinator's hold on a run lasts without a refresh.
const leaseTTL = 30 * time.Second

// Options configure an Executor.
type Options struct {
	// RunID is the run whose calls it carries, and Epoch the run's attempt (0 for a
	// new run, one more for each resume): task ids of different epochs differ.
	RunID string
	Epoch int
	// Local runs the calls of pool "local", in this process.
	Local action.Executor
	// Name names the coordinator in the run's lease.
	Name string
	// Logger is told of waits for workers.
	Logger *slog.Logger
	// NoWorkerWait is how long a call waits when no live worker serves its pool
	// before it fails (0: 30 s); a warning comes after a few seconds.
	NoWorkerWait time.Duration
}

// Executor carries out calls on workers: each attempt is a task in its pool's
// queue, and the first result a worker sends back is the attempt's outcome. It is
// safe for concurrent use; Close it when the run ends.
type Executor struct {
	conn *Conn
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	waiting map[string]*pending      // task id → the call waiting for it
	bySeq   map[uint64][]string      // task stream sequence → the task ids of its batch
	senders map[string]chan *pending // pool → its sender
	earlier map[string]*result       // call key → a result of an earlier epoch
	workers map[string]bool          // the pools with live workers
	checked time.Time                // when workers was read
	took    map[string]time.Duration // pool → how long its calls take, a moving average
	warned  map[string]bool          // the pools said to have no worker

	results jetstream.MessagesContext
	adv     *nats.Subscription
	lease   uint64
	stop    chan struct{}
	done    sync.WaitGroup
}

type pending struct {
	ctx  context.Context
	task *task
	done chan *result
	pool string
	sent *sent // the batch it went in
}

// sent is a batch on its way: the object holding its payload, if it was large, is
// dropped when every call of the batch has its result.
type sent struct {
	left    int
	payload nats.Header
	seq     uint64 // the batch's sequence in the stream, once acknowledged
}

// NewExecutor takes the run's lease (refusing a run another coordinator holds) and
// reads the results the run's earlier epochs left, before it sends anything.
func NewExecutor(ctx context.Context, c *Conn, opts Options) (*Executor, error) {
	if opts.Local == nil {
		return nil, errors.New("natsexec: Options.Local is required")
	}
	if opts.NoWorkerWait <= 0 {
		opts.NoWorkerWait = 30 * time.Second
	}
	e := &Executor{conn: c, opts: opts, log: opts.Logger, waiting: map[string]*pending{}, bySeq: map[uint64][]string{},
		senders: map[string]chan *pending{}, earlier: map[string]*result{}, took: map[string]time.Duration{}, warned: map[string]bool{}, stop: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.takeLease(ctx); err != nil {
		return nil, err
	}
	if err := e.subscribe(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// EnforcesTimeouts: workers bound each attempt from when they start it.
func (e *Executor) EnforcesTimeouts() bool { return true }

// takeLease records that this coordinator runs the run, and keeps the record fresh.
func (e *Executor) takeLease(ctx context.Context) error {
	key := token(e.opts.RunID)
	value := []byte(fmt.Sprintf("%s epoch %d", e.opts.Name, e.opts.Epoch))
	rev, err := e.conn.runs.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		entry, gerr := e.conn.runs.Get(ctx, key)
		switch {
		case gerr != nil: // it expired meanwhile
			rev, err = e.conn.runs.Create(ctx, key, value)
		case leaseEpoch(entry.Value()) < e.opts.Epoch:
			// An earlier attempt of this run holds it: that process is gone, for this
			// one holds the run's store, which no two processes share.
			rev, err = e.conn.runs.Update(ctx, key, value, entry.Revision())
		default:
			holder, _, _ := strings.Cut(string(entry.Value()), " epoch ")
			return fmt.Errorf("run %s is coordinated by %s (through the same NATS server); wait for it to end, or stop it", e.opts.RunID, holder)
		}
	}
	if err != nil {
		return fmt.Errorf("the NATS server: the run's lease: %w", err)
	}
	e.lease = rev
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if rev, err := e.conn.runs.Update(context.Background(), key, value, e.lease); err == nil {
					e.lease = rev
				}
			case <-e.stop:
				return
			}
		}
	}()
	return nil
}

// leaseEpoch is the epoch a lease's value names (-1 if none).
func leaseEpoch(v []byte) int {
	_, n, ok := strings.Cut(string(v), " epoch ")
	if !ok {
		return -1
	}
	epoch, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return epoch
}

// subscribe reads the run's results (those of earlier epochs first, to the last)
// and the server's notices of tasks delivered the most times allowed.
func (e *Executor) subscribe(ctx context.Context) error {
	cons, err := e.conn.JS.OrderedConsumer(ctx, resultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{resultsOf(e.opts.RunID)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("the NATS server: reading results: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("the NATS server: reading results: %w", err)
	}
	if e.results, err = cons.Messages(); err != nil {
		return fmt.Errorf("the NATS server: reading results: %w", err)
	}
	for range info.NumPending { // what earlier epochs left, before any call is made
		msg, err := e.results.Next()
		if err != nil {
			return fmt.Errorf("the NATS server: reading results: %w", err)
		}
		e.received(msg)
	}
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		for {
			msg, err := e.results.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				continue // the ordered consumer recovers by itself (a server restart)
			}
			e.received(msg)
		}
	}()
	if e.adv, err = e.conn.NC.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+tasksStream+".*", e.lost); err != nil {
		return err
	}
	if e.opts.Epoch > 0 {
		return e.settle(ctx)
	}
	return nil
}

// settle waits, when a run resumes, for the tasks its earlier attempts left in the
// queue that workers are still working through, so that their results are taken
// instead of the calls running again. Tasks that make no progress for an ack wait
// (or whose pools have no live worker) are dropped: the calls are sent again.
func (e *Executor) settle(ctx context.Context) error {
	filter := "flowrun.tasks.*." + token(e.opts.RunID)
	left := func() (map[string]uint64, error) {
		info, err := e.conn.tasks.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil, fmt.Errorf("the NATS server: the run's earlier tasks: %w", err)
		}
		return info.State.Subjects, nil
	}
	var last uint64
	progress := time.Now()
	for warned := false; ; {
		subjects, err := left()
		if err != nil {
			return err
		}
		var n uint64
		busy := false
		for subject, count := range subjects {
			n += count
			pool := strings.TrimPrefix(subject, "flowrun.tasks.")
			pool = pool[:strings.IndexByte(pool, '.')]
			if e.live(ctx, pool) {
				busy = true
			}
		}
		if n == 0 {
			return nil
		}
		if n != last {
			last, progress = n, time.Now()
		}
		if !busy || time.Since(progress) >= DefaultAckWait {
			if err := e.conn.tasks.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
				return fmt.Errorf("the NATS server: the run's earlier tasks: %w", err)
			}
			e.log.Info("dropped the tasks sent before the resume that no worker is finishing; their calls are sent again", "tasks", n)
			return nil
		}
		if !warned {
			e.log.Info("waiting for workers to finish the tasks sent before the resume", "tasks", n)
			warned = true
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// received hands a result to the call that waits for it, or keeps it for a call
// of this epoch that a resumed run will make again.
func (e *Executor) received(msg jetstream.Msg) {
	data, err := e.conn.payload(context.Background(), msg.Headers(), msg.Data())
	var results []*result
	if err == nil {
		results, err = readResults(data)
	}
	if err != nil {
		e.log.Warn("results that cannot be read: dropped", "error", err)
		return
	}
	e.conn.dropPayload(context.Background(), msg.Headers())
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, res := range results {
		if p := e.waiting[res.ID]; p != nil {
			delete(e.waiting, res.ID)
			if d, ok := e.took[p.pool]; ok {
				e.took[p.pool] = (7*d + res.Took) / 8
			} else {
				e.took[p.pool] = res.Took
			}
			p.done <- res
			e.done1(p)
		} else if epochOf(res.ID) < e.opts.Epoch && res.Error == nil {
			e.earlier[res.Key] = res
		}
	}
}

// epochOf reads the epoch of a task id (<key>/<epoch>/<attempt>).
func epochOf(id string) int {
	parts := strings.Split(id, "/")
	if len(parts) < 3 {
		return -1
	}
	n, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		return -1
	}
	return n
}

// advisory is the part of JetStream's max-deliveries advisory that matters.
type advisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// lost fails the call whose task the server delivered the most times allowed
// (every worker that took it died, or none could finish it), and drops the task.
func (e *Executor) lost(m *nats.Msg) {
	var a advisory
	if json.Unmarshal(m.Data, &a) != nil {
		return
	}
	e.mu.Lock()
	ids, ok := e.bySeq[a.StreamSeq]
	delete(e.bySeq, a.StreamSeq)
	var lost []*pending
	for _, id := range ids {
		if p := e.waiting[id]; p != nil {
			delete(e.waiting, id)
			lost = append(lost, p)
		}
	}
	e.mu.Unlock()
	if !ok {
		return
	}
	e.conn.tasks.DeleteMsg(context.Background(), a.StreamSeq)
	for _, p := range lost {
		p.done <- &result{ID: p.task.ID, Error: &wireError{Kind: "lost", Permanent: true, Msg: fmt.Sprintf(
			"the task was delivered %d times and no worker finished it (each died, or was stopped, holding it)", a.Deliveries)}}
	}
}

// done1 counts a call of a batch as answered (e.mu held).
func (e *Executor) done1(p *pending) {
	if p.sent == nil {
		return
	}
	if p.sent.left--; p.sent.left == 0 {
		delete(e.bySeq, p.sent.seq)
		go e.conn.dropPayload(context.Background(), p.sent.payload)
	}
}

// Execute sends one attempt of call to a worker of its pool and waits for the
// result, or runs it here for pool "local".
func (e *Executor) Execute(ctx context.Context, call *action.Call) (map[string]any, error) {
	if call.Pool == LocalPool {
		return e.local(ctx, call)
	}
	h := paramsHash(call, value.Append(nil, map[string]any(call.Params)))
	id, pool := taskID(call, e.opts.Epoch), poolOf(call)
	p := &pending{ctx: ctx, task: &task{ID: id, Call: call, Hash: h}, done: make(chan *result, 1), pool: pool}
	e.mu.Lock()
	if prev := e.earlier[call.Key]; prev != nil && call.Attempt == 1 && prev.Hash == h {
		delete(e.earlier, call.Key)
		e.mu.Unlock()
		return prev.Output, nil // a worker finished it while the coordinator was away
	}
	e.waiting[id] = p
	send := e.sender(pool)
	e.mu.Unlock()
	select {
	case send <- p:
	case <-ctx.Done():
		e.forget(id)
		return nil, context.Cause(ctx)
	}
	res, err := e.await(ctx, p)
	if err != nil {
		e.forget(id)
		e.conn.NC.Publish(cancelSubject+"."+token(e.opts.RunID), []byte(id)) // the worker may stop
		return nil, err
	}
	if res.Error != nil {
		return nil, res.Error.err()
	}
	if res.Output == nil {
		res.Output = map[string]any{}
	}
	return res.Output, nil
}

// forget stops waiting for a task's result.
func (e *Executor) forget(id string) {
	e.mu.Lock()
	if p := e.waiting[id]; p != nil {
		delete(e.waiting, id)
		e.done1(p)
	}
	e.mu.Unlock()
}

// sender returns the channel of a pool's sender, starting it (e.mu held).
func (e *Executor) sender(pool string) chan *pending {
	ch := e.senders[pool]
	if ch == nil {
		ch = make(chan *pending, maxBatch)
		e.senders[pool] = ch
		e.done.Add(1)
		go e.send(pool, ch)
	}
	return ch
}

// send publishes a pool's calls as they come: alone when they come one at a time,
// together (up to batchLimit) when they come faster than they can be sent.
func (e *Executor) send(pool string, ch chan *pending) {
	defer e.done.Done()
	for {
		var calls []*pending
		select {
		case p := <-ch:
			calls = append(calls, p)
		case <-e.stop:
			return
		}
		// When many calls are in flight, more come as results do: wait a moment
		// for them, so that they travel together; otherwise send what is there.
		e.mu.Lock()
		busy := len(e.waiting) >= 2*maxBatch
		e.mu.Unlock()
		var linger <-chan time.Time
		var timer *time.Timer
		if busy {
			timer = time.NewTimer(lingerFor)
			linger = timer.C
		}
		limit := e.batchLimit(pool)
	more:
		for len(calls) < limit {
			select {
			case p := <-ch:
				calls = append(calls, p)
			case <-linger:
				break more
			default:
				if linger == nil {
					break more
				}
				select {
				case p := <-ch:
					calls = append(calls, p)
				case <-linger:
					break more
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		calls = slices.DeleteFunc(calls, func(p *pending) bool { return p.ctx.Err() != nil })
		if len(calls) > 0 {
			e.publish(pool, calls)
		}
	}
}

// publish sends one batch; the server's acknowledgement is awaited in the
// background, so that the next batch goes at once.
func (e *Executor) publish(pool string, calls []*pending) {
	b := &batch{V: Protocol, Run: e.opts.RunID, Tasks: make([]*task, len(calls))}
	ids := make([]string, len(calls))
	for i, p := range calls {
		b.Tasks[i], ids[i] = p.task, p.task.ID
	}
	b.ID = ids[0]
	if len(ids) > 1 {
		b.ID = "b-" + hash(strings.Join(ids, "\x00"))
	}
	msg, err := e.conn.message(context.Background(), taskSubject(pool, e.opts.RunID), "t-"+hash(b.ID), appendBatch(nil, b))
	if err != nil {
		e.fail(calls, &wireError{Msg: fmt.Sprintf("sending the call: %v", err)})
		return
	}
	s := &sent{left: len(calls), payload: msg.Header}
	e.mu.Lock()
	for _, p := range calls {
		p.sent = s
	}
	e.mu.Unlock()
	fut, err := e.conn.JS.PublishMsgAsync(msg, jetstream.WithMsgID(b.ID))
	go e.acked(fut, err, msg, b.ID, ids, calls, s)
}

// acked waits for the server to acknowledge a batch, sending it again while the
// server does not answer (it restarts), for a minute at most.
func (e *Executor) acked(fut jetstream.PubAckFuture, err error, msg *nats.Msg, id string, ids []string, calls []*pending, s *sent) {
	deadline := time.Now().Add(time.Minute)
	for {
		if err == nil {
			select {
			case ack := <-fut.Ok():
				e.mu.Lock()
				if s.left > 0 { // else every result came before the acknowledgement
					s.seq, e.bySeq[ack.Sequence] = ack.Sequence, ids
				}
				e.mu.Unlock()
				return
			case err = <-fut.Err():
			case <-e.stop:
				return
			}
		}
		if time.Now().After(deadline) || !retryable(err) {
			e.fail(calls, &wireError{Msg: fmt.Sprintf("sending the call to the NATS server: %v", err)})
			return
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-e.stop:
			return
		}
		fut, err = e.conn.JS.PublishMsgAsync(msg, jetstream.WithMsgID(id))
	}
}

// fail answers calls that could not be sent.
func (e *Executor) fail(calls []*pending, werr *wireError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range calls {
		if e.waiting[p.task.ID] == p {
			delete(e.waiting, p.task.ID)
			p.done <- &result{ID: p.task.ID, Error: werr}
		}
	}
}

// retryable reports whether a publish may succeed later: the server is away.
func retryable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}

// await waits for a task's result; when no live worker serves its pool, it warns,
// and fails the call after NoWorkerWait.
func (e *Executor) await(ctx context.Context, p *pending) (*result, error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var alone time.Duration // how long no worker has served the pool
	for {
		select {
		case res := <-p.done:
			return res, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-t.C:
			if e.live(ctx, p.pool) {
				alone = 0
				continue
			}
			alone += time.Second
			if alone >= 3*time.Second {
				e.mu.Lock()
				first := !e.warned[p.pool]
				e.warned[p.pool] = true
				e.mu.Unlock()
				if first { // once per pool, not per call
					e.log.Warn(fmt.Sprintf("no worker serves pool %s: start one with `flowrun worker --nats URL --pool %s`", p.pool, p.pool))
				}
			}
			if alone >= e.opts.NoWorkerWait {
				return nil, &action.Error{Permanent: true, Msg: fmt.Sprintf(
					"no worker served pool %s for %s: start one with `flowrun worker --nats URL --pool %s`, then resume the run", p.pool, e.opts.NoWorkerWait, p.pool)}
			}
		}
	}
}

// live reports whether a live worker serves the pool (read at most once a second).
func (e *Executor) live(ctx context.Context, pool string) bool {
	e.mu.Lock()
	stale := time.Since(e.checked) >= time.Second
	if stale {
		e.checked = time.Now()
	}
	e.mu.Unlock()
	if stale {
		infos, err := Workers(ctx, e.conn)
		if err != nil {
			return true // cannot tell: do not fail the call for it
		}
		pools := map[string]bool{}
		for _, w := range infos {
			for _, p := range w.Pools {
				pools[p] = true
			}
		}
		e.mu.Lock()
		e.workers = pools
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers[pool]
}

// batchLimit is the most calls a batch of the pool may hold: about batchWork of
// work, by how long its calls took so far (one, until one took any time).
func (e *Executor) batchLimit(pool string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.took[pool]
	if !ok {
		return 1
	}
	return batchFor(d)
}

// local runs a call of pool "local" here, bounded by its timeout.
func (e *Executor) local(ctx context.Context, call *action.Call) (map[string]any, error) {
	if call.Timeout <= 0 {
		return e.opts.Local.Execute(ctx, call)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(call.Timeout, func() { cancel(errTimeout) })
	defer timer.Stop()
	out, err := e.opts.Local.Execute(actx, call)
	if errors.Is(context.Cause(actx), errTimeout) {
		return nil, &action.Error{Kind: "timeout", Msg: fmt.Sprintf("timed out after %s", call.Timeout)}
	}
	return out, err
}

// Purge drops the run's results from the server: call it when the run succeeded
// and none will be needed again.
func (e *Executor) Purge(ctx context.Context) error {
	return e.conn.results.Purge(ctx, jetstream.WithPurgeSubject(resultsOf(e.opts.RunID)))
}

// Close stops reading results and releases the run's lease.
func (e *Executor) Close() {
	close(e.stop)
	if e.results != nil {
		e.results.Stop()
	}
	if e.adv != nil {
		e.adv.Unsubscribe()
	}
	e.done.Wait()
	e.conn.runs.Delete(context.Background(), token(e.opts.RunID))
}

// Workers lists the live workers, by name.
func Workers(ctx context.Context, c *Conn) ([]Info, error) {
	keys, err := c.workers.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Info
	for k := range keys.Keys() {
		entry, err := c.workers.Get(ctx, k)
		if err != nil {
			continue // gone since
		}
		var info Info
		if json.Unmarshal(entry.Value(), &info) == nil && time.Since(info.Seen) < workerTTL {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
