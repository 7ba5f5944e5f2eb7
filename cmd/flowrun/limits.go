package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/limit"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/store"
)

// budgetFlags are run's and resume's flags that replace caps of limits.budget.
func budgetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "budget-usd", Usage: "the run's budget in US dollars, over every attempt (replaces limits.budget.usd)"},
		&cli.Int64Flag{Name: "budget-tokens", Usage: "the run's budget in tokens, over every attempt (replaces limits.budget.tokens)"},
		&cli.Int64Flag{Name: "budget-calls", Usage: "the run's budget in calls, over every attempt (replaces limits.budget.calls)"},
	}
}

func budgetOf(c *cli.Context) (action.Budget, error) {
	b := action.Budget{USD: c.Float64("budget-usd"), Tokens: c.Int64("budget-tokens"), Calls: c.Int64("budget-calls")}
	if b.USD < 0 || b.Tokens < 0 || b.Calls < 0 {
		return b, usageError("--budget-usd, --budget-tokens and --budget-calls take positive numbers")
	}
	return b, nil
}

// limits wraps a run's executor with its rate limits and budgets.
func (e *env) limits(c *cli.Context, wf *spec.Workflow, next action.Executor, maxWorkers int, ss *store.Session) (*limit.Limits, error) {
	b, err := budgetOf(c)
	if err != nil {
		return nil, err
	}
	opts := limit.Options{Registry: e.reg, MaxConcurrency: slotsOf(wf, maxWorkers), Budget: b}
	if ss != nil {
		opts.Spent = ss.Meta.Spent
	}
	return limit.New(wf, next, opts), nil
}

// slotsOf is about how many actions a run keeps in flight: a rate limit's
// concurrency when it names none.
func slotsOf(wf *spec.Workflow, maxWorkers int) int {
	if maxWorkers > 0 {
		return maxWorkers
	}
	if v := wf.Limits.Concurrency; v != nil {
		if n, ok := v.Const(); ok {
			if i, ok := n.(int); ok && i > 0 {
				return i
			}
		}
	}
	return spec.DefaultConcurrency
}

// writeLimits prints a line per rate limit and budget that saw calls.
func writeLimits(w io.Writer, lim *limit.Limits) {
	if lim == nil {
		return
	}
	for _, s := range lim.Stats() {
		u := s.Usage
		if u.Calls == 0 && s.Reached == "" {
			continue
		}
		var parts []string
		parts = append(parts, fmt.Sprintf("%d %s", u.Calls, plural(int(u.Calls), "call", "calls")))
		if u.Tokens > 0 {
			parts = append(parts, fmt.Sprintf("%s tokens", thousands(u.Tokens)))
		}
		if u.USD > 0 {
			parts = append(parts, dollars(u.USD))
		}
		if u.Waits > 0 {
			parts = append(parts, fmt.Sprintf("%d waited (%s in all)", u.Waits, roundDuration(time.Duration(u.WaitMS*float64(time.Millisecond)))))
		}
		if u.RateLimited > 0 {
			parts = append(parts, fmt.Sprintf("%d rate-limited (429), concurrency now %.0f", u.RateLimited, u.Concurrency))
		}
		what := "limit " + s.Name
		if s.Budget {
			what = s.Name
		}
		fmt.Fprintf(w, "flowrun: %s: %s\n", what, strings.Join(parts, ", "))
	}
}

// budgetHint is the resume command for a run a budget stopped, with a larger
// budget for each cap it reached.
func budgetHint(resume string, lim *limit.Limits) string {
	var flags []string
	for _, s := range lim.Stats() {
		if !s.Budget || s.Reached == "" {
			continue
		}
		// The message names the caps reached: "usd $0.50 (...)", "tokens 1000 (...)".
		for _, f := range []struct{ word, flag string }{{"usd ", "--budget-usd"}, {"tokens ", "--budget-tokens"}, {"calls ", "--budget-calls"}} {
			i := strings.Index(s.Reached, ": "+f.word)
			if j := strings.Index(s.Reached, "; "+f.word); i < 0 && j >= 0 {
				i = j
			}
			if i < 0 {
				continue
			}
			rest := strings.TrimPrefix(s.Reached[i+2+len(f.word):], "$")
			num := rest[:strings.IndexAny(rest+" ", " ")]
			if v, err := strconv.ParseFloat(num, 64); err == nil && s.Name == "budget" {
				flags = append(flags, fmt.Sprintf("%s %s", f.flag, strconv.FormatFloat(v*2, 'f', -1, 64)))
			}
		}
	}
	if len(flags) == 0 {
		return "flowrun: finished items are saved; the budget of a map is the workflow's: raise it in the file and resume with --force: " + resume
	}
	return "flowrun: finished items are saved; continue with a larger budget (this one doubles it): " + resume + " " + strings.Join(flags, " ")
}

func dollars(f float64) string {
	if f > 0 && f < 0.01 {
		return fmt.Sprintf("$%.4f", f)
	}
	return fmt.Sprintf("$%.2f", f)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

var _ runtime.Reporter = (*limit.Limits)(nil)
