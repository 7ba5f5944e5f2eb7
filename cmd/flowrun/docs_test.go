package main

import (
	"bytes"
	"flag"
	"os"
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
