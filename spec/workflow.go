// Package spec loads workflow files: it parses YAML keeping positions, checks the file
// against the language (reporting every problem at once, each at file:line:col),
// compiles every expression once, and returns an immutable *Workflow for the runtime.
package spec

import (
	"time"

	"github.com/flowrun/flowrun/action"
)

// Workflow is a loaded, checked and compiled workflow file. It is immutable, so one
// Workflow may serve many runs at once.
type Workflow struct {
	// File is the path of the file as it was named to Load (or as a sub-workflow
	// reference resolved against its parent's path).
	File string
	// Dir is the absolute directory of the file; relative paths resolve against it.
	Dir string
	// Source is the file's content.
	Source []byte
	// Hash identifies the content of this file and of every sub-workflow it uses.
	Hash        string
	Name        string
	Description string
	// State lists the state fields in declaration order; Field.Index is the position.
	State []*Field
	// Start is the first node.
	Start *Node
	// Nodes lists the nodes in declaration order; Node.Index is the position.
	Nodes []*Node
	// Output lists the fields `flowrun run` prints; nil means the whole state.
	Output []*Field
	Limits Limits
	// Warnings are problems that do not stop the workflow from running.
	Warnings Errors
	// Includes are the sub-workflows used by this file's nodes, each once, in the
	// order they are first referenced.
	Includes []*Workflow
	// Registry holds the actions the workflow was loaded with: its nodes' actions
	// are declared there.
	Registry *action.Registry

	fields map[string]*Field
	nodes  map[string]*Node
	graph  *Graph
}

// Field returns the named state field, or nil.
func (w *Workflow) Field(name string) *Field { return w.fields[name] }

// Node returns the named node, or nil.
func (w *Workflow) Node(name string) *Node { return w.nodes[name] }

// Limits are run-wide limits.
type Limits struct {
	// Concurrency caps actions in flight across the run (an integer, or a template
	// such as "${{ int(env('MAX_WORKERS', '16')) }}"); nil means the default, 16.
	Concurrency *Value
	MaxSteps    int
	MaxItems    int
	// Rates are the named rate limits (limits.rate), and RateNames their names in
	// file order.
	Rates     map[string]*Rate
	RateNames []string
	// Budget caps the run's tokens, dollars and calls; nil when not given.
	Budget *Budget
	// Prices are the models' prices (limits.prices), by model name.
	Prices map[string]Price
}

// Defaults of the limits.
const (
	DefaultConcurrency = 16
	DefaultMaxSteps    = 10000
	DefaultMaxItems    = 1000000
)

// Field is a state field.
type Field struct {
	Name        string
	Pos         Pos
	Index       int
	Type        *Type
	Default     any // the initial value: the declared default, else the type's zero
	Required    bool
	Reducer     Reducer
	Description string
}

// ReducerKind is how an update meets a field's current value.
type ReducerKind int

// The reducers.
const (
	Replace ReducerKind = iota
	Add
	Append
	Sum
	Min
	Max
	Merge
	Union
	ExprReducer
)

var reducerKinds = map[string]ReducerKind{
	"replace": Replace, "add": Add, "append": Append, "sum": Sum,
	"min": Min, "max": Max, "merge": Merge, "union": Union,
}

// Reducer is a field's reducer.
type Reducer struct {
	Kind ReducerKind
	Name string // as written: "add", or "expr"
	Expr *Expr  // for ExprReducer: sees current and update
}

// NodeKind is what a node does.
type NodeKind int

// The kinds of nodes.
const (
	ActionNode NodeKind = iota
	PassNode
	MapNode
	ParallelNode
	WorkflowNode
)

func (k NodeKind) String() string {
	return [...]string{"action", "pass", "map", "parallel", "workflow"}[k]
}

// Node is a node of the graph.
type Node struct {
	Name        string
	Pos         Pos
	Index       int
	Kind        NodeKind
	Description string

	// Action is the action of an ActionNode.
	Action *action.Spec
	// With is the action's parameters or the sub-workflow's inputs (an object value),
	// or nil.
	With *Value
	// Workflow is the sub-workflow of a WorkflowNode; WorkflowRef is the reference as
	// written.
	Workflow    *Workflow
	WorkflowRef string
	// Map is the fan-out of a MapNode.
	Map *Map
	// Parallel are the first nodes of a ParallelNode's branches.
	Parallel []*Node

	Update []Assign
	Set    []Assign
	// Next is where the chain goes after this node; nil ends it.
	Next *Next
	// Retry is the retry policy; nil means a single attempt.
	Retry *Retry
	// Timeout bounds each attempt; 0 means none.
	Timeout time.Duration
	// OnError says what happens after the last failed attempt; nil means fail.
	OnError *OnError
	// Pool names the workers that run an action node's calls when a run spreads them
	// over machines: "" any, "local" the coordinator itself.
	Pool string
	// Rate lists the rate limits an action node's calls are subject to.
	Rate []*Rate
	// rateNames are their names, made once at load.
	rateNames []string
}

// RateNames are the names of the node's rate limits (nil when none).
func (n *Node) RateNames() []string { return n.rateNames }

// Assign is one entry of `update` or `set`.
type Assign struct {
	Name  string
	Pos   Pos
	Field *Field // the state field, for update
	Value *Value
}

// Next is a node's outgoing edge: a list of cases, the first match wins. A plain
// `next: name` is one case without a condition. No match ends the chain.
type Next struct {
	Pos   Pos
	Cases []Case
}

// Case is a conditional edge.
type Case struct {
	Pos  Pos
	When *Expr // nil: always
	To   *Node // nil: END
}

// Map is a fan-out.
type Map struct {
	Pos  Pos
	Over *Value // the list
	As   string
	// Batch, MaxBytes and Chunks are integers or templates; nil when not given.
	Batch    *Value
	MaxBytes *Value
	Chunks   *Value
	// Route chooses the worker; `to: X` is one case without a condition.
	Route []Case
	// With is the worker's input; nil means {<As>: item, index: index}.
	With        *Value
	Concurrency *Value // nil: the run's limit
	MaxFailures *Value // nil: 0
	// MaxFailureRatio is nil when not given.
	MaxFailureRatio *Value
	// Budget caps what each run of the map may use; nil when not given.
	Budget *Budget
}

// Retry is a retry policy.
type Retry struct {
	Pos         Pos
	MaxAttempts int
	Delay       time.Duration
	Backoff     float64
	MaxDelay    time.Duration
	Jitter      bool
	When        *Expr // nil: retry every error that is not permanent
}

// Defaults of a retry policy.
const (
	DefaultMaxAttempts = 3
	DefaultDelay       = 500 * time.Millisecond
	DefaultBackoff     = 2.0
	DefaultMaxDelay    = 30 * time.Second
)

// OnErrorMode is what happens after an action's last failed attempt.
type OnErrorMode int

// The on_error modes.
const (
	Fail OnErrorMode = iota
	Skip
	Handle
)

// OnError is a node's error handler.
type OnError struct {
	Pos    Pos
	Mode   OnErrorMode
	Update []Assign // Handle: sees error
	Set    []Assign
	Next   *Next
}
