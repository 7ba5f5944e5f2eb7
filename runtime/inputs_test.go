package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/runtime"
)

func TestParseInput(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "list.json"), []byte(`[1, 2.5, "x"]`), 0o644)
	os.WriteFile(filepath.Join(dir, "obj.yaml"), []byte("a: 1\nb: [x, y]\n"), 0o644)
	tests := []struct {
		arg  string
		name string
		want any
		err  string
	}{
		{arg: "n=3", name: "n", want: 3},
		{arg: "f=2.5", name: "f", want: 2.5},
		{arg: "big=1e3", name: "big", want: 1000},
		{arg: "xs=[1,2]", name: "xs", want: []any{1, 2}},
		{arg: `o={"k": true}`, name: "o", want: map[string]any{"k": true}},
		{arg: "s=hello world", name: "s", want: "hello world"},
		{arg: `q="quoted"`, name: "q", want: "quoted"},
		{arg: "e=", name: "e", want: ""},
		{arg: "eq=a=b", name: "eq", want: "a=b"},
		{arg: "two=1 2", name: "two", want: "1 2"},
		{arg: "l=@list.json", name: "l", want: []any{1, 2.5, "x"}},
		{arg: "y=@obj.yaml", name: "y", want: map[string]any{"a": 1, "b": []any{"x", "y"}}},
		{arg: "m=@missing.json", err: `input "m": cannot read ` + filepath.Join(dir, "missing.json") + `: no such file or directory`},
		{arg: "novalue", err: `input "novalue": expected name=value, name=@file.json or name=@file.yaml`},
		{arg: "=x", err: "expected name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			name, v, err := runtime.ParseInput(tt.arg, dir, 0)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.name {
				t.Errorf("name %q, want %q", name, tt.name)
			}
			if diff := cmp.Diff(tt.want, v); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckInputs(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "inputs", "check-inputs.yaml")
	_, err := runtime.CheckInputs(wf, map[string]any{"documnts": []any{"a"}, "limit": 2.5, "mode": "medium"})
	var ie *runtime.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an InputError", err)
	}
	got := strings.ReplaceAll(err.Error(), wf.Dir+"/", "")
	want := `input "documnts": workflow.yaml has no state field "documnts"; did you mean "documents"?
input "limit" (state field at workflow.yaml:4:3): expected an integer, got 2.5
input "mode" (state field at workflow.yaml:5:3): expected one of "fast", "slow", got "medium"
missing input "documents" (a list of strings, required at workflow.yaml:3:3): give it with -i documents=...`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzParseInput checks that no -i argument makes input parsing panic, and that
// what parses is a JSON value.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{"n=3", "xs=[1,2]", `o={"a":[1,{"b":null}]}`, "s=text", "f=1e400", "x=@", "=", "a==b", "n=-0", "n=1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		name, v, err := runtime.ParseInput(arg, t.TempDir(), 0)
		if err != nil {
			return
		}
		if name == "" || strings.Contains(name, "=") {
			t.Fatalf("name %q from %q", name, arg)
		}
		if _, err := runJSONValueErr(v); err != nil {
			t.Fatalf("value of %q is not JSON: %v", arg, err)
		}
	})
}
