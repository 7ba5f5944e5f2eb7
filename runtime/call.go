package runtime

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// errTimeout is the cause of an attempt's context when the node's timeout ends it.
var errTimeout = errors.New("attempt timed out")

// invoke runs an action or sub-workflow node with its retry policy and returns its
// output.
func (c *chain) invoke(ctx context.Context, node *spec.Node, vars map[string]any) (map[string]any, error) {
	var with map[string]any
	if node.With != nil {
		x, err := node.With.Eval(c.m, vars)
		if err != nil {
			var read []string // the message may quote what secret() gave
			if s := c.r.secrets.Load(); s != nil {
				read = *s
			}
			return nil, &ItemError{Node: node, Kind: KindExpression, Err: maskError(err, read)}
		}
		obj, ok := x.(map[string]any)
		if !ok {
			return nil, &ItemError{Node: node, Kind: KindExpression, Err: fmt.Errorf("%s: with gave %s, expected an object", node.With.Pos, value.Describe(x))}
		}
		with = obj
	}
	if node.Action != nil {
		params, err := node.Action.Bind(with)
		if err != nil {
			return nil, &ItemError{Node: node, Kind: KindExpression, Err: fmt.Errorf("action %s: %w", node.Action.Name, err)}
		}
		with = params
	} else {
		inputs, err := CheckInputs(node.Workflow, with)
		if err != nil {
			return nil, &ItemError{Node: node, Kind: KindState, Err: fmt.Errorf("inputs of workflow %s: %w", node.WorkflowRef, err)}
		}
		with = inputs
	}
	if c.started.IsZero() {
		c.started = c.r.now()
	}
	for attempt := 1; ; attempt++ {
		out, err := c.attempt(ctx, node, with, attempt)
		if err == nil {
			return out, nil
		}
		ie := err.(*ItemError)
		ie.Attempts = attempt
		if ctx.Err() != nil {
			ie.Kind, ie.Err = KindCancel, context.Cause(ctx)
			return nil, ie
		}
		retry, err := c.shouldRetry(node, ie, vars)
		if err != nil {
			return nil, err
		}
		if !retry {
			return nil, ie
		}
		d := backoff(node.Retry, attempt, c.r.id+"/"+c.path+"/"+node.Name)
		c.r.emit(Event{Type: ItemRetrying, Workflow: c.wf.Name, Node: node.Name, Item: c.path, At: node.Name,
			Attempt: attempt, DelayMS: ms(d), ErrorKind: ie.Kind, Error: ie.Err.Error()})
		if c.r.log != nil {
			c.r.log.LogAttrs(ctx, slog.LevelDebug, "retrying", slog.String("node", node.Name), slog.String("item", c.path),
				slog.Int("attempt", attempt), slog.Duration("delay", d), slog.String("error", ie.Err.Error()))
		}
		c.r.stats.Retries.Add(1)
		if c.owner != nil {
			c.owner.Retrying.Add(1)
		}
		err = c.r.clock.Sleep(ctx, d)
		if c.owner != nil {
			c.owner.Retrying.Add(-1)
		}
		if err != nil {
			ie.Kind, ie.Err = KindCancel, err
			return nil, ie
		}
	}
}

// attempt runs the node once, bounded by its timeout, turning a panic into an error.
// The executor runs in a goroutine of its own so that a timeout or cancellation
// ends the attempt even when the action ignores its context; the call keeps its
// run-wide slot until it really returns.
func (c *chain) attempt(ctx context.Context, node *spec.Node, with map[string]any, attempt int) (map[string]any, error) {
	actx := ctx
	if node.Timeout > 0 && (node.Kind == spec.WorkflowNode || !c.r.timed) {
		tctx, cancel := context.WithCancelCause(ctx)
		stop := c.r.clock.AfterFunc(node.Timeout, func() { cancel(errTimeout) })
		defer func() {
			stop()
			cancel(nil)
		}()
		actx = tctx
	}
	if node.Kind == spec.WorkflowNode {
		out, err := c.subWorkflow(actx, node, with)
		if err != nil {
			return nil, c.classify(node, actx, err)
		}
		return out, nil
	}
	select {
	case c.r.slots <- struct{}{}:
	case <-actx.Done():
		return nil, c.classify(node, actx, context.Cause(actx))
	}
	type result struct {
		out map[string]any
		err error
	}
	done := make(chan result, 1)
	a := node.Action
	call := &action.Call{Action: a.Name, Version: a.Version, Params: with, RunID: c.r.id, Dir: c.dir,
		Node: node.Name, Item: c.path, Attempt: attempt, Key: c.r.id + "/" + c.execKey(), Timeout: node.Timeout, Pool: node.Pool,
		Limits: node.RateNames(), Budgets: c.budgets}
	slots, exec, calls := c.r.slots, c.r.exec, &c.r.calls // not c: the goroutine may outlive the item's chain (a timeout)
	calls.Add(1)
	go func() {
		defer calls.Done()
		var res result
		func() {
			defer func() {
				if p := recover(); p != nil {
					res = result{err: &panicError{value: p, stack: debug.Stack()}}
				}
			}()
			res.out, res.err = exec.Execute(actx, call)
		}()
		<-slots // free the slot before the result lets the next action start
		done <- res
	}()
	var res result
	select {
	case res = <-done:
	case <-actx.Done():
		res.err = context.Cause(actx)
	}
	secrets := c.r.secretsOf(a, call.Params)
	if res.err != nil {
		ie := c.classify(node, actx, res.err)
		ie.Err = maskError(ie.Err, secrets)
		ie.Fields = maskFields(ie.Fields, secrets)
		return nil, ie
	}
	out, err := value.Normalize(res.out)
	if err != nil {
		return nil, &ItemError{Node: node, Kind: KindAction, Err: maskError(fmt.Errorf("action %s returned %v", a.Name, err), secrets)}
	}
	obj, _ := mask(out, secrets).(map[string]any)
	if obj == nil {
		obj = map[string]any{}
	}
	return obj, nil
}

// classify names the kind of a failed attempt.
func (c *chain) classify(node *spec.Node, actx context.Context, err error) *ItemError {
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		return &ItemError{Node: node, Kind: KindPanic, Err: pe}
	case errors.Is(context.Cause(actx), errTimeout):
		return &ItemError{Node: node, Kind: KindTimeout, Err: fmt.Errorf("timed out after %s", node.Timeout)}
	case actx.Err() != nil:
		return &ItemError{Node: node, Kind: KindCancel, Err: context.Cause(actx)}
	}
	var ie *ItemError
	if errors.As(err, &ie) && node.Kind == spec.WorkflowNode {
		return &ItemError{Node: node, Kind: KindAction, Err: fmt.Errorf("workflow %s: %w", node.WorkflowRef, err)}
	}
	return asItemError(node, KindAction, err)
}

// shouldRetry applies the node's retry policy to a failed attempt.
func (c *chain) shouldRetry(node *spec.Node, ie *ItemError, vars map[string]any) (bool, error) {
	rp := node.Retry
	if rp == nil || ie.Attempts >= rp.MaxAttempts || ie.Kind == KindCancel || ie.Kind == KindBudget {
		return false, nil
	}
	if rp.When == nil {
		var ae *action.Error
		return !errors.As(ie.Err, &ae) || !ae.Permanent, nil
	}
	v := make(map[string]any, len(vars)+1)
	for k, x := range vars {
		v[k] = x
	}
	v["error"] = ie.vars()
	x, err := rp.When.Eval(c.m, v)
	if err != nil {
		return false, &ItemError{Node: node, Kind: KindExpression, Err: err}
	}
	b, ok := x.(bool)
	if !ok {
		return false, &ItemError{Node: node, Kind: KindExpression, Err: fmt.Errorf(
			"%s: retry.when gave %s, expected true or false", rp.When.Pos, value.Describe(x))}
	}
	return b, nil
}

// backoff is the wait after the given failed attempt: delay × backoff^(attempt-1),
// capped at max_delay; with jitter, a random point between half and all of it,
// drawn from a generator seeded by the run, item, node and attempt, so a run's
// waits are reproducible.
func backoff(rp *spec.Retry, attempt int, key string) time.Duration {
	d := float64(rp.Delay) * math.Pow(rp.Backoff, float64(attempt-1))
	if max := float64(rp.MaxDelay); rp.MaxDelay > 0 && d > max {
		d = max
	}
	if rp.Jitter && d > 0 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s#%d", key, attempt)
		rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
		d = d/2 + rng.Float64()*d/2
	}
	return time.Duration(d)
}

// subWorkflow runs a workflow node's sub-workflow and returns its result.
func (c *chain) subWorkflow(ctx context.Context, node *spec.Node, with map[string]any) (map[string]any, error) {
	sub := node.Workflow
	inputs := with // checked by invoke
	st, err := c.r.workflow(ctx, sub, inputs, c, c.execKey()+">")
	if err != nil {
		return nil, err
	}
	out, _ := outputOf(sub, st)
	return out, nil
}

// panicError is an action that panicked.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return action.Panicked(e.value, e.stack).Msg
}

// handled records an error that on_error dealt with, for the run's report and for
// the item's journal record.
func (c *chain) handled(node *spec.Node, ie *ItemError) {
	f := Failure{Item: c.path, Kind: ie.Kind, Attempts: ie.Attempts, Error: ie.Err.Error(), Handled: true}
	if node != nil {
		f.Node, f.Pos = node.Name, node.Pos.String()
	}
	c.r.fail(f)
	c.handledList = append(c.handledList, f)
}
