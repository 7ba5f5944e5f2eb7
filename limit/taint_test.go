package limit

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/spec"
)

// TestTaint checks which values the analysis finds to depend on placeholders,
// and on which nodes': read-only actions pass taint on, others start it; it
// flows through state fields, set values, a map's with and sub-workflows.
func TestTaint(t *testing.T) {
	dir := planCorpus(t)
	type want struct {
		fields map[string][]string // state field → origins (absent: none)
		outs   map[string][]string // node → the origins of its output
		counts map[string][]string // map node → the origins of its number of items
		with   map[string][]string // node → the origins of its with
	}
	tests := []struct {
		file string
		sub  string // a sub-workflow's name, to check its fields and nodes instead
		want want
	}{
		{"exact.yaml", "", want{
			fields: map[string][]string{"notes": {"long"}},
			outs:   map[string][]string{"long": {"long"}, "note": {"note"}},
			counts: map[string][]string{},
			with:   map[string][]string{"note": {"long"}},
		}},
		{"depends.yaml", "", want{
			fields: map[string][]string{"outline": {"plan_topics"}, "topics": {"plan_topics"}, "drafts": {"draft", "plan_topics"}},
			outs:   map[string][]string{"plan_topics": {"plan_topics"}, "split": {"plan_topics"}, "draft": {"draft"}},
			counts: map[string][]string{"write": {"plan_topics"}},
			with:   map[string][]string{"split": {"plan_topics"}, "draft": {"plan_topics"}},
		}},
		{"branch.yaml", "", want{
			fields: map[string][]string{"answers": {"ask", "explain"}},
			outs:   map[string][]string{"ask": {"ask"}, "explain": {"explain"}},
			counts: map[string][]string{},
			with:   map[string][]string{},
		}},
		{"parent.yaml", "", want{
			fields: map[string][]string{"parts": {"sub.rewrite"}},
			outs:   map[string][]string{"section": {"sub.rewrite"}},
			counts: map[string][]string{},
			with:   map[string][]string{},
		}},
		{"parent.yaml", "sub", want{
			fields: map[string][]string{"parts": {"sub.rewrite"}},
			outs:   map[string][]string{"grade": {"sub.grade"}, "rewrite": {"sub.rewrite"}},
			counts: map[string][]string{"again": {"sub.rewrite"}},
			with:   map[string][]string{"grade": {"sub.rewrite"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.sub, func(t *testing.T) {
			wf := loadPlanned(t, dir, tt.file)
			ta := analyse(wf)
			w := wf
			if tt.sub != "" {
				for _, inc := range workflows(wf) {
					if inc.Name == tt.sub {
						w = inc
					}
				}
			}
			got := want{fields: map[string][]string{}, outs: map[string][]string{}, counts: map[string][]string{}, with: map[string][]string{}}
			for _, f := range w.State {
				if o := ta.field[f]; len(o) > 0 {
					got.fields[f.Name] = o.list()
				}
			}
			for _, n := range w.Nodes {
				if o := ta.out[n]; len(o) > 0 {
					got.outs[n.Name] = o.list()
				}
				if n.Map != nil {
					if o := ta.count(w, n.Map); len(o) > 0 {
						got.counts[n.Name] = o.list()
					}
				}
				if o := ta.with(w, n); len(o) > 0 {
					got.with[n.Name] = o.list()
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("taint (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLayout checks where a plan shows each node and what decides how often it
// runs: the maps around it and the conditions on the way to it, at any depth.
func TestLayout(t *testing.T) {
	dir := planCorpus(t)
	tests := []struct {
		file string
		want []string // path: the origins of its reach
	}{
		{"exact.yaml", []string{"list:", "load:", "load/read:", "count:", "count/long:", "count/short:", "note:"}},
		{"depends.yaml", []string{"plan_topics:", "split:", "write:", "write/draft:plan_topics"}},
		{"branch.yaml", []string{"fan:", "fan/ask:", "fan/explain:ask"}},
		{"parent.yaml", []string{"each:", "each/section:", "each/section/split:", "each/section/per_chunk:",
			"each/section/per_chunk/grade:sub.rewrite", "each/section/rewrite:", "each/section/again:"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			wf := loadPlanned(t, dir, tt.file)
			var got []string
			for _, r := range analyse(wf).rows {
				got = append(got, path(r)+":"+join(r.reach.list()))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("layout (-want +got):\n%s", diff)
			}
		})
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// TestNodeOf checks that a call's key leads to the node that made it, through
// items and sub-workflows, and to no node when it names another.
func TestNodeOf(t *testing.T) {
	wf := loadPlanned(t, planCorpus(t), "parent.yaml")
	sub := wf.Node("section").Workflow
	p := &planner{top: wf}
	tests := []struct {
		key, node string
		want      *spec.Node
	}{
		{"plan/@1:each[1]@1:section>@1:split", "split", sub.Node("split")},
		{"plan/@1:each[0]@1:section>@2:per_chunk[3]@1:grade", "grade", sub.Node("grade")},
		{"plan/@1:each[0]@1:section>@4:again[0]@1:grade", "grade", sub.Node("grade")},
		{"plan/@1:each[0]@1:section", "section", wf.Node("section")},
		{"plan/@1:each[0]@1:section>@1:split", "grade", nil},
		{"plan/@1:nowhere", "nowhere", nil},
		{"plan/@1:each[0", "each", nil},
		{"plan/@1:each>@1:split", "split", nil},
		{"plan/#", "x", nil},
	}
	for _, tt := range tests {
		if got := p.nodeOf(&action.Call{Key: tt.key, Node: tt.node}); got != tt.want {
			t.Errorf("nodeOf(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
