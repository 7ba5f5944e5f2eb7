package spec_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/spec"
)

// TestUses checks what expressions are found to read: constant member accesses
// name fields; anything else reads the whole variable.
func TestUses(t *testing.T) {
	src := `version: 1
state:
  files: {type: array}
  docs: {type: array}
  summaries: {type: array}
  name: string
nodes:
  fan:
    map:
      over: state.docs
      as: doc
      route:
        - when: len(doc) > 10 && state["name"] != ""
          to: work
      with:
        text: "${{ doc }}"
        name: "${{ state.files[index] }} of ${{ len(state.files) }}"
        all: "${{ map(state.summaries, #.summary) }}"
        plain: literal
    next: last
  work:
    action: text.count
    with: {text: "${{ input.text + input?.name }}"}
    update: {summaries: "${{ [output.words] }}"}
  last:
    update:
      name: "${{ let s = state; s.name }}"
      docs: "${{ state[input.name] }}"
`
	wf, err := spec.Parse("uses.yaml", []byte(src), registry(t))
	if err != nil {
		t.Fatal(err)
	}
	fan, work, last := wf.Node("fan"), wf.Node("work"), wf.Node("last")
	tests := []struct {
		name string
		got  spec.Uses
		want spec.Uses
	}{
		{"over", fan.Map.Over.Uses(), spec.Uses{"state": {Fields: []string{"docs"}}}},
		{"route when", fan.Map.Route[0].When.Uses(), spec.Uses{"doc": {All: true}, "state": {Fields: []string{"name"}}}},
		{"map with", fan.Map.With.Uses(), spec.Uses{"doc": {All: true}, "index": {All: true}, "state": {Fields: []string{"files", "summaries"}}}},
		{"constant field", fan.Map.With.Field("plain").Uses(), spec.Uses{}},
		{"input fields", work.With.Uses(), spec.Uses{"input": {Fields: []string{"name", "text"}}}},
		{"output", work.Update[0].Value.Uses(), spec.Uses{"output": {Fields: []string{"words"}}}},
		{"whole state through let", last.Update[0].Value.Uses(), spec.Uses{"state": {All: true}}},
		{"field chosen at run time", last.Update[1].Value.Uses(), spec.Uses{"state": {All: true}, "input": {Fields: []string{"name"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("uses (-want +got):\n%s", diff)
			}
		})
	}
	if !fan.Map.Over.Uses().Reads("state", "docs") || fan.Map.Over.Uses().Reads("state", "files") {
		t.Error("Reads: over reads state.docs and only that")
	}
}
