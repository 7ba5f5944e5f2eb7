package main

import (
	"os/exec"
	"strings"
	"testing"
)

// importEdges is the package graph of DESIGN.md §1: each package and the packages
// of this module it may import directly. What they import in turn it may use too.
// action imports value (both stay leaves, standard library only besides): a
// parameter check needs the integer rule, and one rule has one home.
var importEdges = map[string][]string{
	"value":       {},
	"action":      {"value"},
	"spec":        {"action", "value"},
	"builtins":    {"action", "value"},
	"journal":     {"value"},
	"runtime":     {"spec", "journal", "action", "value"},
	"store":       {"runtime", "journal", "spec", "action", "value"},
	"natsexec":    {"runtime", "action", "value"},
	"limit":       {"runtime", "spec", "action"},
	"cmd/flowrun": {"store", "natsexec", "limit", "runtime", "journal", "spec", "builtins", "action", "value"},
	// An OpenAI-compatible stub for tests and benchmarks.
	"internal/llmstub": {},
	// A benchmark program: it starts the server the way the CLI does.
	"bench/natsbench": {"natsexec"},
	"bench/ratebench": {"internal/llmstub"},
}

// leaves may use no module outside the standard library (and this module's leaves).
var leaves = map[string]bool{"value": true, "action": true}

// TestImportDirection keeps the package graph as DESIGN.md §1 draws it, with no
// utility packages.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/flowrun/flowrun/"
	allowed := map[string]map[string]bool{}
	var reach func(from string, into map[string]bool)
	reach = func(from string, into map[string]bool) {
		for _, to := range importEdges[from] {
			if !into[to] {
				into[to] = true
				reach(to, into)
			}
		}
	}
	for pkg := range importEdges {
		allowed[pkg] = map[string]bool{}
		reach(pkg, allowed[pkg])
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		name := strings.TrimPrefix(pkg, mod)
		for _, bad := range []string{"util", "utils", "common", "helpers"} {
			if strings.HasSuffix(name, "/"+bad) || name == bad {
				t.Errorf("package %s: no utility packages", pkg)
			}
		}
		allow, known := allowed[name]
		if !known {
			if name != "workflows" { // a test-only package
				t.Errorf("package %s is not in the allowed graph; add it to DESIGN.md §1 and this test", pkg)
			}
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(deps)) {
			if dep == pkg {
				continue
			}
			if !strings.HasPrefix(dep, mod) {
				if leaves[name] {
					t.Errorf("%s imports %s: it may use the standard library only", name, dep)
				}
				continue
			}
			if d := strings.TrimPrefix(dep, mod); !allow[d] {
				t.Errorf("%s imports %s, against the allowed direction", name, d)
			}
		}
	}
}
