package builtins

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

// sandbox makes a workflow directory and a directory beside it, each holding a file,
// and links from the workflow directory to the outside.
func sandbox(t *testing.T) (wf, other string) {
	t.Helper()
	top := t.TempDir()
	wf, other = filepath.Join(top, "wf"), filepath.Join(top, "other")
	writeFiles(t, wf, map[string]string{"in.txt": "inside\n", "sub/deep.txt": "deep\n"})
	writeFiles(t, other, map[string]string{"secret.txt": "secret\n"})
	for link, target := range map[string]string{
		"out-file":  filepath.Join(other, "secret.txt"),
		"out-dir":   other,
		"dangling":  filepath.Join(other, "new.txt"),
		"dangling2": filepath.Join(other, "new2.txt"),
		"in-dangle": "sub/created.txt",
		"in-link":   "in.txt",
		"sub/up":    "../in.txt",
		"sub-alias": "sub",
	} {
		if err := os.Symlink(target, filepath.Join(wf, link)); err != nil {
			t.Fatal(err)
		}
	}
	return wf, other
}

func wantPermanent(t *testing.T, err error, substr ...string) {
	t.Helper()
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent {
		t.Fatalf("err = %v, want a permanent action error", err)
	}
	for _, s := range substr {
		if !strings.Contains(ae.Msg, s) {
			t.Errorf("message %q does not contain %q", ae.Msg, s)
		}
	}
}

func TestFileConfinement(t *testing.T) {
	wf, other := sandbox(t)
	refused := []struct {
		name   string
		action string
		with   map[string]any
	}{
		{"dot-dot read", "file.read", map[string]any{"path": "../other/secret.txt"}},
		{"dot-dot inside then out", "file.read", map[string]any{"path": "sub/../../other/secret.txt"}},
		{"absolute outside", "file.read", map[string]any{"path": filepath.Join(other, "secret.txt")}},
		{"absolute root", "file.read", map[string]any{"path": "/etc/passwd"}},
		{"symlink to outside file", "file.read", map[string]any{"path": "out-file"}},
		{"through symlinked dir", "file.read", map[string]any{"path": "out-dir/secret.txt"}},
		{"write through symlinked dir", "file.write", map[string]any{"path": "out-dir/x.txt", "text": "x"}},
		{"write to dangling symlink", "file.write", map[string]any{"path": "dangling", "text": "x"}},
		{"append to dangling symlink", "file.write", map[string]any{"path": "dangling2", "text": "x", "append": true}},
		{"write dot-dot", "file.write", map[string]any{"path": "../other/x.txt", "text": "x"}},
		{"list outside", "file.list", map[string]any{"pattern": "../other/*"}},
		{"list through symlinked dir", "file.list", map[string]any{"pattern": "out-dir/*"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.action, &action.Env{Dir: wf}, tt.with)
			wantPermanent(t, err, "--allow-path")
		})
	}
	for _, name := range []string{"new.txt", "new2.txt"} {
		if _, err := os.Stat(filepath.Join(other, name)); err == nil {
			t.Errorf("a write went through the dangling symlink to %s", name)
		}
	}
	if _, err := run(t, "file.write", &action.Env{Dir: wf}, map[string]any{"path": "in-dangle", "text": "made"}); err != nil {
		t.Errorf("write through a dangling symlink that points inside: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(wf, "sub", "created.txt")); string(data) != "made" {
		t.Errorf("the write through in-dangle did not create its target: %q", data)
	}
	if _, err := os.Stat(filepath.Join(other, "x.txt")); err == nil {
		t.Error("a write escaped the workflow directory")
	}

	allowed := []struct {
		name, path, want string
		e                *action.Env
	}{
		{"relative", "in.txt", "inside\n", &action.Env{Dir: wf}},
		{"absolute inside", filepath.Join(wf, "sub", "deep.txt"), "deep\n", &action.Env{Dir: wf}},
		{"symlink inside", "in-link", "inside\n", &action.Env{Dir: wf}},
		{"relative symlink up inside", "sub/up", "inside\n", &action.Env{Dir: wf}},
		{"dot-dot that stays inside", "sub/../in.txt", "inside\n", &action.Env{Dir: wf}},
		{"allow path, absolute", filepath.Join(other, "secret.txt"), "secret\n", &action.Env{Dir: wf, AllowPaths: []string{other}}},
		{"allow path, relative", "../other/secret.txt", "secret\n", &action.Env{Dir: wf, AllowPaths: []string{other}}},
		{"allow path, through symlink", "out-file", "secret\n", &action.Env{Dir: wf, AllowPaths: []string{other}}},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, "file.read", tt.e, map[string]any{"path": tt.path})
			if err != nil {
				t.Fatal(err)
			}
			if out["text"] != tt.want {
				t.Errorf("text %q, want %q", out["text"], tt.want)
			}
		})
	}
}

func TestFileRead(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"crlf.txt":   "a\r\nb\r\n",
		"noeol.txt":  "a\n\nb",
		"empty.txt":  "",
		"blank.txt":  "\n",
		"bad.json":   "{\n  \"a\": 1,\n  oops\n}",
		"keys.yaml":  "1: one\ntrue: yes\nwhen: 2024-01-02\nat: 2024-01-02T10:00:00Z\nlist: [1.5, 2.0]\n",
		"empty.yaml": "",
	})
	tests := []struct {
		path, format string
		want         map[string]any
	}{
		{"crlf.txt", "lines", map[string]any{"lines": []any{"a", "b"}}},
		{"noeol.txt", "lines", map[string]any{"lines": []any{"a", "", "b"}}},
		{"empty.txt", "lines", map[string]any{"lines": []any{}}},
		{"blank.txt", "lines", map[string]any{"lines": []any{""}}},
		{"empty.txt", "text", map[string]any{"text": ""}},
		{"keys.yaml", "yaml", map[string]any{"data": map[string]any{"1": "one", "true": "yes", "when": "2024-01-02", "at": "2024-01-02T10:00:00Z", "list": []any{1.5, 2}}}},
		{"empty.yaml", "yaml", map[string]any{"data": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.path+" as "+tt.format, func(t *testing.T) {
			out, err := run(t, "file.read", &action.Env{Dir: dir}, map[string]any{"path": tt.path, "format": tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	_, err := run(t, "file.read", &action.Env{Dir: dir}, map[string]any{"path": "bad.json", "format": "json"})
	wantPermanent(t, err, `"bad.json"`, "line 3")
	_, err = run(t, "file.read", &action.Env{Dir: dir}, map[string]any{"path": "missing.txt"})
	wantPermanent(t, err, `"missing.txt"`)
	_, err = run(t, "file.read", &action.Env{Dir: dir}, map[string]any{"path": "."})
	wantPermanent(t, err, "directory")
}

func TestFileWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	e := &action.Env{Dir: dir}
	target := filepath.Join(dir, "a", "b", "out.txt")
	out, err := run(t, "file.write", e, map[string]any{"path": "a/./b/out.txt", "text": "first"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"path": "a/b/out.txt", "bytes": 5}, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(target)
	old, err := os.Open(target) // a reader of the old version keeps reading it
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := run(t, "file.write", e, map[string]any{"path": "a/b/out.txt", "text": "second version"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(target)
	if os.SameFile(before, after) {
		t.Error("the file was rewritten in place, not replaced")
	}
	if after.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", after.Mode().Perm())
	}
	oldData := make([]byte, 20)
	n, _ := old.Read(oldData)
	if string(oldData[:n]) != "first" {
		t.Errorf("old reader sees %q", oldData[:n])
	}
	data, _ := os.ReadFile(target)
	if string(data) != "second version" {
		t.Errorf("content %q", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(target))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestFileWriteAppendAndData(t *testing.T) {
	dir := t.TempDir()
	e := &action.Env{Dir: dir}
	for _, line := range []string{"one\n", "two\n"} {
		out, err := run(t, "file.write", e, map[string]any{"path": "logs/run.log", "text": line, "append": true})
		if err != nil {
			t.Fatal(err)
		}
		if out["bytes"] != 4 {
			t.Errorf("bytes %v", out["bytes"])
		}
	}
	data := map[string]any{"name": "x", "count": 2, "list": []any{"a", true}}
	for name, want := range map[string]string{
		"logs/run.log": "one\ntwo\n",
		"d.json":       "{\n  \"count\": 2,\n  \"list\": [\n    \"a\",\n    true\n  ],\n  \"name\": \"x\"\n}\n",
		"d.yml":        "count: 2\nlist:\n  - a\n  - true\nname: x\n",
	} {
		if name != "logs/run.log" {
			if _, err := run(t, "file.write", e, map[string]any{"path": name, "data": data}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := os.ReadFile(filepath.Join(dir, name))
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if _, err := spec(t, "file.write").Bind(map[string]any{"path": "x"}); err == nil {
		t.Error("neither text nor data: want a bind error")
	}
}

func TestFileList(t *testing.T) {
	wf, other := sandbox(t)
	writeFiles(t, wf, map[string]string{
		"docs/a.md": "", "docs/.hidden.md": "", "docs/x/b.md": "", "docs/x/y/c.md": "", "docs/x/y/c.txt": "",
		"docs/z.md/inner.txt": "",
	})
	tests := []struct {
		name, pattern string
		want          []any
		e             *action.Env
	}{
		{"double star", "docs/**/*.md", []any{"docs/.hidden.md", "docs/a.md", "docs/x/b.md", "docs/x/y/c.md"}, nil},
		{"one level", "docs/*", []any{"docs/.hidden.md", "docs/a.md"}, nil},
		{"two levels", "docs/*/*.md", []any{"docs/x/b.md"}, nil},
		{"double star in the middle", "docs/**/y/*", []any{"docs/x/y/c.md", "docs/x/y/c.txt"}, nil},
		{"everything below", "sub/**", []any{"sub/deep.txt", "sub/up"}, nil},
		{"top level, links to files inside only", "*", []any{"in-link", "in.txt"}, nil},
		{"literal file", "in.txt", []any{"in.txt"}, nil},
		{"literal missing", "nope.txt", []any{}, nil},
		{"missing base", "nowhere/**/*.md", []any{}, nil},
		{"dot prefix", "./docs/x/*.md", []any{"docs/x/b.md"}, nil},
		{"absolute", filepath.ToSlash(wf) + "/sub/*.txt", []any{filepath.ToSlash(wf) + "/sub/deep.txt"}, nil},
		{"allowed path, relative", "../other/*.txt", []any{"../other/secret.txt"}, &action.Env{Dir: wf, AllowPaths: []string{other}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			if e == nil {
				e = &action.Env{Dir: wf}
			}
			out, err := run(t, "file.list", e, map[string]any{"pattern": tt.pattern})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out["paths"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, p := range out["paths"].([]any) {
				if _, err := run(t, "file.read", e, map[string]any{"path": p}); err != nil {
					t.Errorf("listed path %q does not read back: %v", p, err)
				}
			}
		})
	}
	_, err := run(t, "file.list", &action.Env{Dir: wf}, map[string]any{"pattern": "docs/[a-"})
	wantPermanent(t, err, "bad pattern")
}
