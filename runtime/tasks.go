package runtime

import (
	"encoding/json"
	"fmt"

	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/value"
)

// tasks are a map's units of work over its list: one per element, one per batch, or
// one per chunk. Task i is computed when a worker asks for it, in O(1) (batches
// bounded by bytes are sized in one pass first).
type tasks struct {
	items  []any
	n      int   // the number of tasks
	size   int   // batch: elements per task; 0: one element per task
	chunks int   // chunks: the number of chunks
	bounds []int // max_bytes batches: start of each task, and len(items) last
}

func (t *tasks) len() int { return t.n }

// at returns task i: an element, or a list of elements.
func (t *tasks) at(i int) any {
	switch {
	case t.bounds != nil:
		return t.items[t.bounds[i]:t.bounds[i+1]:t.bounds[i+1]]
	case t.chunks > 0:
		size, rest := len(t.items)/t.chunks, len(t.items)%t.chunks
		start := i*size + min(i, rest)
		end := start + size
		if i < rest {
			end++
		}
		return t.items[start:end:end]
	case t.size > 0:
		start := i * t.size
		end := min(start+t.size, len(t.items))
		return t.items[start:end:end]
	}
	return t.items[i]
}

// planTasks evaluates a map's list and its batching.
func (c *chain) planTasks(mp *spec.Map, vars map[string]any) (tasks, error) {
	x, err := mp.Over.Eval(c.m, vars)
	if err != nil {
		return tasks{}, err
	}
	items, ok := x.([]any)
	if !ok {
		if x == nil {
			items = nil // a null list fans out to nothing
		} else {
			return tasks{}, fmt.Errorf("%s: over gave %s, expected a list", mp.Over.Pos, value.Describe(x))
		}
	}
	t := tasks{items: items, n: len(items)}
	switch {
	case mp.Chunks != nil:
		k, err := c.r.count(mp.Chunks, vars, 1)
		if err != nil {
			return tasks{}, err
		}
		t.chunks = min(k, len(items))
		t.n = t.chunks
	case mp.MaxBytes != nil:
		maxItems := len(items)
		if mp.Batch != nil {
			if maxItems, err = c.r.count(mp.Batch, vars, 1); err != nil {
				return tasks{}, err
			}
		}
		maxBytes, err := c.r.count(mp.MaxBytes, vars, 1)
		if err != nil {
			return tasks{}, err
		}
		if t.bounds, err = byteBatches(items, maxItems, maxBytes); err != nil {
			return tasks{}, err
		}
		t.n = len(t.bounds) - 1
	case mp.Batch != nil:
		if t.size, err = c.r.count(mp.Batch, vars, 1); err != nil {
			return tasks{}, err
		}
		t.n = (len(items) + t.size - 1) / t.size
	}
	return t, nil
}

// byteBatches cuts items into batches of at most maxItems elements whose JSON
// encoding ("[a,b,c]") is at most maxBytes long; an element larger than that alone
// makes a batch of one.
func byteBatches(items []any, maxItems, maxBytes int) ([]int, error) {
	bounds := []int{0}
	count, size := 0, 2 // "[" and "]"
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %v", i, err)
		}
		add := len(b)
		if count > 0 {
			add++ // the comma
		}
		if count > 0 && (count == maxItems || size+add > maxBytes) {
			bounds = append(bounds, i)
			count, size, add = 0, 2, len(b)
		}
		count++
		size += add
	}
	if len(items) > 0 {
		bounds = append(bounds, len(items))
	}
	return bounds, nil
}
