package spec

// The language description: every kind of mapping a workflow file holds, with its keys,
// their documentation and the JSON Schema of their values. The loader takes the set of
// allowed keys (and the "did you mean" candidates) from here, and the JSON Schema for
// workflow files is generated from it, so the two cannot disagree about what a key is.

// objDef describes one kind of mapping.
type objDef struct {
	name   string // how messages name it: "node", "map", "retry"
	doc    string
	fields []fieldDef
}

// fieldDef describes one key of a mapping.
type fieldDef struct {
	key    string
	doc    string
	schema schema // the JSON Schema of the key's value
}

// schema is a JSON Schema fragment.
type schema = map[string]any

func (d *objDef) keys() []string {
	keys := make([]string, len(d.fields))
	for i, f := range d.fields {
		keys[i] = f.key
	}
	return keys
}

func (d *objDef) has(key string) bool {
	for _, f := range d.fields {
		if f.key == key {
			return true
		}
	}
	return false
}

func ref(def string) schema { return schema{"$ref": "#/$defs/" + def} }

func oneOf(s ...schema) schema {
	list := make([]any, len(s))
	for i, x := range s {
		list[i] = x
	}
	return schema{"oneOf": list}
}

func anyOf(s ...schema) schema {
	list := make([]any, len(s))
	for i, x := range s {
		list[i] = x
	}
	return schema{"anyOf": list}
}

var (
	strSchema  = schema{"type": "string"}
	boolSchema = schema{"type": "boolean"}
	// exprSchema is a bare expr-lang expression (when, over, reducer.expr).
	exprSchema = schema{"type": "string", "minLength": 1, "description": "An expr-lang expression (https://expr-lang.org)."}
	// templateSchema is a string that is, or contains, ${{ expression }}.
	// Its expression may span lines, hence [\s\S] rather than dot.
	templateSchema = schema{"type": "string", "pattern": `\$\{\{[\s\S]*\}\}`, "description": `A template: "${{ expr }}" yields the expression's value.`}
	// durationSchema is what time.ParseDuration takes, negative durations excepted:
	// 150ms, 2s, 1m30s, 1.5h, .5s, 0.
	durationSchema = schema{"type": "string", "pattern": `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`, "description": `A duration such as "150ms", "30s" or "1m30s".`}
	// nameSchema is a node name; identSchema is a name written in expressions (state
	// fields, set names, the item variable), so without "-".
	nameSchema  = schema{"type": "string", "pattern": `^[A-Za-z_][A-Za-z0-9_-]*$`}
	identSchema = schema{"type": "string", "pattern": `^[A-Za-z_][A-Za-z0-9_]*$`}
	// nodeNameSchema is a node name other than END, which ends a chain.
	nodeNameSchema = schema{"type": "string", "pattern": nameSchema["pattern"], "not": schema{"const": End}}
	// objectOrTemplate is a mapping, or a template computing one at run time (with:).
	objectOrTemplate = anyOf(schema{"type": "object"}, templateSchema)
)

func intOrTemplate(min int) schema {
	return anyOf(schema{"type": "integer", "minimum": min}, templateSchema)
}

var workflowDef = &objDef{
	name: "workflow",
	doc:  "A flowrun workflow: typed shared state, nodes, and the edges between them.",
	fields: []fieldDef{
		{"version", "The language version; always 1.", schema{"const": 1}},
		{"name", "The workflow's name (default: the file name).", strSchema},
		{"description", "What the workflow does.", strSchema},
		{"state", "The shared state: one typed field per key, each merged through its reducer.",
			schema{"type": "object", "propertyNames": identSchema, "additionalProperties": ref("stateField")}},
		{"start", "The first node (default: the first node declared).", strSchema},
		{"nodes", "The nodes, by name.",
			schema{"type": "object", "minProperties": 1, "propertyNames": nodeNameSchema, "additionalProperties": ref("node")}},
		{"output", "The state fields `flowrun run` prints (default: the whole state).",
			schema{"type": "array", "items": strSchema, "uniqueItems": true}},
		{"limits", "Run-wide limits.", ref("limits")},
	},
}

var limitsDef = &objDef{
	name: "limits",
	doc:  "Run-wide limits.",
	fields: []fieldDef{
		{"concurrency", "Actions in flight across the whole run, at every depth (default 16; --max-workers overrides).", intOrTemplate(1)},
		{"max_steps", "Node runs allowed in one chain before a loop is stopped (default 10000).", schema{"type": "integer", "minimum": 1}},
		{"max_items", "Items one map may fan out to (default 1000000).", schema{"type": "integer", "minimum": 1}},
		{"rate", "Named rate limits, shared by every node that names them (rate: NAME), across maps and sub-workflows.",
			schema{"type": "object", "propertyNames": nameSchema, "additionalProperties": ref("rate")}},
		{"budget", "What the run may use in all: tokens, usd, calls. When the next call would pass it, no new calls start.", ref("budget")},
		{"prices", "Models' prices in US dollars per million tokens, for budgets in usd and `flowrun plan`.",
			schema{"type": "object", "additionalProperties": ref("price")}},
	},
}

// perSchema is an amount per period: 500/m.
var perSchema = schema{"type": "string", "pattern": `^\s*[0-9]+(\.[0-9]+)?\s*/\s*[smh]\s*$`, "description": "An amount per second, minute or hour: 10/s, 500/m, 20000/h."}

var rateDef = &objDef{
	name: "rate",
	doc:  "A rate limit: requests and tokens per period, and calls in flight.",
	fields: []fieldDef{
		{"requests", "Calls allowed per period: N/s, N/m or N/h.", perSchema},
		{"tokens", "Tokens allowed per period (estimated before a call, counted from its usage after): N/s, N/m or N/h.", perSchema},
		{"concurrency", "Calls in flight at most (default: the run's limit); a 429 halves it for a while.", schema{"type": "integer", "minimum": 1}},
	},
}

var budgetDef = &objDef{
	name: "budget",
	doc:  "A budget: when the next call would pass it, no new calls start and the run stops, to be resumed with a larger one.",
	fields: []fieldDef{
		{"tokens", "Tokens in all.", schema{"type": "integer", "minimum": 1}},
		{"usd", "US dollars in all (needs limits.prices for the models used).", schema{"type": "number", "exclusiveMinimum": 0}},
		{"calls", "Calls in all.", schema{"type": "integer", "minimum": 1}},
	},
}

var priceDef = &objDef{
	name: "price",
	doc:  "A model's price in US dollars per million tokens.",
	fields: []fieldDef{
		{"input", "US dollars per million prompt tokens.", schema{"type": "number", "minimum": 0}},
		{"output", "US dollars per million reply tokens.", schema{"type": "number", "minimum": 0}},
	},
}

var typeKeywords = []fieldDef{
	{"type", "The value's type.", schema{"enum": []any{"string", "number", "integer", "boolean", "array", "object", "any"}}},
	{"items", "The type of a list's elements.", ref("type")},
	{"properties", "The types of an object's fields.", schema{"type": "object", "additionalProperties": ref("type")}},
	{"enum", "The allowed values.", schema{"type": "array", "minItems": 1}},
	{"description", "What the value means.", strSchema},
}

var typeDef = &objDef{name: "type", doc: "A value's type, as in JSON Schema.", fields: typeKeywords}

var stateFieldDef = &objDef{
	name: "state field",
	doc:  "A typed state field.",
	fields: append(append([]fieldDef(nil), typeKeywords...),
		fieldDef{"default", "The initial value (default: the type's zero value).", schema{}},
		fieldDef{"required", "The value must be given at run time (-i name=value).", boolSchema},
		fieldDef{"reducer", "How an update meets the current value (default: replace).", ref("reducer")},
	),
}

// reducerNames are the built-in reducers.
var reducerNames = []string{"replace", "add", "append", "sum", "min", "max", "merge", "union"}

var reducerExprDef = &objDef{
	name: "reducer",
	doc:  "A reducer written as an expression over `current` and `update`.",
	fields: []fieldDef{
		{"expr", "The new value, from `current` and `update`.", exprSchema},
	},
}

var nodeDef = &objDef{
	name: "node",
	doc:  "A node: exactly one of an action, a map, a parallel block or a sub-workflow; or a pass node with only update/set/next.",
	fields: []fieldDef{
		{"description", "What the node does.", strSchema},
		{"action", "The action to run (see `flowrun actions`).", strSchema},
		{"workflow", "Another workflow file to run as a sub-workflow, relative to this file.", strSchema},
		{"map", "Fan out: run a worker chain for every item of a list.", ref("map")},
		{"parallel", "Run these nodes' chains at once, then go on to next.",
			schema{"type": "array", "minItems": 1, "uniqueItems": true, "items": strSchema}},
		{"with", "The action's parameters, or the sub-workflow's inputs.", objectOrTemplate},
		{"update", "State updates, each merged through its field's reducer.", schema{"type": "object"}},
		{"set", "Values for the next nodes of this chain, seen as input.<name>.", schema{"type": "object", "propertyNames": identSchema}},
		{"next", "The next node: a name, END, or a list of {when, to} cases.", ref("next")},
		{"retry", "Retry failed attempts.", ref("retry")},
		{"timeout", "Bound each attempt.", durationSchema},
		{"on_error", "What happens after the last failed attempt: fail, skip, or {update, set, next}.", ref("onError")},
		{"rate", "The rate limits (limits.rate) this action's calls share: a name or a list.",
			anyOf(strSchema, schema{"type": "array", "minItems": 1, "uniqueItems": true, "items": strSchema})},
		{"pool", "With --nats: the workers that run this action (those started with --pool NAME); `local` runs it in the coordinator.", schema{"type": "string", "pattern": `^[A-Za-z_][A-Za-z0-9_-]*$`}},
	},
}

var mapDef = &objDef{
	name: "map",
	doc:  "A dynamic fan-out: one task per item (or batch) of a list.",
	fields: []fieldDef{
		{"over", "The list to fan out over: an expression, or a literal list.", anyOf(exprSchema, schema{"type": "array"})},
		{"as", "The item variable's name (default: item); `index` is the 0-based position.", identSchema},
		{"batch", "Send lists of up to this many items, or {max_items, max_bytes}.", anyOf(intOrTemplate(1), ref("batch"))},
		{"chunks", "Split the list into this many near-equal lists, the larger ones first.", intOrTemplate(1)},
		{"route", "Choose each item's worker: the first case whose `when` holds.",
			schema{"type": "array", "minItems": 1, "items": ref("case")}},
		{"to", "The worker node of every item.", strSchema},
		{"with", "The worker's input (default: {<as>: item, index: index}).", schema{}},
		{"concurrency", "Items of this map in flight at once (default: the run's limit).", intOrTemplate(1)},
		{"max_failures", "Failed items tolerated before the map fails (default 0).", intOrTemplate(0)},
		{"max_failure_ratio", "Fraction of failed items tolerated, from 0 to 1.",
			anyOf(schema{"type": "number", "minimum": 0, "maximum": 1}, templateSchema)},
		{"budget", "What each run of this map may use: tokens, usd, calls.", ref("budget")},
	},
}

var batchDef = &objDef{
	name: "batch",
	doc:  "Batch bounds.",
	fields: []fieldDef{
		{"max_items", "Items per batch at most.", intOrTemplate(1)},
		{"max_bytes", "A batch's JSON size in bytes at most (an item larger than this goes alone).", intOrTemplate(1)},
	},
}

var caseDef = &objDef{
	name: "case",
	doc:  "A conditional edge: go to `to` when `when` holds; a case without `when` always matches.",
	fields: []fieldDef{
		{"when", "The condition, an expression.", exprSchema},
		{"to", "The node to go to, or END.", strSchema},
	},
}

var retryDef = &objDef{
	name: "retry",
	doc:  "Retry policy.",
	fields: []fieldDef{
		{"max_attempts", "Attempts in all, the first included (default 3).", schema{"type": "integer", "minimum": 1}},
		{"delay", "Wait before the first retry (default 500ms).", durationSchema},
		{"backoff", "Multiply the wait by this after each retry (default 2).", schema{"type": "number", "minimum": 1}},
		{"max_delay", "The longest wait (default 30s).", durationSchema},
		{"jitter", "Randomise each wait between half and all of it (default true).", boolSchema},
		{"when", "Retry only errors for which this holds; sees `error` (kind, message, attempt).", exprSchema},
	},
}

var onErrorDef = &objDef{
	name: "on_error",
	doc:  "Record the error and go on.",
	fields: []fieldDef{
		{"update", "State updates; `error` holds kind, message and attempts.", schema{"type": "object"}},
		{"set", "Values for the next nodes of this chain.", schema{"type": "object", "propertyNames": identSchema}},
		{"next", "Where the chain goes on (default: it ends).", ref("next")},
	},
}
