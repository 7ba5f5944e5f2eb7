package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/action"
)

// TestValidateLinearInTemplates: finding the positions of a string's templates
// walked the string from its start for each one, so that 32,000 templates in one
// string took 6.6 s to validate, and an 800 KB block scalar over 30 s. The walk now
// goes on from where it stopped: it steps over each character about once.
func TestValidateLinearInTemplates(t *testing.T) {
	reg, err := action.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	var block strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&block, "        line ${{ %d }} é\n", i)
	}
	for name, src := range map[string]string{
		"one line": "version: 1\nstate:\n  s: {type: string}\nnodes:\n  only:\n    update: {s: \"" + strings.Repeat("${{ 1 }}", 3000) + "\"}\n",
		"block":    "version: 1\nstate:\n  s: {type: string}\nnodes:\n  only:\n    update:\n      s: |\n" + block.String(),
	} {
		l := &loader{reg: reg, loading: map[string]bool{}, done: map[string]*Workflow{}}
		l.parse("workflow.yaml", []byte(src))
		if err := l.errs.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.walked > 2*len(src) {
			t.Errorf("%s: the locators stepped over %d characters of a %d-byte file", name, l.walked, len(src))
		}
	}
}
