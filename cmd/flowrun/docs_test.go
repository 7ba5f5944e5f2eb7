package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
)

var update = flag.Bool("update", false, "rewrite generated files (docs/actions.md) from the code")

// TestActionsDoc fails when docs/actions.md differs from what the registry
// generates. Refresh: go run ./cmd/flowrun actions --markdown > docs/actions.md
// (or go test ./cmd/flowrun -run TestActionsDoc -update).
func TestActionsDoc(t *testing.T) {
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	actionsMarkdown(&buf, reg)
	const path = "../../docs/actions.md"
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(committed), buf.String()); diff != "" {
		t.Errorf("docs/actions.md is stale; refresh it with\n\tgo run ./cmd/flowrun actions --markdown > docs/actions.md\n(-committed +generated):\n%s", diff)
	}
}

// TestPlanDoc runs the examples of docs/plan.md and compares what they print
// with what the page shows: the plan of its ```yaml workflow (as text and as
// JSON) and that of workflows/summarize.yaml.
func TestPlanDoc(t *testing.T) {
	src, err := os.ReadFile("../../docs/plan.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string][]string{} // fence info → the blocks' texts, in order
	for _, part := range strings.Split(string(src), "\n```")[1:] {
		info, body, _ := strings.Cut(part, "\n")
		if info != "" {
			blocks[info] = append(blocks[info], body)
		}
	}
	if len(blocks["yaml"]) != 1 || len(blocks["text"]) != 2 || len(blocks["json"]) != 1 {
		t.Fatalf("docs/plan.md: want one yaml, two text and one json block; got %d, %d, %d", len(blocks["yaml"]), len(blocks["text"]), len(blocks["json"]))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "articles.yaml"), []byte(blocks["yaml"][0]), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plan := func(in string, args ...string) string {
		t.Helper()
		t.Chdir(in)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"flowrun", "plan"}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("flowrun plan %v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	for i, tt := range []struct{ dir, file string }{{dir, "articles.yaml"}, {root, "workflows/summarize.yaml"}} {
		want := strings.TrimPrefix(blocks["text"][i], "$ flowrun plan "+tt.file+"\n") + "\n"
		if diff := cmp.Diff(want, plan(tt.dir, tt.file)); diff != "" {
			t.Errorf("docs/plan.md: the plan of %s differs (-doc +got):\n%s", tt.file, diff)
		}
	}
	var doc, got any
	if err := json.Unmarshal([]byte(blocks["json"][0]), &doc); err != nil {
		t.Fatalf("docs/plan.md: the JSON example: %v", err)
	}
	if err := json.Unmarshal([]byte(plan(dir, "articles.yaml", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(doc, got); diff != "" {
		t.Errorf("docs/plan.md: the JSON plan differs (-doc +got):\n%s", diff)
	}
}
