package runtime

import (
	"fmt"
	"math"

	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// state is a workflow's shared state. Values handed to expressions (views) are never
// modified afterwards: the first update after a view copies what it changes, and
// later updates of the same field change the copy in place, so merging N items into a
// list costs O(N) in all, not O(N²), while every snapshot stays as it was.
type state struct {
	wf     *spec.Workflow
	values map[string]any
	viewed bool               // values was handed out since it was last copied
	owned  []bool             // per field: its container was made here and never shown
	sets   []map[any]struct{} // per union field: the elements seen, while owned
}

func newState(wf *spec.Workflow, inputs map[string]any) *state {
	s := &state{wf: wf, values: make(map[string]any, len(wf.State)), owned: make([]bool, len(wf.State)),
		sets: make([]map[any]struct{}, len(wf.State))}
	for _, f := range wf.State {
		if v, ok := inputs[f.Name]; ok {
			s.values[f.Name] = v
		} else {
			s.values[f.Name] = f.Default
		}
	}
	return s
}

// view returns the current values. The caller may keep the map and anything in it;
// they will not change.
func (s *state) view() map[string]any {
	if !s.viewed {
		s.viewed = true
		clear(s.owned)
		clear(s.sets)
	}
	return s.values
}

// update is one pending state update: a value for a field, merged by its reducer.
type update struct {
	field *spec.Field
	value any
}

// apply merges an update into the state through the field's reducer. The update's
// type was checked where it was made (chain.assign, or updatesOf for the journal).
func (s *state) apply(m *spec.VM, u update) error {
	f := u.field
	if s.viewed {
		fresh := make(map[string]any, len(s.values))
		for k, v := range s.values {
			fresh[k] = v
		}
		s.values, s.viewed = fresh, false
	}
	cur := s.values[f.Name]
	next, err := s.reduce(m, f, cur, u.value)
	if err != nil {
		return fmt.Errorf("state field %q (reducer %s): %w", f.Name, f.Reducer.Name, err)
	}
	if f.Reducer.Kind == spec.ExprReducer {
		if msg := f.Type.Check(next); msg != "" {
			return fmt.Errorf("state field %q: reducer expression gave a value that is not %s: %s", f.Name, f.Type.Noun(), msg)
		}
	}
	s.values[f.Name] = next
	return nil
}

func (s *state) reduce(m *spec.VM, f *spec.Field, cur, upd any) (any, error) {
	plus := func(a, b int) int { return a + b }
	switch f.Reducer.Kind {
	case spec.Replace:
		s.owned[f.Index] = false
		return upd, nil
	case spec.Add:
		return s.add(f, cur, upd)
	case spec.Append:
		return s.appendList(f, cur, []any{upd})
	case spec.Sum:
		return arith(f, cur, upd, plus, func(a, b float64) float64 { return a + b })
	case spec.Min:
		if cur == nil {
			return upd, nil // the first value seen
		}
		return arith(f, cur, upd, func(a, b int) int { return min(a, b) }, math.Min)
	case spec.Max:
		if cur == nil {
			return upd, nil
		}
		return arith(f, cur, upd, func(a, b int) int { return max(a, b) }, math.Max)
	case spec.Merge:
		return s.merge(f, cur, upd)
	case spec.Union:
		return s.union(f, cur, upd)
	case spec.ExprReducer:
		return f.Reducer.Expr.Eval(m, map[string]any{"current": cur, "update": upd})
	}
	return nil, fmt.Errorf("unknown reducer")
}

// add is Python's operator.add: lists concatenate, numbers add, strings concatenate.
func (s *state) add(f *spec.Field, cur, upd any) (any, error) {
	switch u := upd.(type) {
	case []any:
		if cur == nil {
			cur = []any{}
		}
		if _, ok := cur.([]any); ok {
			return s.appendList(f, cur, u)
		}
	case string:
		if c, ok := cur.(string); ok || cur == nil {
			return c + u, nil
		}
	default:
		if _, ok := value.Float(upd); ok {
			return arith(f, cur, upd, func(a, b int) int { return a + b }, func(a, b float64) float64 { return a + b })
		}
	}
	return nil, fmt.Errorf("cannot add %s to %s", value.Kind(upd), value.Kind(cur))
}

// appendList appends elements to a list field, in place when the list is owned.
func (s *state) appendList(f *spec.Field, cur any, elems []any) (any, error) {
	list, ok := cur.([]any)
	if !ok && cur != nil {
		return nil, fmt.Errorf("cannot append to %s", value.Kind(cur))
	}
	if !s.owned[f.Index] {
		fresh := make([]any, len(list), 2*len(list)+len(elems)+8)
		copy(fresh, list)
		list = fresh
		s.owned[f.Index] = true
	}
	return append(list, elems...), nil
}

// merge sets the update's keys on an object field; the update's keys win.
func (s *state) merge(f *spec.Field, cur, upd any) (any, error) {
	u, ok := upd.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cannot merge %s into an object", value.Kind(upd))
	}
	obj, ok := cur.(map[string]any)
	if !ok && cur != nil {
		return nil, fmt.Errorf("cannot merge into %s", value.Kind(cur))
	}
	if !s.owned[f.Index] {
		fresh := make(map[string]any, len(obj)+len(u))
		for k, v := range obj {
			fresh[k] = v
		}
		obj = fresh
		s.owned[f.Index] = true
	}
	for k, v := range u {
		obj[k] = v
	}
	return obj, nil
}

// union appends the update's elements not yet in the list, in first-seen order.
func (s *state) union(f *spec.Field, cur, upd any) (any, error) {
	u, ok := upd.([]any)
	if !ok {
		return nil, fmt.Errorf("cannot union %s into a list", value.Kind(upd))
	}
	list, ok := cur.([]any)
	if !ok && cur != nil {
		return nil, fmt.Errorf("cannot union into %s", value.Kind(cur))
	}
	seen := s.sets[f.Index]
	if !s.owned[f.Index] || seen == nil {
		fresh := make([]any, 0, 2*len(list)+len(u)+8)
		seen = make(map[any]struct{}, len(list)+len(u))
		for _, e := range list {
			k := value.Key(e)
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				fresh = append(fresh, e)
			}
		}
		list = fresh
		s.owned[f.Index] = true
		s.sets[f.Index] = seen
	}
	for _, e := range u {
		k := value.Key(e)
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			list = append(list, e)
		}
	}
	return list, nil
}

// arith combines two numbers; integers stay integers while they stay exact (within
// ±2^53), and a number field takes a float beyond. An integer field that would
// leave that range, and a result that is not a finite number, are errors.
func arith(f *spec.Field, cur, upd any, ints func(a, b int) int, floats func(a, b float64) float64) (any, error) {
	if cur == nil {
		cur = 0
	}
	ci, cok := cur.(int)
	ui, uok := upd.(int)
	if cok && uok {
		if n := ints(ci, ui); n >= -value.MaxInt && n <= value.MaxInt {
			return n, nil
		}
	}
	cf, cok := value.Float(cur)
	uf, uok := value.Float(upd)
	if !cok || !uok {
		return nil, fmt.Errorf("cannot combine %s with %s", value.Kind(cur), value.Kind(upd))
	}
	n := floats(cf, uf)
	switch {
	case math.IsInf(n, 0) || math.IsNaN(n):
		return nil, fmt.Errorf("%s with %s overflows: the result is not a finite number", value.Describe(cur), value.Describe(upd))
	case f.Type.Name == "integer":
		if _, exact := value.Integral(n); !exact {
			return nil, fmt.Errorf("%s with %s overflows: the result leaves the integers kept exact (±2^53); make the field a number to keep it approximately", value.Describe(cur), value.Describe(upd))
		}
	}
	if i, exact := value.Integral(n); exact {
		return i, nil
	}
	return n, nil
}
