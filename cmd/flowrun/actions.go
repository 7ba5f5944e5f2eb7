package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/spec"
)

func (e *env) actionsCommand() *cli.Command {
	return &cli.Command{
		Name:      "actions",
		Usage:     "list the actions, or describe one: parameters, output, examples",
		ArgsUsage: "[NAME]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "markdown", Usage: "print the reference of every action as Markdown (docs/actions.md)"},
		},
		Action: func(c *cli.Context) error {
			switch {
			case c.Bool("markdown"):
				actionsMarkdown(e.stdout, e.reg)
			case c.Args().Len() == 0:
				listActions(e.stdout, e.reg)
			case c.Args().Len() == 1:
				name := c.Args().First()
				a := e.reg.Lookup(name)
				if a == nil {
					return usageError("unknown action %q%s (run flowrun actions to list them)", name, spec.DidYouMean(name, e.reg.Names()))
				}
				describeAction(e.stdout, a)
			default:
				return usageError("actions: name at most one action")
			}
			return nil
		},
	}
}

func listActions(w io.Writer, reg *action.Registry) {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSUMMARY\tREAD-ONLY")
	for _, a := range reg.Specs() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Summary, yes(a.ReadOnly))
	}
	tw.Flush()
	writeTrimmed(w, table.String())
	fmt.Fprintln(w, "\nflowrun actions NAME describes one. Read-only actions have no effect besides their output:\nflowrun plan runs them, and only counts the calls of the others.")
}

// paramType describes a parameter's type for people: "list of strings", "duration".
func paramType(p action.Param) string {
	t := string(p.Type)
	if p.Type == action.Array {
		t = "list"
		if p.Items != "" && p.Items != action.Any {
			t = "list of " + string(p.Items) + "s"
		}
	}
	if len(p.Enum) > 0 {
		var vals []string
		for _, v := range p.Enum {
			vals = append(vals, fmt.Sprint(v))
		}
		t = strings.Join(vals, " | ")
	}
	return t
}

// paramDefault says whether a parameter is required, or its default.
func paramDefault(p action.Param) string {
	switch {
	case p.Required:
		return "required"
	case p.Default != nil:
		b, _ := json.Marshal(p.Default)
		return "default " + string(b)
	}
	return "optional"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// readOnlyNote says what flowrun plan does with an action's calls.
func readOnlyNote(a *action.Spec) string {
	if a.ReadOnly {
		return "Read-only: it has no effect besides its output, so `flowrun plan` runs it for real."
	}
	return "Not read-only: `flowrun plan` does not call it; it counts the call and assumes an output."
}

func describeAction(w io.Writer, a *action.Spec) {
	fmt.Fprintf(w, "%s: %s\n\n%s\n\n%s\n\nParameters (with:)\n", a.Name, a.Summary, strings.TrimSpace(a.Doc), readOnlyNote(a))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range a.Params {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, paramType(p), paramDefault(p), oneLine(p.Doc))
	}
	tw.Flush()
	for _, g := range a.OneOf {
		fmt.Fprintf(w, "  %s\n", oneOfText(g))
	}
	fmt.Fprintln(w, "\nOutput (output.<field> in update and set)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range a.Output {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, f.Type, oneLine(f.Doc))
	}
	tw.Flush()
	if len(a.Output) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, ex := range a.Examples {
		fmt.Fprintf(w, "\nExample: %s\n\n", ex.Summary)
		fmt.Fprint(w, indent(exampleNode(a, ex), "  "))
		if ex.Output != "" {
			fmt.Fprintf(w, "\n  # output:\n%s", indent(ex.Output, "  #   "))
		}
	}
}

func oneOfText(g action.OneOf) string {
	names := make([]string, len(g.Params))
	for i, n := range g.Params {
		names[i] = "`" + n + "`"
	}
	if g.Required {
		return "Give exactly one of " + strings.Join(names, ", ") + "."
	}
	return "Give at most one of " + strings.Join(names, ", ") + "."
}

// exampleNode renders an example as the node a user writes.
func exampleNode(a *action.Spec, ex action.Example) string {
	return fmt.Sprintf("action: %s\nwith:\n%s", a.Name, indent(ex.With, "  "))
}

func indent(text, prefix string) string {
	text = strings.TrimRight(text, "\n")
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			b.WriteString(strings.TrimRight(prefix, " ") + "\n")
			continue
		}
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

// actionsMarkdown renders docs/actions.md from the registry.
func actionsMarkdown(w io.Writer, reg *action.Registry) {
	fmt.Fprint(w, "# Actions reference\n\n")
	fmt.Fprint(w, "<!-- Generated from the action registry by `go run ./cmd/flowrun actions --markdown`; do not edit. -->\n\n")
	fmt.Fprint(w, "An action node runs one action: `action: NAME`, its parameters under `with:`, and its\n")
	fmt.Fprint(w, "result as `output` in `update`, `set` and `next`. Any parameter may be a template\n")
	fmt.Fprint(w, "(`\"${{ input.text }}\"`) computed per item; literal values are checked when the workflow\n")
	fmt.Fprint(w, "loads. `flowrun actions NAME` prints the same reference in the terminal.\n\n")
	fmt.Fprint(w, "Read-only actions have no effect besides their output: [`flowrun plan`](plan.md) runs\n")
	fmt.Fprint(w, "them for real, and only counts the calls of the others.\n\n")
	fmt.Fprint(w, "| action | summary | read-only |\n| --- | --- | --- |\n")
	for _, a := range reg.Specs() {
		fmt.Fprintf(w, "| [`%s`](#%s) | %s | %s |\n", a.Name, anchor(a.Name), cell(a.Summary), yes(a.ReadOnly))
	}
	for _, a := range reg.Specs() {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n%s\n\n%s\n\n", a.Name, a.Summary, strings.TrimSpace(a.Doc), readOnlyNote(a))
		fmt.Fprint(w, "### Parameters\n\n")
		var params [][]string
		for _, p := range a.Params {
			doc := p.Doc
			if p.Secret {
				doc += " Secret: never shown in output, errors, logs or events."
			}
			if len(p.SecretKeys) > 0 {
				doc += " The values of " + strings.Join(p.SecretKeys, ", ") + " are secret: never shown in output, errors, logs or events."
			}
			params = append(params, []string{"`" + p.Name + "`", cell(paramType(p)), cell(paramDefault(p)), cell(doc)})
		}
		mdTable(w, "None.\n", []string{"name", "type", "required / default", "description"}, params)
		fmt.Fprintln(w)
		for _, g := range a.OneOf {
			fmt.Fprintf(w, "%s\n\n", oneOfText(g))
		}
		fmt.Fprint(w, "### Output\n\n")
		var fields [][]string
		for _, f := range a.Output {
			fields = append(fields, []string{"`" + f.Name + "`", string(f.Type), cell(f.Doc)})
		}
		mdTable(w, "An empty object.\n", []string{"field", "type", "description"}, fields)
		for _, ex := range a.Examples {
			fmt.Fprintf(w, "\n### Example\n\n%s\n\n```yaml\n%s```\n", ex.Summary, exampleNode(a, ex))
			if ex.Output != "" {
				fmt.Fprintf(w, "\nOutput:\n\n```yaml\n%s\n```\n", strings.TrimRight(ex.Output, "\n"))
			}
		}
	}
}

// anchor is GitHub's heading anchor for an action name: dots dropped.
func anchor(name string) string { return strings.ReplaceAll(name, ".", "") }

// mdTable writes a Markdown table, or none when there are no rows.
func mdTable(w io.Writer, none string, header []string, rows [][]string) {
	if len(rows) == 0 {
		fmt.Fprint(w, none)
		return
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}
