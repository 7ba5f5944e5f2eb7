package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Event types.
const (
	RunStarted   = "run.started"
	NodeStarted  = "node.started"
	ItemStarted  = "item.started"
	ItemRetrying = "item.retrying"
	ItemFailed   = "item.failed"
	ItemFinished = "item.finished"
	NodeFinished = "node.finished"
	RunFinished  = "run.finished"
	// LimitPaused: a server asked a rate limit's calls to slow down (a 429); every
	// call of the limit waits DelayMS, and its concurrency is halved.
	LimitPaused = "limit.paused"
	// BudgetReached: the next call would pass a budget; no new calls start.
	BudgetReached = "budget.reached"
	// LimitFinished: a rate limit's or budget's totals, at the end of the run.
	LimitFinished = "limit.finished"
)

// Event is one thing that happened in a run. Node events are emitted for top-level
// nodes and for every map or parallel node at any depth; item events for every item
// of a map (Node is the map node, Item its index path).
type Event struct {
	Type  string    `json:"type"`
	Time  time.Time `json:"time"`
	RunID string    `json:"run_id"`
	// Workflow is the name of the workflow the node belongs to (sub-workflows differ
	// from the run's).
	Workflow string `json:"workflow,omitempty"`
	Node     string `json:"node,omitempty"`
	// Item is the index path of the item: "3", or "3/0" for item 0 of a map inside
	// item 3. On node events it is the path of the item the node runs in.
	Item string `json:"item,omitempty"`
	// Parent is the map node whose item runs this node (nested fan-out), if any.
	Parent string `json:"parent,omitempty"`
	// At is the node inside the item's chain where an attempt failed.
	At      string `json:"at,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Items is the number of items a map node fans out to (node.started).
	Items int `json:"items,omitempty"`
	// DurationMS is how long the node, item or run took (finished and failed events).
	DurationMS float64 `json:"duration_ms,omitempty"`
	// DelayMS is the wait before the next attempt (item.retrying).
	DelayMS   float64 `json:"delay_ms,omitempty"`
	ErrorKind string  `json:"error_kind,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Tolerated marks a failed item within the map's max_failures.
	Tolerated bool `json:"tolerated,omitempty"`
	// Replayed marks an item a resumed run took from its journal, not run again.
	Replayed bool `json:"replayed,omitempty"`
	// Status ends a run: succeeded, failed or interrupted.
	Status string `json:"status,omitempty"`
	// Limit names the rate limit, or the budget ("run", or the map's node), of the
	// limit and budget events.
	Limit string `json:"limit,omitempty"`
	// Usage is what the limit or budget has seen so far.
	Usage *LimitUsage `json:"usage,omitempty"`
}

// LimitUsage is what a rate limit or a budget has seen.
type LimitUsage struct {
	Calls  int64   `json:"calls"`
	Tokens int64   `json:"tokens"`
	USD    float64 `json:"usd"`
	// Waits counts the calls that waited for the limit, WaitMS how long in all.
	Waits  int64   `json:"waits,omitempty"`
	WaitMS float64 `json:"wait_ms,omitempty"`
	// RateLimited counts the 429s the limit's calls met.
	RateLimited int64 `json:"rate_limited,omitempty"`
	// Concurrency is the limit's effective concurrency (AIMD).
	Concurrency float64 `json:"concurrency,omitempty"`
}

// Emit tells the observers of the run that ctx belongs to about e, for the
// executors the run calls (a rate limit that pauses); it does nothing outside a
// run. The run sets e's time and run id.
func Emit(ctx context.Context, e Event) {
	if r, ok := ctx.Value(runKey{}).(*run); ok {
		r.emit(e)
	}
}

type runKey struct{}

// A Reporter is an Executor with events of its own for the end of a run (a rate
// limit's totals): the run emits them just before run.finished.
type Reporter interface {
	Report() []Event
}

// Observer receives a run's events. Calls come from many goroutines at once and
// must return quickly; the run waits for them. An Observer must not keep the Event
// past the call. A run tells its observers every event, in the order it happens
// within each node and item.
type Observer interface {
	Observe(e *Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(e *Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e *Event) { f(e) }

// Notable wraps an observer so that it receives only a run's notable events: run
// and node events, and items that retry or fail, but not item.started and
// item.finished. A run with no other observer then makes no events per item,
// which for a million items saves two million.
func Notable(o Observer) Observer { return notable{o} }

type notable struct{ o Observer }

func (n notable) Observe(e *Event) { n.o.Observe(e) }

// emit tells the event to the observers that want it.
func (r *run) emit(e Event) {
	obs := r.obs
	if e.Type == ItemStarted || e.Type == ItemFinished {
		obs = r.itemObs
	}
	if len(obs) == 0 {
		return
	}
	e.Time = r.now()
	e.RunID = r.id
	for _, o := range obs {
		o.Observe(&e)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// EventWriter is an Observer that writes events as JSON lines, buffered, and
// flushed at least every flushEvery, so that a program tailing the file sees the
// run as it goes. Close flushes what is left.
type EventWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	err  error
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

// NewEventWriter returns an EventWriter writing to w.
func NewEventWriter(w io.Writer) *EventWriter {
	ew := &EventWriter{w: bufio.NewWriter(w), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ew.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ew.mu.Lock()
				if ew.err == nil && ew.w.Buffered() > 0 {
					ew.err = ew.w.Flush()
				}
				ew.mu.Unlock()
			case <-ew.stop:
				return
			}
		}
	}()
	return ew
}

// Observe writes the event as one line of JSON.
func (ew *EventWriter) Observe(ev *Event) {
	b, err := json.Marshal(ev)
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if err == nil && ew.err == nil {
		b = append(b, '\n')
		_, ew.err = ew.w.Write(b)
	}
}

// Close stops the flusher and flushes what is left; it returns the first write
// error.
func (ew *EventWriter) Close() error {
	close(ew.stop)
	<-ew.done
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if ew.err != nil {
		return ew.err
	}
	return ew.w.Flush()
}
