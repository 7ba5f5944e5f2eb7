package spec

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/flowrun/flowrun/value"
)

// This file holds what flowrun changes in expr's functions: keys, values and
// toPairs list an object's entries in key order (expr's follow Go's map order,
// different on every run), and strings an expression builds are bounded before they
// are allocated (`+`, repeat, replace and join), so that no expression can exhaust
// memory before expr's memory budget notices.

// maxExprString bounds a string one expression builds.
const maxExprString = 64 << 20

// exprFunctions are the functions every expression is compiled with.
var exprFunctions = []expr.Option{
	expr.Function("keys", func(args ...any) (any, error) { return entries("keys", args, func(k, _ any) any { return k }) }),
	expr.Function("values", func(args ...any) (any, error) { return entries("values", args, func(_, v any) any { return v }) }),
	expr.Function("toPairs", func(args ...any) (any, error) {
		return entries("toPairs", args, func(k, v any) any { return []any{k, v} })
	}),
	expr.Function(addFunc, add),
	expr.Function(boundFunc, bound),
}

// The names of the functions the compiler puts in place of `+`, and around the
// first argument of the builtins it bounds. Users could call them; they do no harm.
const (
	addFunc   = "_flowrun_add"
	boundFunc = "_flowrun_bound"
)

// entries lists an object's entries in key order, each as each makes it.
func entries(name string, args []any, each func(k, v any) any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("%s takes one object, got %d arguments", name, len(args))
	}
	m := reflect.ValueOf(args[0])
	if m.Kind() != reflect.Map {
		return nil, fmt.Errorf("%s takes an object, got %s", name, value.Kind(args[0]))
	}
	keys := m.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return compareKeys(a.Interface(), b.Interface()) })
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = each(k.Interface(), m.MapIndex(k).Interface())
	}
	return out, nil
}

// compareKeys orders map keys: numbers by value, then strings, then anything else
// by its text.
func compareKeys(a, b any) int {
	fa, aNum := value.Float(a)
	fb, bNum := value.Float(b)
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	switch {
	case aNum && bNum:
		return cmp.Compare(fa, fb)
	case aNum != bNum:
		if aNum {
			return -1
		}
		return 1
	case aStr && bStr:
		return strings.Compare(sa, sb)
	case aStr != bStr:
		if aStr {
			return -1
		}
		return 1
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// add is expr's `+`, refusing to build a string longer than maxExprString.
func add(args ...any) (any, error) {
	if a, ok := args[0].(string); ok {
		if b, ok := args[1].(string); ok {
			if len(a)+len(b) > maxExprString {
				return nil, tooLong(len(a) + len(b))
			}
			return a + b, nil
		}
	}
	return runtime.Add(args[0], args[1]), nil
}

// bound checks the string a builtin is about to build, before it builds it: args
// are the builtin's name and its arguments. It returns the first argument.
func bound(args ...any) (any, error) {
	name, args := args[0].(string), args[1:]
	size := 0
	switch name {
	case "repeat":
		s, _ := args[0].(string)
		n, _ := value.Int(args[1])
		if n > 0 && len(s) > maxExprString/n {
			return nil, tooLong(len(s) * n)
		}
	case "replace":
		s, _ := args[0].(string)
		old, _ := args[1].(string)
		repl, _ := args[2].(string)
		if len(repl) > len(old) {
			n := strings.Count(s, old) // len(s)+1 for an empty old
			if n > 0 && len(repl)-len(old) > (maxExprString-len(s))/n {
				return nil, tooLong(len(s) + n*(len(repl)-len(old)))
			}
		}
	case "join":
		sep := ""
		if len(args) > 1 {
			sep, _ = args[1].(string)
		}
		if list, ok := args[0].([]any); ok {
			size = len(sep) * max(len(list)-1, 0)
			for _, e := range list {
				if s, ok := e.(string); ok {
					size += len(s)
				}
			}
		}
		if size > maxExprString {
			return nil, tooLong(size)
		}
	}
	return args[0], nil
}

func tooLong(n int) error {
	return fmt.Errorf("the string would be %d MiB long; expressions build strings of at most %d MiB", n>>20, maxExprString>>20)
}

// patchBounds puts the bounded functions in place of `+`, and around the first
// argument of repeat, replace and join. It reports whether it patched node.
func patchBounds(node *ast.Node) bool {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator != "+" {
			return false
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: addFunc}, Arguments: []ast.Node{n.Left, n.Right}})
		return true
	case *ast.BuiltinNode:
		if (n.Name != "repeat" && n.Name != "replace" && n.Name != "join") || len(n.Arguments) == 0 {
			return false
		}
		args := append([]ast.Node{&ast.StringNode{Value: n.Name}}, n.Arguments...)
		check := &ast.CallNode{Callee: &ast.IdentifierNode{Value: boundFunc}, Arguments: args}
		check.SetLocation(n.Arguments[0].Location())
		n.Arguments = append([]ast.Node{check}, n.Arguments[1:]...)
		return true
	}
	return false
}
