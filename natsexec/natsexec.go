// Package natsexec runs a workflow's action calls on other machines through NATS
// JetStream: Executor is the coordinator's side (an action.Executor), Worker the
// other (`flowrun worker`).
//
// The layout on the server:
//
//	FLOWRUN_TASKS     a work-queue stream, subjects flowrun.tasks.<pool>.<run>: one
//	                  task per attempt of a call, deduplicated by its id
//	                  <run>/<unit>/<epoch>/<attempt>[r<resend>]; one durable pull consumer per pool
//	                  (pool_<pool>), which every worker of the pool pulls from
//	FLOWRUN_RESULTS   a stream of results, one subject per task message
//	                  (flowrun.results.<run>.<hash>) holding at most one message:
//	                  the first results of a task message win, later ones (from a
//	                  redelivered message) are refused by the server
//	FLOWRUN_PAYLOADS  an object store for tasks and results over 256 KiB
//	FLOWRUN_WORKERS   a key-value bucket: each live worker's name, pools, slots and
//	                  version, refreshed every few seconds
//	FLOWRUN_RUNS      a key-value bucket: which coordinator runs a run (a lease)
//
// Delivery is at least once: a worker that dies holding a task lets its ack wait
// pass, and the server delivers the task again, up to MaxDeliveries times; then the
// call fails with kind "lost". The coordinator's journal is the source of truth: a
// resumed coordinator (a new epoch) takes the results workers published while it
// was away, and sends again only the calls that have none.
package natsexec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowrun/flowrun/action"
)

// Protocol is the version of the task and result messages; a worker refuses the
// tasks of another.
const Protocol = 1

// The names on the server.
const (
	tasksStream    = "FLOWRUN_TASKS"
	resultsStream  = "FLOWRUN_RESULTS"
	payloadsBucket = "FLOWRUN_PAYLOADS"
	workersBucket  = "FLOWRUN_WORKERS"
	runsBucket     = "FLOWRUN_RUNS"
	cancelSubject  = "flowrun.cancel" // core NATS: flowrun.cancel.<run>, the task id
)

// Defaults of the layout and of the protocol's timing.
const (
	// DefaultPool is the pool of the calls of nodes that name none.
	DefaultPool = "default"
	// LocalPool keeps a node's calls in the coordinator.
	LocalPool = "local"
	// MaxDeliveries is how many times a task is delivered before its call is lost.
	MaxDeliveries = 5
	// DefaultAckWait is how long a worker may hold a task without a sign of life
	// (it heartbeats a third as often) before the server delivers it again.
	DefaultAckWait = 30 * time.Second
	// inline bounds a message's payload; a larger one goes to the object store.
	inline = 256 << 10
	// workerTTL is how long a worker counts as live after its last heartbeat.
	workerTTL = 15 * time.Second
)

// batch is what the coordinator sends workers: the attempts of calls, one or more
// (under load, the calls ready at once travel together, each keeping its own id).
type batch struct {
	V  int
	ID string
	// Run is the coordinator's run: the results go to its subjects.
	Run   string
	Tasks []*task
}

// task is one attempt of a call.
type task struct {
	ID   string
	Call *action.Call
	// Hash identifies the call's parameters (a resumed run reuses a result only for
	// the same parameters).
	Hash string
}

// maxBatch bounds the calls of one batch.
const maxBatch = 64

// batchWork bounds the work of one batch: the coordinator puts in a batch as many
// calls of a pool as its workers run in that time (by how long they took so far),
// and a worker takes one batch per free slot, so a worker never holds more than
// about this much work per slot that others could have run: calls that take
// 200 ms travel one by one, calls that take microseconds up to maxBatch together.
const batchWork = 5 * time.Millisecond

// batchFor is the most calls of a batch whose calls take d each.
func batchFor(d time.Duration) int {
	return int(min(max(batchWork/max(d, 1), 1), maxBatch))
}

// result is what a worker sends back.
type result struct {
	V      int
	ID     string
	Key    string
	Hash   string
	Worker string
	// Took is how long the call ran on the worker.
	Took   time.Duration
	Output map[string]any
	Error  *wireError
}

// wireError is an action error as it travels.
type wireError struct {
	Msg       string
	Kind      string
	Permanent bool
	Fields    map[string]any
}

func (e *wireError) err() *action.Error {
	return &action.Error{Msg: e.Msg, Kind: e.Kind, Permanent: e.Permanent, Fields: e.Fields}
}

// taskID is the id of one attempt of a call in one epoch of a run: the dedupe id
// of its message. A retry, and a resumed run, make new ids.
func taskID(call *action.Call, epoch int) string {
	id := call.Key + "/" + strconv.Itoa(epoch) + "/" + strconv.Itoa(call.Attempt)
	if call.Resend > 0 { // sent again after a rate limit's pause: another task
		id += "r" + strconv.Itoa(call.Resend)
	}
	return id
}

// hash is a subject-safe digest.
func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}

var safeToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// token makes a subject token of a run id or pool name: itself when it is safe,
// else a digest.
func token(s string) string {
	if safeToken.MatchString(s) {
		return s
	}
	return "h" + hash(s)
}

func taskSubject(pool, run string) string { return "flowrun.tasks." + token(pool) + "." + token(run) }
func resultSubject(run, id string) string { return "flowrun.results." + token(run) + "." + hash(id) }
func resultsOf(run string) string         { return "flowrun.results." + token(run) + ".>" }
func consumerName(pool string) string     { return "pool_" + token(pool) }

// poolOf is the pool a call goes to.
func poolOf(call *action.Call) string {
	if call.Pool == "" {
		return DefaultPool
	}
	return call.Pool
}

// paramsHash identifies a call's action and parameters.
func paramsHash(call *action.Call, params []byte) string {
	return hash(call.Action + "\x00" + call.Version + "\x00" + string(params))
}

// checkVersion refuses a server older than 2.9, whose streams lack
// DiscardNewPerSubject.
func checkVersion(v string) error {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return nil // unknown: let the stream settings speak
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	if major < 2 || major == 2 && minor < 9 {
		return fmt.Errorf("the NATS server is version %s; flowrun needs 2.9 or later (it uses DiscardNewPerSubject): upgrade the server", v)
	}
	return nil
}
