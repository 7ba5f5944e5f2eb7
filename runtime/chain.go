package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// chain runs nodes one after another from a start node, following next: a
// workflow's top-level chain, an item's chain inside a map, or a parallel branch.
//
// At top level (st != nil) updates apply to the live state at once, and each node
// sees the state as its predecessors left it. Inside an item, every node sees the
// snapshot taken when the outermost map started, and updates wait in buf until the
// map merges the item, in item order.
type chain struct {
	r   *run
	wf  *spec.Workflow
	dir string // the workflow's directory, as action.Call.Dir names it
	m   *spec.VM

	st   *state         // top level: the live state
	snap map[string]any // inside an item: the snapshot
	buf  []update       // inside an item: updates waiting for the merge

	input any            // inside an item: the with payload
	set   map[string]any // values from set, seen as input.<name>
	path  string         // the item's index path; "" at top level
	steps int

	// The chain's journal key (see Journal) is built when first needed: most items
	// need it only as part of their journal record. A top-level chain's is "";
	// an item's is its map node's exec key and its index, "@1:fan[17]".
	key       string
	keyMade   bool
	keyPrefix string // an item's: its map node's exec key, built before the items start
	keyIndex  int
	cur       *spec.Node // the node running now
	exec      string     // its exec key, once built for step execStep
	execStep  int
	// handledList are the errors on_error handled in this chain (and its items).
	handledList []Failure
	// owner counts the items of the map this item belongs to (nil at top level);
	// depth is the number of maps around the chain.
	owner *NodeStats
	depth int
	// scratchVars, in an item, is its worker's map for vars(): reused node after
	// node and item after item, since nothing keeps the variables past a step.
	scratchVars map[string]any
	// started is when the chain's first action (or sub-workflow) started.
	started time.Time
	// budgets are those of the maps around the chain, outermost first: its calls
	// carry them.
	budgets []action.Budget
}

// stateView is the state this chain's expressions see now.
func (c *chain) stateView() map[string]any {
	if c.st != nil {
		return c.st.view()
	}
	return c.snap
}

// inputView is the `input` variable: the state at top level, the with payload in
// an item, plus earlier set values.
func (c *chain) inputView() any {
	in := c.input
	if c.st != nil {
		in = c.st.view()
	}
	if len(c.set) == 0 {
		return in
	}
	base, _ := in.(map[string]any)
	merged := make(map[string]any, len(base)+len(c.set))
	for k, v := range base {
		merged[k] = v
	}
	for k, v := range c.set {
		merged[k] = v
	}
	return merged
}

// vars returns fresh variables for one node's expressions.
func (c *chain) vars() map[string]any {
	if v := c.scratchVars; v != nil {
		clear(v)
		v["state"], v["input"], v["run"], v["env"], v["secret"] = c.stateView(), c.inputView(), c.r.runVar, c.r.envFn, c.r.secretFn
		return v
	}
	return map[string]any{"state": c.stateView(), "input": c.inputView(), "run": c.r.runVar, "env": c.r.envFn, "secret": c.r.secretFn}
}

func (c *chain) run(ctx context.Context, start *spec.Node) error {
	for node := start; node != nil; {
		if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
			return &ItemError{Node: node, Kind: KindCancel, Attempts: 0, Err: err}
		}
		c.steps++
		c.cur = node
		if c.steps > c.wf.Limits.MaxSteps {
			return &ItemError{Node: node, Kind: KindLimit, Err: fmt.Errorf(
				"more than %d steps in one chain: is next looping? raise limits.max_steps if the loop is meant", c.wf.Limits.MaxSteps)}
		}
		next, err := c.step(ctx, node)
		if err != nil {
			var skip errSkip // declared here: &skip escapes, a heap allocation per step otherwise
			if errors.As(err, &skip) && c.st != nil {
				// At top level, skip ends the chain; the node's updates are dropped.
				c.handled(node, skip.cause)
				return nil
			}
			return err
		}
		node = next
	}
	return nil
}

// step runs one node and returns the next one (nil: the chain ends).
func (c *chain) step(ctx context.Context, node *spec.Node) (*spec.Node, error) {
	// Top-level nodes have node events and stats; maps and parallels have theirs at
	// any depth (see fanOut).
	if c.st != nil && node.Kind != spec.MapNode && node.Kind != spec.ParallelNode {
		start := c.r.now()
		parent := ""
		if c.owner != nil {
			parent = c.owner.Node
		}
		ns := c.r.stats.node(c.wf.Name, node.Name, node.Kind.String(), parent, c.depth)
		c.r.emit(Event{Type: NodeStarted, Workflow: c.wf.Name, Node: node.Name, Item: c.path})
		defer func() {
			d := c.r.now().Sub(start)
			ns.ran(d)
			c.r.emit(Event{Type: NodeFinished, Workflow: c.wf.Name, Node: node.Name, Item: c.path, DurationMS: ms(d)})
		}()
	}
	switch node.Kind {
	case spec.MapNode, spec.ParallelNode:
		if err := c.fanOut(ctx, node); err != nil {
			return nil, err
		}
		return c.follow(node, node.Next, c.vars())
	case spec.PassNode:
		vars := c.vars()
		if err := c.assign(node, node.Update, node.Set, vars); err != nil {
			return nil, err
		}
		return c.follow(node, node.Next, c.refresh(vars))
	}
	vars := c.vars()
	out, err := c.outcome(ctx, node, vars)
	if err != nil {
		ie := asItemError(node, KindAction, err)
		if !handles(node, ie) {
			return nil, ie
		}
		if node.OnError.Mode == spec.Skip {
			return nil, errSkip{ie}
		}
		vars["error"] = ie.vars()
		if err := c.assign(node, node.OnError.Update, node.OnError.Set, vars); err != nil {
			return nil, err
		}
		c.handled(node, ie)
		return c.follow(node, node.OnError.Next, c.refresh(vars))
	}
	vars["output"] = out
	if err := c.assign(node, node.Update, node.Set, vars); err != nil {
		return nil, err
	}
	return c.follow(node, node.Next, c.refresh(vars))
}

// handles reports whether the node's on_error deals with the error: failures of
// the action itself (kinds action, timeout, panic), not mistakes in the workflow
// (expression, state) and not cancellation.
func handles(node *spec.Node, ie *ItemError) bool {
	if node.OnError == nil || node.OnError.Mode == spec.Fail {
		return false
	}
	switch ie.Kind {
	case KindAction, KindTimeout, KindPanic, KindLost, KindRateLimited:
		return true
	}
	return false
}

// errSkip ends an item without its updates (on_error: skip).
type errSkip struct{ cause *ItemError }

func (e errSkip) Error() string { return "skipped after: " + e.cause.Error() }

// refresh updates vars after this node's own updates: at top level, next sees them.
func (c *chain) refresh(vars map[string]any) map[string]any {
	if c.st != nil {
		vars["state"] = c.st.view()
	}
	vars["input"] = c.inputView()
	return vars
}

// assign evaluates a node's update and set entries against the same variables, then
// applies (top level) or buffers (in an item) the updates.
func (c *chain) assign(node *spec.Node, updates, sets []spec.Assign, vars map[string]any) error {
	var pending []update
	if c.st != nil && len(updates) > 0 {
		pending = make([]update, 0, len(updates))
	}
	for _, a := range updates {
		v, err := a.Value.Eval(c.m, vars)
		if err != nil {
			return &ItemError{Node: node, Kind: KindExpression, Err: err}
		}
		if t := a.Field.UpdateType(); t != nil {
			if msg := t.Check(v); msg != "" {
				return &ItemError{Node: node, Kind: KindState, Err: fmt.Errorf("%s: update of state field %q (%s, reducer %s): %s",
					a.Pos, a.Field.Name, a.Field.Type.Noun(), a.Field.Reducer.Name, msg)}
			}
		}
		if c.st != nil {
			pending = append(pending, update{field: a.Field, value: v})
		} else {
			if c.buf == nil {
				c.buf = make([]update, 0, len(updates))
			}
			c.buf = append(c.buf, update{field: a.Field, value: v})
		}
	}
	var newSet map[string]any
	for _, a := range sets {
		v, err := a.Value.Eval(c.m, vars)
		if err != nil {
			return &ItemError{Node: node, Kind: KindExpression, Err: err}
		}
		if newSet == nil {
			newSet = make(map[string]any, len(c.set)+len(sets))
			for k, x := range c.set {
				newSet[k] = x
			}
		}
		newSet[a.Name] = v
	}
	if newSet != nil {
		if _, isObj := c.input.(map[string]any); c.st == nil && c.input != nil && !isObj {
			return &ItemError{Node: node, Kind: KindExpression, Err: fmt.Errorf(
				"set needs the item's input to be an object, but it is %s: give the map an object `with`", value.Describe(c.input))}
		}
		c.set = newSet
	}
	for _, u := range pending {
		if err := c.st.apply(c.m, u); err != nil {
			return &ItemError{Node: node, Kind: KindState, Err: err}
		}
	}
	return nil
}

// follow picks the next node from next's cases; no match ends the chain.
func (c *chain) follow(node *spec.Node, next *spec.Next, vars map[string]any) (*spec.Node, error) {
	if next == nil {
		return nil, nil
	}
	to, ok, err := pick(c.m, next.Cases, vars)
	if err != nil {
		return nil, &ItemError{Node: node, Kind: KindExpression, Err: err}
	}
	if !ok {
		return nil, nil
	}
	return to, nil
}

// pick returns the target of the first case whose condition holds.
func pick(m *spec.VM, cases []spec.Case, vars map[string]any) (*spec.Node, bool, error) {
	for _, cs := range cases {
		if cs.When == nil {
			return cs.To, true, nil
		}
		v, err := cs.When.Eval(m, vars)
		if err != nil {
			return nil, false, err
		}
		b, isBool := v.(bool)
		if !isBool {
			return nil, false, fmt.Errorf("%s: condition %q gave %s, expected true or false", cs.When.Pos, cs.When.Src, value.Describe(v))
		}
		if b {
			return cs.To, true, nil
		}
	}
	return nil, false, nil
}

// outcome runs an action or workflow node, or, when an earlier attempt of the run
// finished it at top level, takes its recorded outcome. At top level a finished
// outcome (an output, or an error on_error handles) is journalled.
func (c *chain) outcome(ctx context.Context, node *spec.Node, vars map[string]any) (map[string]any, error) {
	r := c.r
	top := c.st != nil && r.keyed
	if top && r.replay != nil {
		if rec := r.replay.Node(c.execKey()); rec != nil {
			if e := rec.Error; e != nil {
				return nil, &ItemError{Node: node, Kind: e.Kind, Attempts: e.Attempts, Err: errors.New(e.Message), Fields: e.Fields}
			}
			return rec.Output, nil
		}
	}
	out, err := c.invoke(ctx, node, vars)
	if !top || r.journal == nil {
		return out, err
	}
	if err == nil {
		r.journal.AppendNode(c.execKey(), out)
	} else if ie := asItemError(node, KindAction, err); handles(node, ie) {
		// Finished: on_error deals with it. (An unhandled error runs again on resume.)
		r.journal.AppendNodeError(c.execKey(), &journal.NodeError{Kind: ie.Kind, Message: ie.Err.Error(), Attempts: ie.Attempts, Fields: ie.Fields})
	} else {
		return out, err
	}
	// The barrier: the next node starts once this one's record is on disk, so that
	// no finished top-level node runs again after a kill.
	if jerr := r.journal.Sync(); jerr != nil {
		return nil, &ItemError{Node: node, Kind: KindState, Err: fmt.Errorf("journal: %w", jerr)}
	}
	return out, err
}

// chainKey returns the chain's journal key.
func (c *chain) chainKey() string {
	if !c.keyMade {
		c.key = string(c.appendKey(nil))
		c.keyMade = true
	}
	return c.key
}

// appendKey writes the chain's key without making it a string.
func (c *chain) appendKey(b []byte) []byte {
	if c.keyMade {
		return append(b, c.key...)
	}
	b = append(b, c.keyPrefix...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(c.keyIndex), 10)
	return append(b, ']')
}

// execKey returns the journal key of the node running now: "@3:merge" after the
// chain's own key.
func (c *chain) execKey() string {
	if c.execStep != c.steps {
		c.exec = c.chainKey() + "@" + strconv.Itoa(c.steps) + ":" + c.cur.Name
		c.execStep = c.steps
	}
	return c.exec
}
