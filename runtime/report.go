package runtime

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Report writes the failed items, one line each, in item order: those that failed
// the run, those tolerated by max_failures, and those handled by on_error.
func Report(failures []Failure) string { return ReportAtMost(failures, len(failures)) }

// ReportAtMost is Report with at most limit item lines, those that failed the run
// first; the others are counted by kind and error (a map of a million items can
// fail fifty thousand times).
func ReportAtMost(failures []Failure, limit int) string {
	if len(failures) == 0 {
		return ""
	}
	sorted := sortFailures(append([]Failure(nil), failures...))
	counts := [3]int{}
	for _, f := range sorted {
		counts[category(f)]++
	}
	var b strings.Builder
	var parts []string
	if counts[0] > 0 || counts[1] == 0 && counts[2] == 0 {
		parts = append(parts, fmt.Sprintf("failed items: %d", counts[0]))
	}
	if counts[1] > 0 {
		parts = append(parts, fmt.Sprintf("tolerated failures: %d", counts[1]))
	}
	if counts[2] > 0 {
		parts = append(parts, fmt.Sprintf("errors handled by on_error: %d", counts[2]))
	}
	b.WriteString(strings.Join(parts, "; ") + "\n")
	shown, rest := sorted, []Failure(nil)
	if len(sorted) > limit {
		slices.SortStableFunc(sorted, func(a, b Failure) int { return category(a) - category(b) })
		shown, rest = sorted[:limit], sorted[limit:]
	}
	for _, f := range shown {
		item := f.Item
		if item == "" {
			item = "-"
		}
		tag := [...]string{"", " (tolerated)", " (handled by on_error)"}[category(f)]
		plural := "s"
		if f.Attempts == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, "  node %s item %s%s: %d attempt%s, %s: %s\n", f.Node, item, tag, f.Attempts, plural, f.Kind, f.Error)
	}
	if len(rest) > 0 {
		fmt.Fprintf(&b, "  ... and %d more: %s\n", len(rest), groups(rest, 5))
	}
	return b.String()
}

// sortFailures sorts failures in item order (stable: at one item, as they came).
func sortFailures(f []Failure) []Failure {
	sort.SliceStable(f, func(i, j int) bool { return pathLess(f[i].Item, f[j].Item) })
	return f
}

// category orders failures: 0 failed the run, 1 tolerated, 2 handled.
func category(f Failure) int {
	switch {
	case f.Handled:
		return 2
	case f.Tolerated:
		return 1
	}
	return 0
}

var digits = regexp.MustCompile(`[0-9]+`)

// groups counts failures by node, kind and error (numbers in it made alike), the
// largest groups first, at most max of them.
func groups(failures []Failure, max int) string {
	type group struct {
		key string
		n   int
	}
	index := map[string]int{}
	var gs []group
	for _, f := range failures {
		msg := f.Error
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		key := fmt.Sprintf("node %s, %s: %s", f.Node, f.Kind, digits.ReplaceAllString(msg, "#"))
		if i, ok := index[key]; ok {
			gs[i].n++
			continue
		}
		index[key] = len(gs)
		gs = append(gs, group{key, 1})
	}
	slices.SortStableFunc(gs, func(a, b group) int { return cmp.Compare(b.n, a.n) })
	var out []string
	for i, g := range gs {
		if i == max {
			others := 0
			for _, g := range gs[max:] {
				others += g.n
			}
			out = append(out, fmt.Sprintf("%d with other errors", others))
			break
		}
		out = append(out, fmt.Sprintf("%d × %s", g.n, g.key))
	}
	return strings.Join(out, "; ")
}

// pathLess orders index paths numerically: "2" < "10", "3" < "3/0".
func pathLess(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		if len(as[i]) != len(bs[i]) {
			return len(as[i]) < len(bs[i])
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}
