package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

const confinementDoc = `Paths are relative to the workflow file's directory. They must stay inside it, or
inside a directory given with ` + "`--allow-path DIR`" + `: ` + "`..`" + ` escapes, absolute paths
elsewhere and symbolic links that lead outside are refused with a permanent error. The
run store (` + "`.flowrun/`" + `, or ` + "`--store DIR`" + `) is out of reach even inside those
directories.`

func fileRead() *action.Spec {
	return &action.Spec{
		Name:    "file.read",
		Summary: "Read a file as text, JSON, YAML or lines.",
		Doc: `Reads a whole file. ` + "`format`" + ` decides which output field is set: ` + "`text`" + ` gives
the content as it is, ` + "`json`" + ` and ` + "`yaml`" + ` parse it into ` + "`data`" + ` (objects, lists,
integers for integral numbers), ` + "`lines`" + ` gives its lines without their line breaks
(` + "`\\n`" + ` or ` + "`\\r\\n`" + `; a final line break does not add an empty line).

A missing file or one that does not parse is a permanent error.

` + confinementDoc,
		Params: []action.Param{
			{Name: "path", Type: action.String, Required: true, Doc: "The file to read, relative to the workflow's directory."},
			{Name: "format", Type: action.String, Default: "text", Enum: []any{"text", "json", "yaml", "lines"}, Doc: "How to read the file: as text, parsed as JSON or YAML, or as a list of lines."},
		},
		Output: []action.Field{
			{Name: "text", Type: action.String, Doc: "The content, for `format: text`."},
			{Name: "data", Type: action.Any, Doc: "The parsed value, for `format: json` and `format: yaml`."},
			{Name: "lines", Type: action.Array, Doc: "The lines, for `format: lines`."},
		},
		Examples: []action.Example{
			{
				Summary: "Read a text file.",
				With:    "path: notes.txt",
				Output:  "text: |\n  buy milk\n  call Ada\n",
			},
			{
				Summary: "Parse a JSON file.",
				With:    "path: config/settings.json\nformat: json",
				Output:  "data: {name: demo, workers: 4, ratio: 0.5, tags: [a, b]}",
			},
			{
				Summary: "Parse a YAML file.",
				With:    "path: config/settings.yaml\nformat: yaml",
				Output:  "data: {name: demo, workers: 4, ratio: 0.5, tags: [a, b]}",
			},
			{
				Summary: "Read the lines of a file, to map over them.",
				With:    "path: notes.txt\nformat: lines",
				Output:  "lines: [buy milk, call Ada]",
			},
		},
		ReadOnly: true,
		Func:     runRead,
	}
}

func runRead(_ context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	name := call.Params.String("path")
	pl, err := confine(env, name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(pl.root)
	if err != nil {
		return nil, fileError("read", name, err, pl)
	}
	defer root.Close()
	if fi, err := root.Stat(pl.rel); err == nil && fi.IsDir() {
		return nil, action.Permanentf("read %q: is a directory, not a file (file.list lists directories)", name)
	}
	data, err := root.ReadFile(pl.rel)
	if err != nil {
		return nil, fileError("read", name, err, pl)
	}
	switch format := call.Params.String("format"); format {
	case "text":
		return map[string]any{"text": string(data)}, nil
	case "json":
		v, err := decodeJSON(data)
		if err != nil {
			return nil, action.Permanentf("read %q as JSON: %v", name, err)
		}
		return map[string]any{"data": v}, nil
	case "yaml":
		v, err := decodeYAML(data)
		if err != nil {
			return nil, action.Permanentf("read %q as YAML: %v", name, err)
		}
		return map[string]any{"data": v}, nil
	case "lines":
		text := strings.TrimSuffix(string(data), "\n")
		lines := []any{}
		if len(data) > 0 {
			for _, l := range strings.Split(text, "\n") {
				lines = append(lines, strings.TrimSuffix(l, "\r"))
			}
		}
		return map[string]any{"lines": lines}, nil
	default:
		return nil, action.Permanentf("parameter \"format\": unknown format %q", format)
	}
}

func fileWrite() *action.Spec {
	return &action.Spec{
		Name:    "file.write",
		NoCache: true,
		Summary: "Write text or data to a file.",
		Doc: `Writes ` + "`text`" + ` as it is, or ` + "`data`" + ` encoded as indented JSON (as YAML when the
path ends in ` + "`.yaml`" + ` or ` + "`.yml`" + `) followed by a line break. Missing parent
directories are created.

Without ` + "`append`" + ` the file is replaced atomically: the content goes to a temporary
file in the same directory, which is then renamed over the target, so a reader never
sees half a file, even if the run is killed. With ` + "`append: true`" + ` the content is added
to the end of the file (created if needed); appends from parallel items may interleave
in any order, so prefer state reducers to collect results.

` + confinementDoc,
		Params: []action.Param{
			{Name: "path", Type: action.String, Required: true, Doc: "The file to write, relative to the workflow's directory."},
			{Name: "text", Type: action.String, Doc: "The text to write as it is. Give this or `data`."},
			{Name: "data", Type: action.Any, Doc: "A value to write as JSON, or YAML for `.yaml`/`.yml` paths. Give this or `text`."},
			{Name: "append", Type: action.Boolean, Default: false, Doc: "Add to the end of the file instead of replacing it."},
		},
		OneOf: []action.OneOf{{Params: []string{"text", "data"}, Required: true}},
		Output: []action.Field{
			{Name: "path", Type: action.String, Doc: "The path as given, cleaned (`a/./b` becomes `a/b`)."},
			{Name: "bytes", Type: action.Integer, Doc: "The number of bytes written."},
		},
		Examples: []action.Example{
			{
				Summary: "Write a report.",
				With:    "path: out/report.md\ntext: |\n  # Report\n  All good.\n",
				Output:  "path: out/report.md\nbytes: 19",
			},
			{
				Summary: "Write data as JSON.",
				With:    "path: out/result.json\ndata: {ok: true, items: [1, 2]}",
				Output:  "path: out/result.json\nbytes: 48",
			},
			{
				Summary: "Append a line to a log file.",
				With:    "path: ./out/progress.log\ntext: \"item done\\n\"\nappend: true",
				Output:  "path: out/progress.log\nbytes: 10",
			},
		},
		Func: runWrite,
	}
}

func runWrite(_ context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	name := call.Params.String("path")
	var content []byte
	if call.Params.Has("text") {
		content = []byte(call.Params.String("text"))
	} else if v := call.Params["data"]; v != nil {
		var err error
		if content, err = encodeData(v, name); err != nil {
			return nil, action.Permanentf("parameter \"data\": %v", err)
		}
	} else {
		return nil, action.Permanentf(`missing parameter: give one of "text" and "data"`)
	}
	pl, err := confine(env, name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(pl.root)
	if err != nil {
		return nil, fileError("write", name, err, pl)
	}
	defer root.Close()
	if dir := filepath.Dir(pl.rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, fileError("write", name, err, pl)
		}
	}
	if call.Params.Bool("append") {
		err = appendFile(root, pl.rel, content)
	} else {
		err = replaceFile(root, pl.rel, content)
	}
	if err != nil {
		return nil, fileError("write", name, err, pl)
	}
	return map[string]any{"path": filepath.ToSlash(filepath.Clean(name)), "bytes": len(content)}, nil
}

// decodeYAML parses the first YAML document of data into JSON types. Dates and
// times stay the strings they are written as.
func decodeYAML(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		return nil, nil
	}
	var retag func(n *yaml.Node)
	retag = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!timestamp" {
			n.Tag = "!!str"
		}
		for _, c := range n.Content {
			retag(c)
		}
	}
	retag(&doc)
	var v any
	if err := doc.Decode(&v); err != nil {
		return nil, err
	}
	return value.Normalize(v)
}

// encodeData encodes v as YAML for .yaml/.yml paths, else as indented JSON.
func encodeData(v any, name string) ([]byte, error) {
	var b bytes.Buffer
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	default:
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func appendFile(root *os.Root, rel string, content []byte) error {
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaceFile writes content to a temporary file beside rel and renames it over rel,
// keeping the permissions of the file it replaces.
func replaceFile(root *os.Root, rel string, content []byte) error {
	perm, existed := fs.FileMode(0o644), false
	if fi, err := root.Stat(rel); err == nil {
		if fi.IsDir() {
			return errors.New("is a directory")
		}
		perm, existed = fi.Mode().Perm(), true
	}
	tmp := filepath.Join(filepath.Dir(rel), fmt.Sprintf(".%s.tmp-%016x", filepath.Base(rel), rand.Uint64()))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && existed {
		err = root.Chmod(tmp, perm)
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

func fileList() *action.Spec {
	return &action.Spec{
		Name:    "file.list",
		Summary: "List the files that match a glob pattern.",
		Doc: `Lists the files (not directories) whose paths match ` + "`pattern`" + `, sorted, in the
form ` + "`file.read`" + ` takes: relative to the workflow's directory when the pattern is
relative, absolute when it is absolute.

Each path segment matches as in Go's ` + "`path.Match`" + `: ` + "`*`" + ` matches any run of
characters but ` + "`/`" + `, ` + "`?`" + ` one character, ` + "`[a-z]`" + ` a class, and ` + "`*`" + ` also
matches names starting with a dot. A segment ` + "`**`" + ` matches any number of directories,
none included, so ` + "`docs/**/*.md`" + ` finds ` + "`docs/a.md`" + ` and ` + "`docs/x/y/b.md`" + `. Symbolic
links to directories are not followed. A pattern whose fixed part does not exist
matches nothing.

` + confinementDoc,
		Params: []action.Param{
			{Name: "pattern", Type: action.String, Required: true, Doc: "The glob, relative to the workflow's directory, such as `data/*.json` or `docs/**/*.md`."},
		},
		Output: []action.Field{
			{Name: "paths", Type: action.Array, Doc: "The matching file paths, sorted, with `/` separators."},
		},
		Examples: []action.Example{
			{
				Summary: "Find Markdown files at any depth.",
				With:    "pattern: docs/**/*.md",
				Output:  "paths: [docs/guide/install.md, docs/guide/usage/cli.md, docs/index.md]",
			},
			{
				Summary: "Files of one directory.",
				With:    "pattern: config/*",
				Output:  "paths: [config/settings.json, config/settings.yaml]",
			},
		},
		ReadOnly: true,
		Func:     runList,
	}
}

func runList(_ context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	pattern := call.Params.String("pattern")
	if pattern == "" {
		return nil, action.Permanentf("parameter \"pattern\": empty pattern")
	}
	segs := strings.Split(path.Clean(filepath.ToSlash(pattern)), "/")
	fixed := len(segs) - 1
	for i, s := range segs {
		if strings.ContainsAny(s, `*?[\`) {
			fixed = i
			break
		}
	}
	glob := segs[fixed:]
	for _, g := range glob {
		if _, err := path.Match(g, ""); err != nil {
			return nil, action.Permanentf("parameter \"pattern\": bad pattern %q: %v", pattern, err)
		}
	}
	base := strings.Join(segs[:fixed], "/")
	if base == "" && fixed > 0 {
		base = "/"
	}
	baseName := base
	if baseName == "" {
		baseName = "."
	}
	pl, err := confine(env, filepath.FromSlash(baseName))
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(pl.root)
	if err != nil {
		return nil, fileError("list", pattern, err, pl)
	}
	defer root.Close()
	if fi, err := root.Stat(pl.rel); err != nil || !fi.IsDir() {
		return map[string]any{"paths": []any{}}, nil
	}
	deep := false
	for _, g := range glob {
		deep = deep || g == "**"
	}
	start := filepath.ToSlash(pl.rel)
	var found []string
	err = fs.WalkDir(root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start {
				return err
			}
			return nil // unreadable subdirectory: skip it
		}
		if p == start {
			return nil
		}
		rel := strings.TrimPrefix(p, start+"/")
		if start == "." {
			rel = p
		}
		parts := strings.Split(rel, "/")
		if d.IsDir() {
			if !deep && len(parts) >= len(glob) || len(env.Private) > 0 && private(env, filepath.Join(pl.root, filepath.FromSlash(p))) {
				return fs.SkipDir
			}
			return nil
		}
		if !matchSegments(glob, parts) {
			return nil
		}
		out := path.Join(base, rel)
		if d.Type()&fs.ModeSymlink != 0 {
			// A link is listed when it leads to a file the run may read.
			lp, err := confine(env, filepath.FromSlash(out))
			if err != nil {
				return nil
			}
			if fi, err := os.Stat(filepath.Join(lp.root, lp.rel)); err != nil || fi.IsDir() {
				return nil
			}
		}
		found = append(found, out)
		return nil
	})
	if err != nil {
		return nil, fileError("list", pattern, err, pl)
	}
	sort.Strings(found)
	paths := make([]any, len(found))
	for i, f := range found {
		paths[i] = f
	}
	return map[string]any{"paths": paths}, nil
}

// matchSegments matches path segments against glob segments, where "**" matches any
// number of segments.
func matchSegments(glob, parts []string) bool {
	if len(glob) == 0 {
		return len(parts) == 0
	}
	if glob[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchSegments(glob[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	if ok, _ := path.Match(glob[0], parts[0]); !ok {
		return false
	}
	return matchSegments(glob[1:], parts[1:])
}
