package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowrun/flowrun/limit"
)

// writePlan prints a plan for people: a table of the nodes, the totals, the rate
// limits and the budgets.
func writePlan(w io.Writer, p *limit.Plan) {
	fmt.Fprintf(w, "plan of %s (%s): at most %d %s in flight; no call was made but to read-only actions\n\n",
		p.Workflow, p.File, p.MaxWorkers, plural(p.MaxWorkers, "action", "actions"))
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tITEMS\tCALLS\tTOKENS IN\tTOKENS OUT\tUSD\tPEAK\tNOTES")
	for _, n := range p.Nodes {
		fmt.Fprintln(tw, strings.Join(planCells(p, n), "\t"))
	}
	t := p.Total
	at, note := "", ""
	if !t.Complete {
		at, note = "≥", "the rest depends on "+strings.Join(t.DependsOn, ", ")
	}
	if len(t.Unpriced) > 0 {
		note = strings.TrimPrefix(note+"; "+noPrice(t.Unpriced)+" (not in USD)", "; ")
	}
	usd := "-"
	switch {
	case p.Priced && t.USD == 0 && len(t.Unpriced) > 0:
		usd = "?"
	case p.Priced:
		usd = at + planDollars(t.USD)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%s%s\t%s%s\t%s%s\t%s\t\t%s\n", at, thousands(t.Calls), at, thousands(t.Tokens.Input),
		at, thousands(t.Tokens.Output), usd, note)
	tw.Flush()
	writeTrimmed(w, table.String())
	if len(p.Rates) > 0 {
		fmt.Fprintln(w, "\nrate limits")
		for _, r := range p.Rates {
			fmt.Fprintf(w, "  %s\n", rateLine(r))
		}
	}
	if len(p.Budgets) > 0 {
		fmt.Fprintln(w, "\nbudgets")
		for _, b := range p.Budgets {
			fmt.Fprintf(w, "  %s\n", budgetLine(b))
		}
	}
	if s := p.Stopped; s != nil {
		where := "node " + s.Node
		if s.Item != "" {
			where += " item " + s.Item
		}
		fmt.Fprintf(w, "\nthe dry run stopped at %s: %s\n", where, s.Error)
		if len(s.DependsOn) > 0 {
			fmt.Fprintf(w, "it read what %s would return, which a plan does not know: a real run may not fail there; what follows is not planned\n", strings.Join(s.DependsOn, ", "))
		} else {
			fmt.Fprintln(w, "a real run would fail there too: fix it before running")
		}
	}
}

// planCells are the cells of a node's row: "-" where a column does not apply,
// "?" where the plan cannot know, "~" before an approximate estimate.
func planCells(p *limit.Plan, n limit.PlanNode) []string {
	kind := n.Kind
	if n.Action != "" {
		kind = n.Action
	}
	items, calls, peak := "-", "-", "-"
	switch n.Kind {
	case "map", "parallel":
		items, peak = count(n.Items), count(n.Peak)
	case "action":
		calls, peak = count(n.Calls), count(n.Peak)
	}
	approx := ""
	if len(n.Approximate) > 0 {
		approx = "~"
	}
	in, out, usd := "-", "-", "-"
	switch {
	case n.Tokens != nil:
		in, out = approx+thousands(n.Tokens.Input), thousands(n.Tokens.Output)
		if p.Priced {
			usd = "?"
		}
		if n.USD != nil {
			usd = approx + planDollars(*n.USD)
		}
	case n.Models != nil || n.PerCall != nil:
		in, out = "?", "?"
		if p.Priced {
			usd = "?"
		}
	}
	return []string{strings.Repeat("  ", n.Depth) + n.Node, kind, items, calls, in, out, usd, peak, strings.Join(nodeNotes(n), "; ")}
}

// nodeNotes explains a node's row: what its counts depend on, what its estimate
// read, its prices and rate limits.
func nodeNotes(n limit.PlanNode) []string {
	var notes []string
	if len(n.DependsOn) > 0 {
		what := "runs"
		switch n.Kind {
		case "map", "parallel":
			what = "items"
		case "action":
			what = "calls"
		}
		notes = append(notes, fmt.Sprintf("%s depend on %s", what, strings.Join(n.DependsOn, ", ")))
	}
	if pc := n.PerCall; pc != nil {
		notes = append(notes, fmt.Sprintf("a call: %s in, %s out tokens", thousands(pc.Input), thousands(pc.Output)))
	}
	if len(n.Approximate) > 0 {
		notes = append(notes, "~ with: reads the output of "+strings.Join(n.Approximate, ", "))
	}
	if len(n.Unpriced) > 0 {
		notes = append(notes, noPrice(n.Unpriced))
	}
	if len(n.Rate) > 0 {
		notes = append(notes, "rate "+strings.Join(n.Rate, ", "))
	}
	return notes
}

func noPrice(models []string) string {
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = fmt.Sprintf("%q", m)
		if m == "" {
			names[i] = "(none given)"
		}
	}
	return "no price for model " + strings.Join(names, ", ")
}

// rateLine says what a rate limit implies: its calls and tokens, and the time
// its rates need for them at least.
func rateLine(r limit.PlanRate) string {
	var rates []string
	if r.Requests != "" {
		rates = append(rates, "requests "+r.Requests)
	}
	if r.Tokens != "" {
		rates = append(rates, "tokens "+r.Tokens)
	}
	if r.Concurrency > 0 {
		rates = append(rates, fmt.Sprintf("concurrency %d", r.Concurrency))
	}
	at := ""
	if !r.Complete {
		at = "at least "
	}
	line := fmt.Sprintf("%s (%s): %s%s %s, %s tokens", r.Name, strings.Join(rates, ", "), at, thousands(r.Calls),
		plural(int(r.Calls), "call", "calls"), thousands(r.TokensUsed))
	if r.Seconds > 0 {
		line += fmt.Sprintf(": ≥ %s at its %s rate", roundDuration(time.Duration(r.Seconds*float64(time.Second))), r.Binding)
	}
	return line
}

// budgetLine says whether a budget would hold, cap by cap.
func budgetLine(b limit.PlanBudget) string {
	who := "the run's budget"
	if b.Name != "run" {
		who = fmt.Sprintf("the budget of each run of map %s (%d %s)", b.Name, b.Runs, plural(b.Runs, "run", "runs"))
	}
	need, about := "needs", "about "
	if b.Name != "run" {
		need = "its largest run needs"
	}
	if len(b.DependsOn) > 0 {
		need += " at least"
		about = ""
	}
	var caps []string
	add := func(name, cap, needs, by string) {
		s := fmt.Sprintf("%s %s, %s %s", name, cap, need, needs)
		if by != "" {
			s += " (over by " + by + ")"
		}
		caps = append(caps, s)
	}
	exceeded := func(name string) bool {
		for _, e := range b.Exceeded {
			if e == name {
				return true
			}
		}
		return false
	}
	if c := b.Caps.Calls; c > 0 {
		by := ""
		if exceeded("calls") {
			by = thousands(b.Need.Calls - c)
		}
		add("calls", thousands(c), thousands(b.Need.Calls), by)
	}
	if c := b.Caps.Tokens; c > 0 {
		by := ""
		if exceeded("tokens") {
			by = thousands(b.Need.Tokens - c)
		}
		add("tokens", thousands(c), about+thousands(b.Need.Tokens), by)
	}
	if c := b.Caps.USD; c > 0 {
		by := ""
		if exceeded("usd") {
			by = planDollars(b.Need.USD - c)
		}
		needs := about + planDollars(b.Need.USD)
		switch {
		case len(b.Unpriced) > 0 && b.Need.USD == 0:
			needs = "an unknown amount"
		case len(b.Unpriced) > 0:
			needs = "more than " + planDollars(b.Need.USD)
		}
		add("usd", planDollars(c), needs, by)
	}
	verdict := "fits"
	switch b.Status {
	case limit.Exceeded:
		verdict = "would be exceeded"
		if b.Name != "run" {
			verdict = fmt.Sprintf("would be exceeded in %d of them", b.Over)
		}
	case limit.Unknown:
		verdict = "unknown"
	}
	line := fmt.Sprintf("%s: %s: %s", who, verdict, strings.Join(caps, "; "))
	if b.Status == limit.Unknown {
		var why []string
		if len(b.DependsOn) > 0 {
			why = append(why, "the rest depends on "+strings.Join(b.DependsOn, ", "))
		}
		if len(b.Unpriced) > 0 {
			why = append(why, noPrice(b.Unpriced)+": add it under limits.prices")
		}
		line += "; " + strings.Join(why, "; ")
	}
	return line
}

// writeTrimmed writes text without the spaces at the ends of its lines, which a
// tabwriter leaves after an empty last column.
func writeTrimmed(w io.Writer, text string) {
	for _, line := range strings.SplitAfter(text, "\n") {
		fmt.Fprint(w, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n")))
	}
}

// count is a known count, or "?".
func count(n *int64) string {
	if n == nil {
		return "?"
	}
	return thousands(*n)
}

// planDollars shows small amounts with enough digits to tell them apart.
func planDollars(f float64) string {
	switch {
	case f == 0:
		return "$0"
	case f >= 0.01:
		return fmt.Sprintf("$%.2f", f)
	case f >= 0.0001:
		return fmt.Sprintf("$%.4f", f)
	}
	return fmt.Sprintf("$%.6f", f)
}
