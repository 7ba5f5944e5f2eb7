package runtime

import (
	"errors"
	"fmt"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/spec"
)

// Kinds of item errors, as `error.kind` shows them to retry.when and on_error.
const (
	KindAction     = "action"     // the action returned an error
	KindTimeout    = "timeout"    // an attempt ran past the node's timeout
	KindPanic      = "panic"      // the action panicked
	KindCancel     = "cancel"     // the run or the map was cancelled
	KindExpression = "expression" // an expression failed at run time
	KindState      = "state"      // an update did not fit its state field
	KindRoute      = "route"      // no route case matched an item
	KindMap        = "map"        // a nested map failed
	KindLimit      = "limit"      // a limit was reached (max_steps, max_items)
	KindLost       = "lost"       // the call was delivered to workers the most times allowed, and none finished it
	// KindRateLimited: a server refused a call for its rate (HTTP 429) under a shared limit.
	KindRateLimited = action.KindRateLimited
	// KindBudget: the call would have passed a budget, so it did not start.
	KindBudget = action.KindBudget
)

// ItemError is the failure of one item's chain (or of a top-level node).
type ItemError struct {
	Node     *spec.Node // the node that failed
	Kind     string
	Attempts int
	Err      error
	// Fields are extra details for error.<name> (an HTTP status, an exit code).
	Fields map[string]any
}

func (e *ItemError) Error() string {
	where := ""
	if e.Node != nil {
		where = fmt.Sprintf("%s: node %q: ", e.Node.Pos, e.Node.Name)
	}
	return where + e.Err.Error()
}

func (e *ItemError) Unwrap() error { return e.Err }

// vars returns the error as the `error` variable of expressions.
func (e *ItemError) vars() map[string]any {
	v := map[string]any{"kind": e.Kind, "message": e.Err.Error(), "attempt": e.Attempts, "attempts": e.Attempts}
	if e.Node != nil {
		v["node"] = e.Node.Name
	}
	for k, x := range e.Fields {
		if _, taken := v[k]; !taken {
			v[k] = x
		}
	}
	return v
}

// asItemError wraps err as an ItemError of the given kind unless it is one already.
func asItemError(node *spec.Node, kind string, err error) *ItemError {
	var ie *ItemError
	if errors.As(err, &ie) {
		return ie
	}
	var ae *action.Error
	fields := map[string]any(nil)
	if errors.As(err, &ae) {
		fields = ae.Fields
		if ae.Kind != "" {
			kind = ae.Kind
		}
	}
	return &ItemError{Node: node, Kind: kind, Attempts: 1, Err: err, Fields: fields}
}

// Failure is a failed item of a run, reported at its end.
type Failure struct {
	Map      string `json:"map,omitempty"`  // the map (or parallel) node the item belongs to
	Item     string `json:"item,omitempty"` // the item's index path: "3", or "3/0" when nested
	Node     string `json:"node"`           // the node where it failed
	Pos      string `json:"pos,omitempty"`
	Kind     string `json:"kind"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
	// Tolerated failures were within their map's max_failures: the run went on.
	Tolerated bool `json:"tolerated,omitempty"`
	// Handled failures were dealt with by the node's on_error (skip, or update and
	// next): the item went on, or ended without updates.
	Handled bool `json:"handled,omitempty"`
}

// RunError is a run that failed. Its Failures list every failed item, tolerated
// and handled ones included.
type RunError struct {
	Err      error
	Failures []Failure
}

func (e *RunError) Error() string { return e.Err.Error() }

func (e *RunError) Unwrap() error { return e.Err }
