package spec_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/spec"
)

// schemaFile is the committed schema, at the repository root.
const schemaFile = "../schema.json"

const refreshSchema = "go run ./cmd/flowrun schema > schema.json (or go test ./spec -run TestSchema -update)"

func init() {
	// The package's golden tests share one -update flag; define it unless another
	// test file of the package already has.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files with what the code produces now")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func builtinSchema(t *testing.T) (*action.Registry, []byte) {
	t.Helper()
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, spec.Schema(reg)
}

// TestSchema checks that the committed schema.json is what the language description
// and the built-in actions generate. Refresh it with -update.
func TestSchema(t *testing.T) {
	_, gen := builtinSchema(t)
	if updating() {
		if err := os.WriteFile(schemaFile, gen, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("cannot read the committed schema: %v; generate it: %s", err, refreshSchema)
	}
	if !bytes.Equal(got, gen) {
		t.Errorf("schema.json is stale; refresh it: %s\n(-committed +generated):\n%s",
			refreshSchema, cmp.Diff(strings.Split(string(got), "\n"), strings.Split(string(gen), "\n")))
	}
}

// compileSchema compiles the generated schema as draft 2020-12, which also checks it
// against the draft's meta-schema.
func compileSchema(t *testing.T) (*action.Registry, *jsonschema.Schema) {
	t.Helper()
	reg, gen := builtinSchema(t)
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource(spec.SchemaID, bytes.NewReader(gen)); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(spec.SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %#v", err)
	}
	return reg, sch
}

// yamlToJSON decodes a YAML file into JSON types, as an editor's YAML language
// server does before it applies the schema.
func yamlToJSON(t *testing.T, path string) any {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: not JSON data: %v", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

// TestSchemaAccepts checks that the schema accepts every example workflow and every
// workflow of testdata/schema/good, which the loader accepts too.
func TestSchemaAccepts(t *testing.T) {
	reg, sch := compileSchema(t)
	for _, file := range glob(t, "testdata/schema/good/*.yaml") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := spec.Load(file, reg); err != nil {
				t.Fatalf("the loader rejects a file meant to be good:\n%v", err)
			}
			if err := sch.Validate(yamlToJSON(t, file)); err != nil {
				t.Errorf("the schema rejects what the loader accepts:\n%#v", err)
			}
		})
	}
	// The example workflows are loaded and run by their own test; here, the schema
	// must accept each of them. Their data/ directories hold inputs, not workflows
	// (.ci/schema-check skips them too).
	err := filepath.WalkDir("../workflows", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "data" {
			return filepath.SkipDir
		}
		if d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return nil
		}
		t.Run(filepath.ToSlash(path), func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, path)); err != nil {
				t.Errorf("the schema rejects an example workflow:\n%#v", err)
			}
		})
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestSchemaRejects checks that the schema rejects each workflow of
// testdata/schema/bad, and that the loader, the real validator, does too.
func TestSchemaRejects(t *testing.T) {
	reg, sch := compileSchema(t)
	for _, file := range glob(t, "testdata/schema/bad/*.yaml") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, file)); err == nil {
				t.Errorf("the schema accepts a bad workflow (see its comment)")
			}
			if _, err := spec.Load(file, reg); err == nil {
				t.Errorf("the loader accepts a workflow the schema is meant to reject")
			}
		})
	}
}
