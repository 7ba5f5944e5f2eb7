// Package action declares what an action is and how a call of one is carried out.
//
// A Spec declares an action: its name, documentation, parameters, output and the
// Func that runs it. It is the single source of truth for the action: the loader
// checks a node's `with:` against Spec.Params, the JSON Schema for workflow files
// derives each action's `with:` schema from it, and `flowrun actions` and
// docs/actions.md are rendered from it. A Registry holds the declarations a
// program knows.
//
// A Call is one attempt of an action as plain data: the action's name, its bound
// Params, and where in which run it is made. An Executor carries calls out; the
// runtime makes every call through one. Registry.Local is the executor that runs
// calls in this process, granting actions what its Env allows (exec, paths, the
// environment); other executors run calls on other machines, replay mocks, or wrap
// an executor with rate limits and caches.
//
// The package is a leaf of flowrun's import graph: it uses the standard library and
// the value model (package value) only.
package action

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Spec declares one action. Built-in actions and actions registered by library users
// are declared the same way.
type Spec struct {
	// Name is lower-case with dots, as written after `action:` (text.summarize).
	Name string
	// Summary is one line for listings.
	Summary string
	// Doc is the longer description, in Markdown.
	Doc string
	// Params are the action's `with:` parameters, in documentation order.
	Params []Param
	// OneOf lists groups of parameters of which at most one may be given
	// (exactly one when the group is Required).
	OneOf []OneOf
	// Output describes the fields of the object the action returns.
	Output []Field
	// Examples show the action at work; a test runs every one.
	Examples []Example
	// Version changes when the action gives other results for the same parameters;
	// a call carries it (a call cache keys on it). Empty means "1".
	Version string
	// Meter, when set, says how the action's calls use a metered model, for rate
	// limits on tokens, budgets and `flowrun plan`.
	Meter *Meter
	// NoCache marks an action whose effects a replay would skip (running a
	// program, writing a file): the call cache never answers for it.
	NoCache bool
	// ReadOnly says that a call has no effect besides its output, needs no
	// network, no program and no waiting, and reads at most files: `flowrun plan`
	// runs read-only calls for real (to learn, say, how many files a fan-out
	// reads) and makes none of the others, which it only counts.
	ReadOnly bool
	// Func runs one attempt of the action.
	Func Func
}

// Meter describes how calls of an action use a metered model (an LLM): which
// model, and how many tokens, guessed before a call and read from its output after.
type Meter struct {
	// ModelParam is the parameter that names the model, and ModelEnv the
	// environment variable it defaults to ("" if none).
	ModelParam, ModelEnv string
	// Estimate guesses the tokens of a call from its parameters.
	Estimate func(p Params) Usage
	// Used reads the tokens a call used from its output; false when the output
	// does not say.
	Used func(out map[string]any) (Usage, bool)
	// Placeholder, when set, is the output `flowrun plan` assumes for a call
	// it does not make, given the call's model and estimated usage: for a chat
	// model, a reply as long as the estimate, so that a prompt built from it
	// later is as long as it would be. Output fields it leaves out are their
	// types' zero values.
	Placeholder func(model string, u Usage) map[string]any
}

// Model is the model a call with these parameters uses, given the environment.
func (m *Meter) Model(p Params, getenv func(string) string) string {
	if s := p.String(m.ModelParam); s != "" {
		return s
	}
	if m.ModelEnv != "" && getenv != nil {
		return getenv(m.ModelEnv)
	}
	return ""
}

// Usage counts the tokens of a call: the prompt's and the reply's.
type Usage struct {
	Input, Output int
}

// Total is the tokens in all.
func (u Usage) Total() int { return u.Input + u.Output }

// Func runs one attempt of an action. It must honour ctx: when ctx is done it returns
// promptly. call holds the parameters, bound to the declaration (see Params); env is
// what the executor grants the action (see Env). The returned object is what
// `output` holds in `update` and `set`; its values are normalised to JSON types by
// the runtime. A returned *Error controls how retries and error handlers see the
// failure; any other error is a retryable action error.
type Func func(ctx context.Context, call *Call, env *Env) (map[string]any, error)

// Type is the type of a parameter or an output field, named as in JSON Schema, plus
// "duration" (a string such as "150ms" or "2m") and "any".
type Type string

// The types of parameters and output fields.
const (
	String   Type = "string"
	Number   Type = "number"
	Integer  Type = "integer"
	Boolean  Type = "boolean"
	Array    Type = "array"
	Object   Type = "object"
	Duration Type = "duration"
	Any      Type = "any"
)

// Param declares one `with:` parameter.
type Param struct {
	Name     string
	Type     Type
	Items    Type // element type when Type is Array; "" means any
	Required bool
	Default  any   // applied when the parameter is not given; nil means none
	Enum     []any // allowed values, when the set is closed
	Doc      string
	// Secret parameters (API keys) are never shown in errors, logs or events.
	Secret bool
	// SecretKeys, for an object parameter, are the keys (in any case) whose values
	// are secret: the Authorization header among a request's headers.
	SecretKeys []string
}

// OneOf is a group of mutually exclusive parameters.
type OneOf struct {
	Params   []string
	Required bool // exactly one must be given, not at most one
}

// Field describes one field of an action's output.
type Field struct {
	Name string
	Type Type
	Doc  string
}

// Example is a documented use of an action. With and Output are YAML texts so the
// documentation shows them as a user writes them; Output is the exact result, or empty
// when it cannot be pinned (it depends on a server or on time).
type Example struct {
	Summary string
	With    string
	Output  string
}

// Error is an action failure that says whether a retry may help, and carries details
// that `retry.when` and `on_error` see as fields of `error`.
type Error struct {
	Msg string
	// Permanent errors are not retried unless `retry.when` asks for it
	// (an HTTP 404, a bad parameter); others are (a 503, a timeout).
	Permanent bool
	// Kind, when set, is the error's kind as `retry.when` and `on_error` see it in
	// error.kind (timeout, panic, lost, ...); empty means "action".
	Kind string
	// Fields are extra fields of `error` in expressions, such as status or exit_code.
	Fields map[string]any
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Panicked is the error of an action that panicked with v, given the stack
// debug.Stack() took in the recovering function: kind "panic", and a message that
// names the function that panicked.
func Panicked(v any, stack []byte) *Error {
	site := ""
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && i+2 < len(lines) {
			fn := lines[i+2]
			if p := strings.LastIndex(fn, "("); p > 0 {
				fn = fn[:p]
			}
			site = " (in " + strings.TrimSpace(fn) + ")"
			break
		}
	}
	return &Error{Kind: "panic", Msg: fmt.Sprintf("action panicked: %v%s", v, site)}
}

// The kinds of errors executors and actions give besides an action's own failures.
const (
	// KindRateLimited is a reply that says to slow down (HTTP 429); its Fields
	// hold "retry_after", the seconds the server asked to wait (0 if it did not
	// say), and "status".
	KindRateLimited = "rate_limited"
	// KindBudget is a call refused because it would pass a budget.
	KindBudget = "budget"
)

// RateLimited is the error of a call a server refused for its rate (status, and
// the wait it asked for, negative if none), for a Throttled call.
func RateLimited(msg string, status int, retryAfter time.Duration) *Error {
	fields := map[string]any{"status": status, "retry_after": 0.0}
	if retryAfter >= 0 {
		fields["retry_after"] = retryAfter.Seconds()
	}
	return &Error{Kind: KindRateLimited, Msg: msg, Fields: fields}
}

// Errorf returns a retryable action error.
func Errorf(format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Msg: err.Error(), Err: errorsUnwrap(err)}
}

// Permanentf returns an action error that is not retried by default.
func Permanentf(format string, args ...any) *Error {
	e := Errorf(format, args...)
	e.Permanent = true
	return e
}

func errorsUnwrap(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return nil
}
