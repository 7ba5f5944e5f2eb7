package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the package graph as STYLE.md draws it:
// cmd -> runtime, spec, builtins, action; runtime -> spec, action; spec -> action;
// builtins -> action; action -> the standard library only. No utility packages.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/flowrun/flowrun/"
	allowed := map[string][]string{
		"action":      {},
		"builtins":    {"action"},
		"spec":        {"action"},
		"runtime":     {"spec", "action"},
		"cmd/flowrun": {"runtime", "spec", "builtins", "action"},
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
				t.Errorf("package %s is not in the allowed graph; add it to STYLE.md and this test", pkg)
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
				if name == "action" {
					t.Errorf("action imports %s: it may use the standard library only", dep)
				}
				continue
			}
			ok := false
			for _, a := range allow {
				ok = ok || strings.TrimPrefix(dep, mod) == a
			}
			if !ok {
				t.Errorf("%s imports %s, against the allowed direction", name, strings.TrimPrefix(dep, mod))
			}
		}
	}
}
