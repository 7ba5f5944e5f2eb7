package action

import (
	"slices"
	"strings"
	"time"

	"github.com/flowrun/flowrun/value"
)

// Call is one attempt of an action: what to do, as plain data that could be sent to
// another machine (it marshals to JSON). What the action may do there — run
// programs, use files, read the environment — is the executor's policy, not part
// of the call.
type Call struct {
	// Action is the action's name and Version its declaration's version.
	Action  string `json:"action"`
	Version string `json:"version,omitempty"`
	// Params are the parameters, bound to the declaration.
	Params Params `json:"params"`
	// RunID is the run making the call.
	RunID string `json:"run_id"`
	// Dir is the directory of the workflow file the node belongs to, relative to
	// the directory of the run's workflow, slash-separated: "" for the run's own
	// file, "lib" for a sub-workflow in lib/. Relative paths resolve against it.
	Dir string `json:"dir,omitempty"`
	// Node is the name of the workflow node making the call.
	Node string `json:"node"`
	// Item is the item's index path inside maps ("3", "3/0"), "" at top level.
	Item string `json:"item,omitempty"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// Timeout bounds the attempt (0: no bound). The runtime enforces it; an
	// executor that carries the call elsewhere enforces it there too.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Pool names the workers that should run the call ("" any; "local" this
	// process), for executors that spread calls over machines.
	Pool string `json:"pool,omitempty"`
	// Limits names the rate limits that govern the call (its node's `rate:`), for
	// the executor that enforces them.
	Limits []string `json:"limits,omitempty"`
	// Throttled says that a shared rate limit backs off for the call: an action
	// that would wait out a rate-limited reply and try again returns it at once
	// instead, as an error of kind rate_limited (see RateLimited), so that every
	// call of the limit waits together rather than each on its own.
	Throttled bool `json:"throttled,omitempty"`
	// Cache is the node's `cache:` (nil when it says nothing): whether the call
	// cache may answer for the call, and keep its output.
	Cache *bool `json:"cache,omitempty"`
	// Resend counts how often this attempt went out again after a shared rate
	// limit's pause (0 the first time): each sending is its own unit of work for
	// an executor that deduplicates.
	Resend int `json:"resend,omitempty"`
	// Budgets are the budgets of the maps the call is made in, outermost first.
	Budgets []Budget `json:"budgets,omitempty"`
	// Key identifies the call's unit of work: the same for every attempt of it and
	// after the run is resumed, and different for every other call of any run. It
	// serves as an idempotency key.
	Key string `json:"key"`
}

// Budget caps what the calls in its scope may use; a zero field is no cap.
type Budget struct {
	// Scope identifies what the budget covers: a map node's run, by its key; Node
	// is the map node's name, for messages.
	Scope  string  `json:"scope"`
	Node   string  `json:"node,omitempty"`
	Tokens int64   `json:"tokens,omitempty"`
	USD    float64 `json:"usd,omitempty"`
	Calls  int64   `json:"calls,omitempty"`
}

// Params are the parameters of a call, bound to the action's declaration by
// Spec.Bind: they hold every declared parameter that was given or has a default,
// each of its declared type. The typed accessors read them; a parameter that is
// absent reads as its type's zero value (use Has to tell).
type Params map[string]any

// Has reports whether the parameter was given or has a default.
func (p Params) Has(name string) bool {
	v, ok := p[name]
	return ok && v != nil
}

// String returns a string parameter.
func (p Params) String(name string) string {
	s, _ := p[name].(string)
	return s
}

// Int returns an integer parameter.
func (p Params) Int(name string) int {
	n, _ := value.Int(p[name])
	return n
}

// Float returns a number parameter.
func (p Params) Float(name string) float64 {
	f, _ := value.Float(p[name])
	return f
}

// Bool returns a boolean parameter.
func (p Params) Bool(name string) bool {
	b, _ := p[name].(bool)
	return b
}

// Duration returns a duration parameter (checked when it was bound).
func (p Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p.String(name))
	return d
}

// List returns a list parameter.
func (p Params) List(name string) []any {
	l, _ := p[name].([]any)
	return l
}

// Object returns an object parameter.
func (p Params) Object(name string) map[string]any {
	m, _ := p[name].(map[string]any)
	return m
}

// Strings returns a list-of-strings parameter.
func (p Params) Strings(name string) []string {
	l := p.List(name)
	out := make([]string, len(l))
	for i, e := range l {
		out[i], _ = e.(string)
	}
	return out
}

// Secrets returns the secret values of a call's parameters, what must never
// appear in errors, outputs or logs: the non-empty values of secret parameters
// (Param.Secret) and of an object parameter's secret keys (Param.SecretKeys). A
// value "Scheme credential" (an Authorization header) gives its credential too.
func (s *Spec) Secrets(p Params) []string {
	var out []string
	for i := range s.Params {
		prm := &s.Params[i]
		if prm.Secret {
			if v := p.String(prm.Name); v != "" {
				out = append(out, v)
			}
		}
		if len(prm.SecretKeys) == 0 {
			continue
		}
		for k, v := range p.Object(prm.Name) {
			str, ok := v.(string)
			if !ok || str == "" || !slices.ContainsFunc(prm.SecretKeys, func(sk string) bool { return strings.EqualFold(sk, k) }) {
				continue
			}
			out = append(out, str)
			if _, cred, ok := strings.Cut(str, " "); ok && len(strings.TrimSpace(cred)) >= 4 {
				out = append(out, strings.TrimSpace(cred))
			}
		}
	}
	return out
}
