package spec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/spec"
)

// docBlock is a ```yaml fenced block of a Markdown file.
type docBlock struct {
	line     int    // the line of the block's first line of YAML, counting from 1
	fragment bool   // ```yaml fragment: a snippet, not a whole workflow file
	info     string // the fence's info string
	text     string
}

// yamlBlocks returns the ```yaml blocks of a Markdown text. A fence may be indented
// (inside a list item); its indentation is removed from the block's lines.
func yamlBlocks(md string) []docBlock {
	var blocks []docBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		info, ok := strings.CutPrefix(trimmed, "```")
		if !ok {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		start := i + 1
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "```"); i++ {
		}
		fields := strings.Fields(info)
		if len(fields) == 0 || fields[0] != "yaml" {
			continue
		}
		var body strings.Builder
		for _, l := range lines[start:min(i, len(lines))] {
			body.WriteString(strings.TrimPrefix(l, strings.Repeat(" ", indent)))
			body.WriteByte('\n')
		}
		blocks = append(blocks, docBlock{line: start + 1, fragment: len(fields) > 1 && fields[1] == "fragment",
			info: strings.TrimSpace(info), text: body.String()})
	}
	return blocks
}

// TestDocExamples loads every complete workflow (a ```yaml block) of the language
// reference, how-it-works.md, plan.md and the README, and fails on any error or warning, so that the
// examples stay valid as the language changes. Snippets (```yaml fragment) must at
// least be valid YAML. Each block is parsed as if it were the Markdown file itself,
// padded with blank lines, so that a message's file:line:col points into the
// Markdown, and a sub-workflow path resolves against docs/.
func TestDocExamples(t *testing.T) {
	reg := registry(t)
	for _, doc := range []string{"../docs/language.md", "../docs/how-it-works.md", "../docs/plan.md", "../README.md"} {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := yamlBlocks(string(src))
		complete := 0
		for _, b := range blocks {
			name := fmt.Sprintf("%s:%d", filepath.Base(doc), b.line)
			if !b.fragment {
				complete++
			}
			t.Run(name, func(t *testing.T) {
				switch {
				case b.info != "yaml" && b.info != "yaml fragment":
					t.Fatalf("%s:%d: fence info %q: use ```yaml for a whole workflow file or ```yaml fragment for a snippet", doc, b.line-1, b.info)
				case b.fragment:
					var v any
					if err := yaml.Unmarshal([]byte(b.text), &v); err != nil {
						t.Fatalf("%s:%d: the fragment is not valid YAML: %v", doc, b.line, err)
					}
					return
				case !strings.HasPrefix(withoutComments(b.text), "version: 1\n"):
					t.Fatalf("%s:%d: a ```yaml block must be a whole workflow file starting with \"version: 1\"; mark a snippet ```yaml fragment", doc, b.line)
				}
				padded := strings.Repeat("\n", b.line-1) + b.text
				ld := &spec.Loader{Registry: reg, AllowPaths: []string{"../workflows"}}
				wf, err := ld.Parse(doc, []byte(padded))
				if err != nil {
					t.Fatalf("the example does not load:\n%v", err)
				}
				for _, w := range wf.Warnings {
					t.Errorf("%v", w)
				}
			})
		}
		if complete == 0 {
			t.Errorf("%s: no ```yaml examples found", doc)
		}
	}
}

// withoutComments drops a block's leading comment lines (a $schema modeline).
func withoutComments(text string) string {
	for strings.HasPrefix(text, "#") {
		_, text, _ = strings.Cut(text, "\n")
	}
	return text
}

// TestYAMLBlocks pins how blocks are found: the fence's info string, the line of the
// first line of YAML, and the removal of a list item's indentation.
func TestYAMLBlocks(t *testing.T) {
	md := "# Title\n\n```yaml\nversion: 1\n```\n\n- item\n\n  ```yaml fragment\n  a: 1\n  ```\n\n```json\n{}\n```\n"
	got := yamlBlocks(md)
	want := []docBlock{
		{line: 4, info: "yaml", text: "version: 1\n"},
		{line: 10, fragment: true, info: "yaml fragment", text: "a: 1\n"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(docBlock{})); diff != "" {
		t.Errorf("blocks differ (-want +got):\n%s", diff)
	}
}
