package spec

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/value"
)

// Expr is a compiled expr-lang expression.
type Expr struct {
	Src  string
	Pos  Pos // where the expression's text starts in the file
	prog *vm.Program
	uses Uses // what it reads of its variables
}

// EnvFunc is the type of the `env(name, default)` function in expressions; the
// runtime supplies one per run under the variable name "env". It refuses names that
// look like secrets' (LooksSecret).
type EnvFunc = func(name string, def ...any) (any, error)

// SecretFunc is the type of the `secret(name)` function, which reads an
// environment variable as a secret; the runtime supplies one per run under the
// variable name "secret", visible only in an action's with:.
type SecretFunc = func(name string) (string, error)

// LooksSecret reports whether an environment variable's name looks like a
// secret's: it contains KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL, in any case.
// env() refuses such names; secret() reads them.
func LooksSecret(name string) bool {
	up := strings.ToUpper(name)
	for _, w := range []string{"KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"} {
		if strings.Contains(up, w) {
			return true
		}
	}
	return false
}

// exprMemoryBudget bounds what one evaluation may allocate, in expr's units (about
// one per element built): well above a fan-out of limits.max_items (1,000,000 by
// default, "1..n" builds n elements), well below exhausting memory.
const exprMemoryBudget = 1 << 25

// VM evaluates expressions, reusing its memory from one evaluation to the next. A
// VM is not safe for concurrent use: a goroutine that evaluates often keeps its
// own.
type VM struct{ m vm.VM }

// NewVM returns a VM for Eval.
func NewVM() *VM { return &VM{m: vm.VM{MemoryBudget: exprMemoryBudget}} }

// Eval runs the expression with the given variables and returns its value in JSON
// types. m may be nil; a caller that evaluates often passes its own VM to reuse.
func (e *Expr) Eval(m *VM, vars map[string]any) (any, error) {
	if m == nil {
		m = NewVM()
	}
	out, err := m.m.Run(e.prog, vars)
	if err == nil {
		out, err = value.Normalize(out)
	}
	if err != nil {
		return nil, &EvalError{Expr: e, Err: err}
	}
	return out, nil
}

// EvalError is an expression that failed at run time.
type EvalError struct {
	Expr *Expr
	Err  error
}

func (e *EvalError) Error() string {
	msg := e.Err.Error()
	var fe *file.Error
	if errors.As(e.Err, &fe) {
		msg = fe.Message
	}
	return fmt.Sprintf("%s: expression %q: %s", e.Expr.Pos, clip(e.Expr.Src, 60), msg)
}

func (e *EvalError) Unwrap() error { return e.Err }

// scope says which variables an expression may use.
type scope struct {
	state  bool   // state (and input, run, env) are visible
	item   string // the map's item variable, with index
	output bool   // output: in update, set, next
	errVar bool   // error: in on_error and retry.when
	reduce bool   // current and update, in a reducer expression
	secret bool   // secret(): in an action's with
	// outputs, when known, are the fields output has (an action's declared output).
	outputs []string
	// outputOf names what produces output, for messages.
	outputOf string
}

var (
	envFuncType    = types.TypeOf(EnvFunc(nil))
	secretFuncType = types.TypeOf(SecretFunc(nil))
)

// key identifies what a scope makes visible, for caching compiled values.
func (sc *scope) key() string {
	return fmt.Sprintf("%t/%s/%t/%t/%t/%t/%q/%s", sc.state, sc.item, sc.output, sc.errVar, sc.reduce, sc.secret, sc.outputs, sc.outputOf)
}

func (sc *scope) env() types.Map {
	open := types.Map{types.Extra: types.Any}
	env := types.Map{}
	if sc.state {
		env["state"], env["input"], env["run"], env["env"] = open, open, open, envFuncType
	}
	if sc.item != "" {
		env[sc.item], env["index"] = types.Any, types.Int
	}
	if sc.output {
		env["output"] = types.Any
	}
	if sc.errVar {
		env["error"] = open
	}
	if sc.secret {
		env["secret"] = secretFuncType
	}
	if sc.reduce {
		env["current"], env["update"] = types.Any, types.Any
	}
	return env
}

// locator maps a rune offset inside a scalar's value to a position in the file.
type locator func(offset int) Pos

// locate returns the locator of scalar n's text.
func (p *parser) locate(n *yaml.Node) locator {
	line, col := n.Line, n.Column
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line++
		col = 1
		if line-1 < len(p.lines) {
			l := p.lines[line-1]
			col += len(l) - len(strings.TrimLeft(l, " "))
		}
	}
	value, block := n.Value, n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle
	// The walk goes on from the last offset asked for, so that asking for the
	// offsets of a string's templates, left to right, costs one pass in all.
	at, l, c, b := 0, line, col, 0 // rune offset, its line and column, its byte index
	return func(offset int) Pos {
		if offset < at {
			at, l, c, b = 0, line, col, 0
		}
		for at < offset && b < len(value) {
			r, size := utf8.DecodeRuneInString(value[b:])
			b += size
			at++
			p.walked++
			if r == '\n' {
				l++
				if block {
					c = col
				} else {
					c = 1
				}
				continue
			}
			c++
		}
		return Pos{File: p.name, Line: l, Col: c}
	}
}

// compile compiles src, which starts at rune offset off of the text loc locates.
func (p *parser) compile(src string, loc locator, off int, sc *scope) *Expr {
	at := loc(off)
	if strings.TrimSpace(src) == "" {
		p.errorAt(at, "empty expression")
		return nil
	}
	if n := utf8.RuneCountInString(src); n > maxExprChars {
		p.errorAt(at, "expression is %d characters long; the limit is %d: move the logic into an action or split it", n, maxExprChars)
		return nil
	}
	code, back := escapeControls(src)
	check := &astCheck{p: p, sc: sc, loc: func(o int) Pos { return loc(back(o)) }, off: off}
	opts := append([]expr.Option{expr.Env(sc.env()), expr.MaxNodes(maxExprNodes), expr.Patch(check)}, exprFunctions...)
	prog, err := expr.Compile(code, opts...)
	if err != nil {
		var fe *file.Error
		if strings.Contains(err.Error(), "exceeds maximum allowed nodes") {
			p.errorAt(at, "expression is too complex (more than %d operations): split it or move the logic into an action", maxExprNodes)
		} else if errors.As(err, &fe) {
			p.errorAt(loc(off+back(fe.From)), "expression %q: %s%s", clip(strings.Join(strings.Fields(src), " "), 50), fe.Message, p.exprHint(fe.Message, sc))
		} else {
			p.errorAt(at, "%v", err)
		}
		return nil
	}
	for _, e := range check.errs {
		p.errs = append(p.errs, e)
	}
	return &Expr{Src: src, Pos: at, prog: prog, uses: usesOf(prog.Node())}
}

// escapeControls writes raw newlines and tabs inside the expression's string literals
// as escapes. YAML turns "join(xs, '\n')" in a double-quoted string into a real line
// break, which expr does not accept inside a literal. back maps a rune offset in the
// result to one in src.
func escapeControls(src string) (string, func(int) int) {
	if !strings.ContainsAny(src, "\n\t\r") {
		return src, func(o int) int { return o }
	}
	var b strings.Builder
	var added []int // result offsets where an escape added a rune
	quote, escaped, n := rune(0), false, 0
	for _, r := range src {
		if quote != 0 && quote != '`' && (r == '\n' || r == '\t' || r == '\r') {
			b.WriteString(map[rune]string{'\n': `\n`, '\t': `\t`, '\r': `\r`}[r])
			added = append(added, n+1)
			n += 2
			escaped = false
			continue
		}
		switch {
		case escaped:
			escaped = false
		case quote != 0 && quote != '`' && r == '\\':
			escaped = true
		case quote == 0 && (r == '"' || r == '\'' || r == '`'):
			quote = r
		case quote == r:
			quote = 0
		}
		b.WriteRune(r)
		n++
	}
	return b.String(), func(o int) int {
		shift := 0
		for _, a := range added {
			if a <= o {
				shift++
			}
		}
		return o - shift
	}
}

// exprHint explains an unknown name when the cause is likely a scope mistake.
func (p *parser) exprHint(msg string, sc *scope) string {
	name, ok := strings.CutPrefix(msg, "unknown name ")
	if !ok {
		return ""
	}
	var visible []string
	for v := range sc.env() {
		if v != types.Extra {
			visible = append(visible, v)
		}
	}
	if hint := suggest(name, visible); hint != "" {
		return hint
	}
	if contains(p.itemVars, name) {
		return "; a map's item variable is only visible in the map's route and with: pass it on in with and read input.<name>"
	}
	switch name {
	case "secret":
		return "; secret() is only visible in an action's with: (its value goes to the action, and is masked everywhere else)"
	case "output":
		return "; output is only visible in update, set and next"
	case "error":
		return "; error is only visible in on_error and retry.when"
	case "index":
		return "; index is only visible in the map's route and with; workers read input.index"
	}
	if sc.state {
		return "; use state.<field> or input.<name>"
	}
	return ""
}

// astCheck is an expr patch visitor that checks state.<field> and output.<field>
// against what the workflow declares, before expr's own type check.
type astCheck struct {
	p    *parser
	sc   *scope
	loc  locator
	off  int
	errs []*Error
}

func (c *astCheck) Visit(node *ast.Node) {
	if patchBounds(node) {
		return
	}
	if call, ok := (*node).(*ast.CallNode); ok {
		c.checkEnv(call)
		return
	}
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == "$env" {
		c.errs = append(c.errs, &Error{Pos: c.loc(c.off + id.Location().From),
			Msg: "$env is not available in flowrun: use state, input, output, run or env(name)"})
		return
	}
	mem, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := mem.Node.(*ast.IdentifierNode)
	if !ok {
		return
	}
	prop, ok := mem.Property.(*ast.StringNode)
	if !ok {
		return
	}
	at := c.loc(c.off + prop.Location().From)
	switch {
	case id.Value == "state" && c.sc.state:
		if c.p.fieldNames != nil && !contains(c.p.fieldNames, prop.Value) {
			c.errs = append(c.errs, &Error{Pos: at, Msg: fmt.Sprintf("unknown state field %q%s",
				prop.Value, suggestOrList(prop.Value, c.p.fieldNames, "state fields"))})
		}
	case id.Value == "output" && c.sc.output && c.sc.outputs != nil:
		if !contains(c.sc.outputs, prop.Value) {
			c.errs = append(c.errs, &Error{Pos: at, Msg: fmt.Sprintf("%s has no output %q%s",
				c.sc.outputOf, prop.Value, suggestOrList(prop.Value, c.sc.outputs, "outputs"))})
		}
	}
}

// checkEnv refuses env("NAME") of a name that looks like a secret's.
func (c *astCheck) checkEnv(call *ast.CallNode) {
	fn, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || fn.Value != "env" || !c.sc.state || len(call.Arguments) == 0 {
		return
	}
	name, ok := call.Arguments[0].(*ast.StringNode)
	if !ok || !LooksSecret(name.Value) {
		return
	}
	c.errs = append(c.errs, &Error{Pos: c.loc(c.off + name.Location().From), Msg: fmt.Sprintf(
		"env(%q) would put a secret into the workflow's data: read it with secret(%q) in an action's with:, where it is masked in everything flowrun writes",
		name.Value, name.Value)})
}

func suggestOrList(name string, names []string, what string) string {
	if hint := suggest(name, names); hint != "" {
		return hint
	}
	if len(names) == 0 {
		return "; there are no " + what
	}
	return fmt.Sprintf("; %s: %s", what, strings.Join(names, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bareExpr compiles a scalar holding a bare expression (when, over, reducer.expr).
// A "${{ e }}" wrapper is accepted too, since people write it out of habit.
func (p *parser) bareExpr(n *yaml.Node, what string, sc *scope) *Expr {
	src, ok := p.str(n, what)
	if !ok {
		return nil
	}
	off := 0
	if inner, ok := wholeTemplate(src); ok {
		off = runes(src, strings.Index(src, inner))
		src = inner
	}
	before := len(p.errs)
	e := p.compile(src, p.locate(n), off, sc)
	if e == nil && len(p.errs) > before && n.Style == 0 && n.LineComment != "" {
		// `when: any(xs, # > 1)`: YAML took " #..." for a comment.
		p.errs[len(p.errs)-1].Msg += "; a \" #\" in an unquoted value starts a YAML comment: quote the expression"
	}
	return e
}

// wholeTemplate returns e when s is exactly "${{ e }}".
func wholeTemplate(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "${{") {
		return "", false
	}
	end := closeBraces(t, 3)
	if end != len(t)-2 {
		return "", false
	}
	return t[3:end], true
}

// closeBraces returns the index of the "}}" that closes a template whose expression
// starts at i, skipping braces and "}}" inside string literals and nested literals.
func closeBraces(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case '{':
			depth++
		case '}':
			if depth == 0 && i+1 < len(s) && s[i+1] == '}' {
				return i
			}
			if depth > 0 {
				depth--
			}
		}
	}
	return -1
}
