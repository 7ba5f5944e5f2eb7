package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/action"
)

// Load reads the workflow file at path, checks it against the language and the
// registry's actions, and compiles it, with every sub-workflow it names (which must
// lie in the file's directory). The error, when not nil, is an Errors listing every
// problem (warnings included), sorted by position; on success the warnings are in
// Workflow.Warnings.
func Load(path string, reg *action.Registry) (*Workflow, error) {
	return (&Loader{Registry: reg}).Load(path)
}

// Parse is Load for a file already read: name is its path, used in messages and to
// resolve sub-workflows.
func Parse(name string, src []byte, reg *action.Registry) (*Workflow, error) {
	return (&Loader{Registry: reg}).Parse(name, src)
}

// Loader loads workflow files.
type Loader struct {
	// Registry declares the actions workflows may use.
	Registry *action.Registry
	// AllowPaths are directories sub-workflows may lie in besides the directory
	// of the workflow loaded (as --allow-path allows file actions).
	AllowPaths []string
}

// Load is the package's Load, with the loader's settings.
func (ld *Loader) Load(path string) (*Workflow, error) {
	src, err := readFile(path)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: path}, Msg: err.Error()}}
	}
	return ld.Parse(path, src)
}

// Parse is the package's Parse, with the loader's settings.
func (ld *Loader) Parse(name string, src []byte) (*Workflow, error) {
	if ld.Registry == nil {
		return nil, errors.New("spec.Parse: nil registry")
	}
	l := &loader{reg: ld.Registry, loading: map[string]bool{}, done: map[string]*Workflow{}}
	abs, _ := filepath.Abs(name)
	for _, d := range append([]string{filepath.Dir(abs)}, ld.AllowPaths...) {
		d, _ = filepath.Abs(d)
		if real, err := filepath.EvalSymlinks(d); err == nil {
			l.allowed = append(l.allowed, real)
		} else {
			l.allowed = append(l.allowed, filepath.Clean(d))
		}
	}
	wf := l.parse(name, src)
	l.errs.sort()
	l.errs = l.errs.dedupe()
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	wf.Warnings = l.errs
	return wf, nil
}

// readFile reads a workflow file: a regular file of at most maxFileBytes.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read workflow: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read workflow: %v", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read workflow: %v", err)
	}
	return src, nil
}

// loader loads one workflow and its sub-workflows, collecting their problems.
type loader struct {
	reg     *action.Registry
	allowed []string // directories sub-workflows may lie in, links resolved
	errs    Errors
	loading map[string]bool      // absolute paths being parsed: a cycle if met again
	done    map[string]*Workflow // absolute paths parsed (nil when they had errors)
	walked  int                  // characters locators have stepped over: linear in the files' size
}

func (l *loader) parse(name string, src []byte) (wf *Workflow) {
	abs, _ := filepath.Abs(name)
	p := &parser{loader: l, name: name}
	wf = &Workflow{
		File: name, Dir: filepath.Dir(abs), Source: src, Registry: l.reg,
		fields: map[string]*Field{}, nodes: map[string]*Node{},
	}
	p.wf = wf
	l.loading[abs] = true
	defer func() {
		delete(l.loading, abs)
		if r := recover(); r != nil {
			b, ok := r.(errBudget)
			if !ok {
				panic(r)
			}
			p.errorf(b.at, "the document expands to more than %d YAML nodes through aliases; "+
				"is it an alias bomb? write the repeated parts out or use fewer nested aliases", maxVisits)
		}
	}()
	if len(src) > maxFileBytes {
		p.errorAt(Pos{File: name, Line: 1, Col: 1}, "the file is %d MiB; workflow files are limited to %d MiB",
			len(src)>>20, maxFileBytes>>20)
		return wf
	}
	root := p.document(src)
	if root == nil {
		return wf
	}
	p.lines = strings.Split(string(src), "\n")
	p.workflow(root)
	sum := sha256.New()
	sum.Write(src)
	for _, inc := range wf.Includes {
		sum.Write([]byte(inc.Hash))
	}
	wf.Hash = hex.EncodeToString(sum.Sum(nil))
	return wf
}

var kinds = map[yaml.Kind]string{yaml.ScalarNode: "a scalar (a string or a number)", yaml.SequenceNode: "a list", yaml.AliasNode: "an alias"}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses the YAML text into its one document's root node.
func (p *parser) document(src []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			p.errorAt(Pos{File: p.name, Line: 1, Col: 1}, "empty file: expected a workflow (version, state, nodes)")
			return nil
		}
		p.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(&extra, "a second YAML document: a workflow file holds exactly one (remove the ---)")
	} else if err != io.EOF {
		p.yamlError(err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorAt(Pos{File: p.name, Line: 1, Col: 1}, "empty file: expected a workflow (version, state, nodes)")
		return nil
	}
	return doc.Content[0]
}

func (p *parser) yamlError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	// yaml.v3 reports a line but no column: point at the line's first character,
	// or at a tab, which YAML never allows in indentation.
	col := 1
	lines := strings.Split(string(p.wf.Source), "\n")
	if line-1 < len(lines) {
		text := lines[line-1]
		col = len([]rune(text)) - len([]rune(strings.TrimLeft(text, " "))) + 1
		if i := strings.IndexByte(text, '\t'); i >= 0 && strings.TrimSpace(text[:i]) == "" {
			col = i + 1
			msg += ": indent with spaces, not tabs"
		}
	}
	p.errorAt(Pos{File: p.name, Line: line, Col: col}, "invalid YAML: %s%s", msg, yamlHint(msg))
}

// yamlHint explains yaml.v3's commonest complaints.
func yamlHint(msg string) string {
	switch {
	case strings.HasPrefix(msg, "did not find expected ',' or"):
		return " (a {…} or […] near here is not closed, or holds a value with ': ', '?' or ' #' that needs quotes)"
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		return " (a value holds ': ' and needs quotes, or the line is indented too far)"
	case strings.HasPrefix(msg, "found unexpected end of stream"):
		return " (a quoted string is not closed)"
	case strings.HasPrefix(msg, "did not find expected key"):
		return " (check the indentation of this line and the ones below)"
	}
	return ""
}

// workflow checks the top-level mapping.
func (p *parser) workflow(root *yaml.Node) {
	wf := p.wf
	if root.Kind != yaml.MappingNode {
		// Not quoted: a file that is not a workflow may hold anything (a key).
		p.errorf(root, "not a workflow: a workflow file is a YAML mapping (version, state, nodes), and this one holds %s", kinds[root.Kind])
		return
	}
	m := p.mapping(root, workflowDef, "workflow")
	if m == nil {
		return
	}
	if n := m.get(p, "version"); n == nil {
		if !m.guessed["version"] {
			p.errorf(root, "missing key \"version\": add \"version: 1\" at the top")
		}
	} else if v, ok := p.integer(n, "version", 0); ok && v != 1 {
		p.errorf(n, "unsupported version %d: this flowrun reads version 1", v)
	}
	wf.Name = strings.TrimSuffix(filepath.Base(p.name), filepath.Ext(p.name))
	if n := m.get(p, "name"); n != nil {
		if s, ok := p.str(n, "name"); ok {
			wf.Name = s
		}
	}
	if n := m.get(p, "description"); n != nil {
		wf.Description, _ = p.str(n, "description")
	}
	if n := m.get(p, "state"); n != nil {
		p.state(n)
	}
	for _, f := range wf.State {
		p.fieldNames = append(p.fieldNames, f.Name)
	}
	if p.fieldNames == nil {
		p.fieldNames = []string{}
	}
	wf.Limits = Limits{MaxSteps: DefaultMaxSteps, MaxItems: DefaultMaxItems}
	if n := m.get(p, "limits"); n != nil {
		p.limits(n)
	}
	nodes := m.get(p, "nodes")
	if nodes == nil {
		if !m.guessed["nodes"] {
			p.errorf(root, "missing key \"nodes\": a workflow needs at least one node")
		}
		return
	}
	p.nodes(nodes)
	if n := m.get(p, "start"); n != nil {
		if name, ok := p.str(n, "start"); ok {
			wf.Start = p.ref(n, name, "start")
		}
	} else if len(wf.Nodes) > 0 {
		wf.Start = wf.Nodes[0]
	}
	if n := m.get(p, "output"); n != nil {
		p.output(n)
	}
	p.checkPrices()
	p.graph()
}

func (p *parser) limits(n *yaml.Node) {
	m := p.mapping(n, limitsDef, "limits")
	if m == nil {
		return
	}
	lim := &p.wf.Limits
	if v := m.get(p, "concurrency"); v != nil {
		lim.Concurrency = p.count(v, "limits.concurrency", 1, &scope{state: true})
	}
	if v := m.get(p, "max_steps"); v != nil {
		lim.MaxSteps, _ = p.integer(v, "limits.max_steps", 1)
	}
	if v := m.get(p, "max_items"); v != nil {
		lim.MaxItems, _ = p.integer(v, "limits.max_items", 1)
	}
	if v := m.get(p, "rate"); v != nil {
		p.rates(v)
	}
	if v := m.get(p, "budget"); v != nil {
		lim.Budget = p.budget(v, "limits.budget")
	}
	if v := m.get(p, "prices"); v != nil {
		p.prices(v)
	}
}

// output checks the list of fields `flowrun run` prints.
func (p *parser) output(n *yaml.Node) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	p.wf.Output = []*Field{}
	seen := map[string]bool{}
	for _, item := range items {
		item = p.resolve(item)
		name, ok := p.str(item, "output")
		if !ok {
			continue
		}
		f := p.wf.fields[name]
		if f == nil {
			p.errorf(item, "unknown state field %q in output%s", name, suggestOrList(name, p.fieldNames, "state fields"))
			continue
		}
		if seen[name] {
			p.errorf(item, "output names %q twice", name)
			continue
		}
		seen[name] = true
		p.wf.Output = append(p.wf.Output, f)
	}
}

// count decodes an integer no smaller than min, or a template computing one at run
// time (limits, batch sizes, concurrency).
func (p *parser) count(n *yaml.Node, what string, min int, sc *scope) *Value {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, "${{") {
		return p.template(n, sc)
	}
	v, ok := p.integer(n, what, min)
	if !ok {
		return nil
	}
	return &Value{Pos: p.pos(n), lit: v}
}
