package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// fanout runs the items of one map (or the branches of one parallel) node: a fixed
// pool of workers pulls item indices one at a time, so a million items cost a
// million small steps and never a million goroutines; finished items are merged into
// the enclosing chain strictly in item order.
type fanout struct {
	c     *chain
	node  *spec.Node
	tasks tasks
	snap  map[string]any // the state every item reads
	input any            // the enclosing chain's input, seen by route and with

	ctx     context.Context
	cancel  context.CancelCauseFunc
	next    atomic.Int64
	merged  atomic.Int64    // the items merged so far: order.next, for a read without mu
	budgets []action.Budget // those of the map and the maps around it, for its items' calls

	maxFailures int     // -1: no count limit
	maxRatio    float64 // -1: no ratio limit
	stats       *NodeStats
	key         string // the map node's journal exec key, when the run keys its work

	mu        sync.Mutex
	mergeVM   *spec.VM // the merge runs on whichever worker completes the prefix
	order     reorder
	advanced  *sync.Cond // the merge advanced, or the map stopped (on mu)
	waiters   int        // workers waiting for it
	failures  []Failure
	stopped   error // why the map stopped early
	mergeErr  error
	cancelled int
	// overBudget is the first item that did not start for a budget, and
	// notStarted counts those items: the map goes on with the items in flight,
	// then fails so that a resume with a larger budget runs them.
	overBudget *ItemError
	notStarted int
}

// itemResult is a finished item.
type itemResult struct {
	updates []update
	err     *ItemError
	skipped bool
	handled []Failure // errors on_error handled in the item
}

// fanOut runs a map or parallel node in chain c and merges its items into c.
func (c *chain) fanOut(ctx context.Context, node *spec.Node) error {
	vars := c.vars()
	fo := &fanout{c: c, node: node, snap: c.stateView(), input: vars["input"], maxFailures: 0, maxRatio: -1, mergeVM: spec.NewVM()}
	conc := len(node.Parallel)
	if mp := node.Map; mp != nil {
		var err error
		if fo.tasks, err = c.planTasks(mp, vars); err != nil {
			return &ItemError{Node: node, Kind: KindExpression, Err: err}
		}
		if n := fo.tasks.len(); n > c.wf.Limits.MaxItems {
			return &ItemError{Node: node, Kind: KindLimit, Err: fmt.Errorf(
				"the map fans out to %d items; limits.max_items is %d", n, c.wf.Limits.MaxItems)}
		}
		conc = cap(c.r.slots)
		if mp.Concurrency != nil {
			if conc, err = c.r.count(mp.Concurrency, vars, 1); err != nil {
				return &ItemError{Node: node, Kind: KindExpression, Err: err}
			}
		}
		if err := fo.thresholds(mp, vars); err != nil {
			return &ItemError{Node: node, Kind: KindExpression, Err: err}
		}
	} else {
		fo.tasks = tasks{n: len(node.Parallel)}
	}
	n := fo.tasks.len()
	start := c.r.now()
	parent := ""
	if c.owner != nil {
		parent = c.owner.Node
	}
	fo.stats = c.r.stats.node(c.wf.Name, node.Name, node.Kind.String(), parent, c.depth)
	fo.stats.Items.Add(int64(n))
	c.r.emit(Event{Type: NodeStarted, Workflow: c.wf.Name, Node: node.Name, Item: c.path, Parent: parent, Items: n})

	fo.key = c.execKey() // once, here: the workers read it concurrently
	fo.budgets = c.budgets
	if mp := node.Map; mp != nil && mp.Budget != nil {
		b := mp.Budget
		fo.budgets = append(slices.Clip(c.budgets), action.Budget{Scope: c.r.id + "/" + fo.key, Node: node.Name, Tokens: b.Tokens, USD: b.USD, Calls: b.Calls})
	}
	fo.ctx, fo.cancel = context.WithCancelCause(ctx)
	defer fo.cancel(nil)
	fo.advanced = sync.NewCond(&fo.mu)
	defer context.AfterFunc(fo.ctx, func() {
		fo.mu.Lock()
		fo.advanced.Broadcast()
		fo.mu.Unlock()
	})()
	workers := min(conc, n)
	fo.stats.widen(int64(workers))
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fo.work(spec.NewVM())
		}()
	}
	if workers > 0 {
		fo.work(c.m) // this goroutine is a worker too
	}
	wg.Wait()

	err := fo.finish(ctx)
	fo.stats.ran(c.r.now().Sub(start))
	if err == nil && c.r.journal != nil && c.st != nil && c.path == "" {
		// The barrier: what the next node builds on is on disk first.
		if jerr := c.r.journal.Sync(); jerr != nil {
			err = &ItemError{Node: node, Kind: KindState, Err: fmt.Errorf("journal: %w", jerr)}
		}
	}
	ev := Event{Type: NodeFinished, Workflow: c.wf.Name, Node: node.Name, Item: c.path, Items: n, DurationMS: ms(c.r.now().Sub(start))}
	if err != nil {
		ev.Error = err.Error()
	}
	c.r.emit(ev)
	return err
}

// thresholds reads max_failures and max_failure_ratio. With only a ratio, the ratio
// alone decides; with neither, one failure fails the map.
func (fo *fanout) thresholds(mp *spec.Map, vars map[string]any) error {
	c := fo.c
	if mp.MaxFailureRatio != nil {
		x, err := mp.MaxFailureRatio.Eval(c.m, vars)
		if err != nil {
			return err
		}
		r, ok := value.Float(x)
		if !ok || r < 0 || r > 1 {
			return fmt.Errorf("%s: max_failure_ratio: expected a fraction from 0 to 1, got %s", mp.MaxFailureRatio.Pos, value.Describe(x))
		}
		fo.maxRatio, fo.maxFailures = r, -1
	}
	if mp.MaxFailures != nil {
		n, err := c.r.count(mp.MaxFailures, vars, 0)
		if err != nil {
			return err
		}
		fo.maxFailures = n
	}
	return nil
}

// exceeded reports whether the failures so far fail the map.
func (fo *fanout) exceeded(failed int) bool {
	if fo.maxFailures >= 0 && failed > fo.maxFailures {
		return true
	}
	return fo.maxRatio >= 0 && float64(failed) > fo.maxRatio*float64(fo.tasks.len())
}

// worker is what one worker goroutine reuses from item to item.
type worker struct {
	m    *spec.VM
	vars map[string]any
	rec  journal.Item   // an item's journal record is made here
	lane *journal.Lane  // and appended here
	env  map[string]any // chain.vars() of the worker's items
	ch   chain          // the item's chain, reused
}

// work runs items until there are none left or the map stops.
func (fo *fanout) work(m *spec.VM) {
	n := int64(fo.tasks.len())
	w := &worker{m: m, env: make(map[string]any, 8), vars: map[string]any{"run": fo.c.r.runVar, "env": fo.c.r.envFn, "state": fo.snap, "input": fo.input}}
	if j := fo.c.r.journal; j != nil {
		w.lane = j.Lane()
		defer w.lane.Retire()
	}
	for fo.ctx.Err() == nil {
		i := fo.next.Add(1) - 1
		if i >= n {
			return
		}
		if i >= fo.merged.Load()+reorderWindow && !fo.awaitWindow(i) {
			return
		}
		res := fo.item(w, int(i))
		fo.done(int(i), res)
	}
}

// reorderWindow bounds how far past the oldest unfinished item the workers run,
// so that the items that finished after it and wait to be merged in order (a
// slow or redelivered call holds them all) take bounded memory.
const reorderWindow = 1 << 16

// awaitWindow waits until item i is within reorderWindow of the oldest item not
// merged yet; false if the map stopped meanwhile. The oldest item's own worker
// never waits, so the window always moves on.
func (fo *fanout) awaitWindow(i int64) bool {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	for i >= int64(fo.order.next)+reorderWindow && fo.ctx.Err() == nil {
		fo.waiters++
		fo.advanced.Wait()
		fo.waiters--
	}
	return fo.ctx.Err() == nil
}

// item runs item i's chain.
func (fo *fanout) item(w *worker, i int) *itemResult {
	c, r := fo.c, fo.c.r
	path := strconv.Itoa(i)
	if c.path != "" {
		path = c.path + "/" + path
	}
	ch := &w.ch
	*ch = chain{r: r, wf: c.wf, dir: c.dir, m: w.m, snap: fo.snap, path: path, keyPrefix: fo.key, keyIndex: i,
		owner: fo.stats, depth: c.depth + 1, scratchVars: w.env, budgets: fo.budgets}
	if r.replay != nil && r.replay.Items > 0 {
		rec, err := r.replay.Item(ch.chainKey())
		if rec != nil || err != nil {
			if res := fo.replayed(rec, err); res != nil {
				r.emit(Event{Type: ItemFinished, Workflow: c.wf.Name, Node: fo.node.Name, Item: path, Replayed: true})
				return res
			} // else the record no longer fits the (changed) workflow: the item runs again
		}
	}
	// Observers of item progress hear of every item; the others only of failed
	// ones, timed from the item's first action (no clock is read per item for them).
	progress := len(r.itemObs) > 0
	var start time.Time
	if progress {
		start = r.now()
		r.emit(Event{Type: ItemStarted, Workflow: c.wf.Name, Node: fo.node.Name, Item: path})
	}
	res := fo.runItem(w, ch, i)
	if res.err == nil && r.journal != nil {
		w.record(ch, res)
	}
	if progress || res.err != nil && len(r.obs) > 0 {
		if start.IsZero() {
			start = ch.started
		}
		fo.itemEvent(res, path, start)
	}
	return res
}

// runItem routes item i, makes its input and runs its chain.
func (fo *fanout) runItem(w *worker, ch *chain, i int) *itemResult {
	var target *spec.Node
	if mp := fo.node.Map; mp != nil {
		m, vars := w.m, w.vars
		item, index := fo.tasks.at(i), any(i) // boxed once for both maps
		vars[mp.As], vars["index"] = item, index
		to, ok, err := pick(m, mp.Route, vars)
		if err != nil {
			return &itemResult{err: &ItemError{Node: fo.node, Kind: KindExpression, Err: err}}
		}
		if !ok {
			return &itemResult{err: &ItemError{Node: fo.node, Kind: KindRoute, Err: fmt.Errorf(
				"no route case matched item %d: add a last case without when (to a worker, or to END to drop such items)", i)}}
		}
		if to == nil {
			return &itemResult{skipped: true} // routed to END
		}
		target = to
		if mp.With != nil {
			if ch.input, err = mp.With.Eval(m, vars); err != nil {
				return &itemResult{err: &ItemError{Node: fo.node, Kind: KindExpression, Err: err}}
			}
		} else {
			ch.input = map[string]any{mp.As: item, "index": index}
		}
	} else {
		target, ch.input = fo.node.Parallel[i], fo.input
	}
	err := ch.run(fo.ctx, target)
	if err == nil {
		return &itemResult{updates: ch.buf, handled: ch.handledList}
	}
	if skip := (errSkip{}); errors.As(err, &skip) {
		ch.handled(skip.cause.Node, skip.cause)
		return &itemResult{skipped: true, handled: ch.handledList}
	}
	return &itemResult{err: asItemError(target, KindAction, err)}
}

// record journals a finished item.
func (w *worker) record(ch *chain, res *itemResult) {
	rec := &w.rec
	rec.Key = ch.appendKey(rec.Key[:0])
	rec.Fields, rec.Values = rec.Fields[:0], rec.Values[:0]
	for _, u := range res.updates {
		rec.Fields, rec.Values = append(rec.Fields, u.field.Name), append(rec.Values, u.value)
	}
	rec.Skipped, rec.Handled = res.skipped, nil
	if len(res.handled) > 0 {
		rec.Handled = res.handled
	}
	w.lane.AppendItem(rec)
	clear(rec.Values) // keep no values alive past the item
}

// replayed is an item an earlier attempt of the run finished, from its record, or
// nil when the record no longer fits the workflow (resumed with --force after a
// field was removed or its type changed).
func (fo *fanout) replayed(rec *journal.Item, err error) *itemResult {
	var updates []update
	var handled []Failure
	if err == nil {
		var fits bool
		if updates, handled, fits, err = replayedItem(fo.c.wf, rec); err == nil && !fits {
			return nil
		}
	}
	if err != nil {
		return &itemResult{err: &ItemError{Node: fo.node, Kind: KindState, Err: fmt.Errorf("replaying the journal: %w", err)}}
	}
	for _, f := range handled {
		fo.c.r.fail(f)
	}
	return &itemResult{updates: updates, skipped: rec.Skipped, handled: handled}
}

// replayedItem turns an item's journal record into its updates, for the
// workflow's fields, and the errors on_error handled in it; fits is false when an
// update names a field the workflow no longer has, or no longer fits it.
func replayedItem(wf *spec.Workflow, rec *journal.Item) (updates []update, handled []Failure, fits bool, err error) {
	updates = make([]update, len(rec.Fields))
	for i, name := range rec.Fields {
		f := wf.Field(name)
		if f == nil {
			return nil, nil, false, nil
		}
		v := rec.Values[i]
		if t := f.UpdateType(); t != nil && t.Check(v) != "" {
			return nil, nil, false, nil
		}
		updates[i] = update{field: f, value: v}
	}
	if raw, ok := rec.Handled.(json.RawMessage); ok {
		if err := json.Unmarshal(raw, &handled); err != nil {
			return nil, nil, false, fmt.Errorf("item %s: handled errors: %w", rec.Key, err)
		}
	}
	return updates, handled, true, nil
}

func (fo *fanout) itemEvent(res *itemResult, path string, start time.Time) {
	r := fo.c.r
	ev := Event{Type: ItemFinished, Workflow: fo.c.wf.Name, Node: fo.node.Name, Item: path}
	if !start.IsZero() {
		ev.DurationMS = ms(r.now().Sub(start))
	}
	if res.err != nil {
		if res.err.Kind == KindCancel && fo.ctx.Err() != nil {
			return // cancelled, not failed: the node's event says why
		}
		ev.Type, ev.ErrorKind, ev.Error, ev.Attempt = ItemFailed, res.err.Kind, res.err.Err.Error(), res.err.Attempts
		if res.err.Node != nil {
			ev.At = res.err.Node.Name
		}
		fo.mu.Lock()
		ev.Tolerated = fo.stopped == nil && !fo.exceeded(len(fo.failures)+1) // counting this one: done() has not yet
		fo.mu.Unlock()
	}
	r.emit(ev)
}

// done records a finished item and merges every item now complete in order.
func (fo *fanout) done(i int, res *itemResult) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if res.err == nil {
		fo.c.r.itemsDone.Add(1)
		fo.stats.Done.Add(1)
	} else {
		if res.err.Kind == KindCancel && fo.ctx.Err() != nil {
			fo.cancelled++
			return // left out of the merge: the map or the run has stopped
		}
		if res.err.Kind == KindBudget {
			if fo.overBudget == nil {
				fo.overBudget = res.err
			}
			fo.notStarted++
			return // left out of the merge, like a cancelled item: a resume runs it
		}
		fo.c.r.itemsFailed.Add(1)
		fo.stats.Failed.Add(1)
		f := fo.failure(i, res.err)
		fo.failures = append(fo.failures, f)
		res.updates = nil
		if fo.stopped == nil && fo.exceeded(len(fo.failures)) {
			fo.stopped = fo.tooMany()
			fo.cancel(fo.stopped)
		}
	}
	fo.order.put(i, res)
	for {
		next, ok := fo.order.pop()
		if !ok {
			if int64(fo.order.next) != fo.merged.Load() {
				fo.merged.Store(int64(fo.order.next))
				if fo.waiters > 0 {
					fo.advanced.Broadcast()
				}
			}
			return
		}
		if fo.mergeErr == nil {
			fo.merge(fo.order.next-1, next)
		}
	}
}

func (fo *fanout) failure(i int, e *ItemError) Failure {
	path := strconv.Itoa(i)
	if fo.c.path != "" {
		path = fo.c.path + "/" + path
	}
	f := Failure{Map: fo.node.Name, Item: path, Kind: e.Kind, Attempts: e.Attempts, Error: e.Err.Error()}
	if e.Node != nil {
		f.Node, f.Pos = e.Node.Name, e.Node.Pos.String()
	}
	return f
}

func (fo *fanout) tooMany() error {
	n, total := len(fo.failures), fo.tasks.len()
	limit := fmt.Sprintf("max_failures is %d", fo.maxFailures)
	switch {
	case fo.maxFailures < 0:
		limit = fmt.Sprintf("max_failure_ratio is %g", fo.maxRatio)
	case fo.maxRatio >= 0:
		limit = fmt.Sprintf("max_failures is %d and max_failure_ratio %g", fo.maxFailures, fo.maxRatio)
	}
	return fmt.Errorf("%d of %d items failed; %s", n, total, limit)
}

// merge hands one item's updates to the enclosing chain: applied to the live state
// at top level, appended to the item's own pending updates when nested.
func (fo *fanout) merge(i int, res *itemResult) {
	c := fo.c
	if c.st == nil {
		c.buf = append(c.buf, res.updates...)
		c.handledList = append(c.handledList, res.handled...)
		return
	}
	for _, u := range res.updates {
		if err := c.st.apply(fo.mergeVM, u); err != nil {
			fo.mergeErr = fmt.Errorf("merging item %d: %w", i, err)
			fo.cancel(fo.mergeErr)
			return
		}
	}
}

// finish reports how the map ended, once every worker has returned.
func (fo *fanout) finish(ctx context.Context) error {
	r := fo.c.r
	failed := fo.stopped != nil || fo.mergeErr != nil || ctx.Err() != nil
	for _, f := range fo.failures {
		f.Tolerated = !failed
		if f.Tolerated {
			r.tolerate(f.Item) // what failed inside a tolerated item is tolerated too
		}
		r.fail(f)
	}
	switch {
	case ctx.Err() != nil:
		return &ItemError{Node: fo.node, Kind: KindCancel, Err: context.Cause(ctx)}
	case fo.mergeErr != nil:
		return &ItemError{Node: fo.node, Kind: KindState, Err: fo.mergeErr}
	case fo.overBudget != nil && fo.stopped == nil:
		return &ItemError{Node: fo.node, Kind: KindBudget, Attempts: fo.overBudget.Attempts, Err: fmt.Errorf(
			"%w (%d of the items of %s not started)", fo.overBudget.Err, fo.notStarted, fo.node.Name)}
	case fo.stopped != nil:
		what := "map"
		if fo.node.Kind == spec.ParallelNode {
			what = "parallel"
		}
		var notes []string
		if fo.cancelled > 0 {
			notes = append(notes, fmt.Sprintf("%d in flight cancelled", fo.cancelled))
		}
		if n := fo.tasks.len() - int(min(fo.next.Load(), int64(fo.tasks.len()))); n > 0 {
			notes = append(notes, fmt.Sprintf("%d not started", n))
		}
		stopped := fo.stopped
		if notes != nil {
			stopped = fmt.Errorf("%w (%s)", stopped, strings.Join(notes, ", "))
		}
		return &ItemError{Node: fo.node, Kind: KindMap, Err: fmt.Errorf("%s node %q failed: %w", what, fo.node.Name, stopped)}
	}
	return nil
}

// reorder holds finished items until every earlier one has finished: a circular
// window over item indices, growing when items finish far ahead of the oldest.
type reorder struct {
	next int
	buf  []*itemResult // slot of index i: buf[i & (len-1)]
}

func (q *reorder) put(i int, r *itemResult) {
	if q.buf == nil {
		q.buf = make([]*itemResult, 64)
	}
	for i-q.next >= len(q.buf) {
		grown := make([]*itemResult, 2*len(q.buf))
		for j := q.next; j < q.next+len(q.buf); j++ {
			grown[j&(len(grown)-1)] = q.buf[j&(len(q.buf)-1)]
		}
		q.buf = grown
	}
	q.buf[i&(len(q.buf)-1)] = r
}

func (q *reorder) pop() (*itemResult, bool) {
	if q.buf == nil {
		return nil, false
	}
	slot := &q.buf[q.next&(len(q.buf)-1)]
	r := *slot
	if r == nil {
		return nil, false
	}
	*slot = nil
	q.next++
	return r, true
}
