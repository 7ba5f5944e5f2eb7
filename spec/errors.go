package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a workflow file. Line and Col count from 1; Col counts
// characters (runes), as editors do.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity tells an error from a warning.
type Severity int

// The severities of a diagnostic.
const (
	SevError Severity = iota
	SevWarning
)

func (s Severity) String() string {
	if s == SevWarning {
		return "warning"
	}
	return "error"
}

// Error is one problem found in a workflow file, at a position.
type Error struct {
	Pos      Pos
	Msg      string
	Severity Severity
}

func (e *Error) Error() string {
	if e.Severity == SevWarning {
		return e.Pos.String() + ": warning: " + e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Errors is a list of problems, sorted by position once loading is done. As an error
// it prints one problem per line.
type Errors []*Error

func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error when it holds at least one error (not only warnings),
// else nil.
func (l Errors) Err() error {
	for _, e := range l {
		if e.Severity == SevError {
			return l
		}
	}
	return nil
}

// Warnings returns the warnings of l.
func (l Errors) Warnings() Errors {
	var w Errors
	for _, e := range l {
		if e.Severity == SevWarning {
			w = append(w, e)
		}
	}
	return w
}

func (l Errors) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return l[i].Msg < l[j].Msg
	})
}

// dedupe drops exact repeats, which arise when a shared node (a YAML alias) is
// checked from each place that uses it. l must be sorted.
func (l Errors) dedupe() Errors {
	out := l[:0]
	for i, e := range l {
		if i > 0 && e.Pos == l[i-1].Pos && e.Msg == l[i-1].Msg {
			continue
		}
		out = append(out, e)
	}
	return out
}

// DidYouMean returns `; did you mean "x"?` for the candidate closest to name, when
// one is close enough to be a likely typo (edit distance below 3), else "".
func DidYouMean(name string, candidates []string) string { return suggest(name, candidates) }

// suggest returns `; did you mean "x"?` for the candidate closest to name, when one
// is close enough to be a likely typo, else "".
func suggest(name string, candidates []string) string {
	if best := closest(name, candidates); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

func closest(name string, candidates []string) string {
	best, bestDist := "", 3 // edit distance < 3, as HCL's didyoumean
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(lower, strings.ToLower(c))
		if d < bestDist || (d == bestDist && best != "" && c < best) {
			best, bestDist = c, d
		}
	}
	if bestDist >= len([]rune(name)) {
		return "" // "a" is one edit from every one-letter name
	}
	return best
}

// distance is the Damerau-Levenshtein (optimal string alignment) distance, so a
// swapped pair of letters ("wroker") counts as one edit.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	if len(s) > 64 || len(t) > 64 {
		return 99
	}
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}

// quoted formats names as "a", "b" or "c".
func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
