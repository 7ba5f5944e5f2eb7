package spec_test

import (
	"strings"
	"testing"

	"github.com/flowrun/flowrun/spec"
)

// TestLimits checks that inputs built to exhaust the loader are refused with a clear
// message, quickly and without exhausting memory.
func TestLimits(t *testing.T) {
	reg := registry(t)
	const node = "nodes:\n  only:\n    action: log\n    with: {message: hi}\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"huge file", "version: 1\n" + node + "# " + strings.Repeat("x", 9<<20) + "\n",
			"fuzz.yaml:1:1: the file is 9 MiB; workflow files are limited to 8 MiB"},
		{"long expression", "version: 1\nnodes:\n  only:\n    action: log\n    with: {message: \"${{ " +
			strings.Repeat("1 + ", 2000) + "1 }}\"}\n",
			"fuzz.yaml:5:25: expression is 8003 characters long; the limit is 4096: move the logic into an action or split it"},
		{"deep expression", "version: 1\nnodes:\n  only:\n    action: log\n    with: {message: \"${{ " +
			strings.Repeat("-", 2500) + "1 }}\"}\n",
			"fuzz.yaml:5:25: expression is too complex (more than 2000 operations)"},
		{"deep nesting", "version: 1\n" + node + "description: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n",
			"fuzz.yaml:"},
		{"alias bomb of templates", "version: 1\nnodes:\n  only:\n    action: log\n    with:\n      message:\n" +
			"        a: &a [\"${{ 1 }}\",\"${{ 2 }}\",\"${{ 3 }}\",\"${{ 4 }}\",\"${{ 5 }}\",\"${{ 6 }}\",\"${{ 7 }}\",\"${{ 8 }}\",\"${{ 9 }}\"]\n" +
			"        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
			"        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n" +
			"        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
			"fuzz.yaml:13:"},
		{"alias in a merge loop", "version: 1\nbase: &b {action: log, with: {message: hi}}\nnodes:\n  only: {<<: *b}\n",
			`fuzz.yaml:2:1: unknown key "base" in workflow`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse("fuzz.yaml", []byte(tt.src), reg)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%.300s\nwant a prefix of:\n%s", err, tt.want)
			}
		})
	}
}

// TestMergeKeys checks YAML anchors and merge keys, which let nodes share settings.
func TestMergeKeys(t *testing.T) {
	src := `version: 1
state:
  n: {type: number, reducer: sum}
nodes:
  first:
    <<: &common
      action: text.count
      retry: {max_attempts: 2, delay: 1ms}
    with: {text: a b}
    update: {n: "${{ output.words }}"}
    next: second
  second:
    <<: *common
    with: {text: c}
`
	wf, err := spec.Parse("merge.yaml", []byte(src), registry(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range wf.Nodes {
		if n.Action == nil || n.Action.Name != "text.count" || n.Retry == nil || n.Retry.MaxAttempts != 2 {
			t.Errorf("node %s did not get the merged settings: %+v", n.Name, n)
		}
	}
}
