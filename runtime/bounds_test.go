package runtime_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/runtime"
)

// TestExpressionsBoundedBeforeAllocating: strings an expression would build past
// the limit, and values nested past the depth bound, end the run with an error
// (they killed the process with "out of memory" or a stack overflow).
func TestExpressionsBoundedBeforeAllocating(t *testing.T) {
	for _, tt := range []struct{ file, err string }{
		{"repeat.yaml", "expressions build strings of at most 64 MiB"},
		{"doubling.yaml", "expressions build strings of at most 64 MiB"},
		{"replace.yaml", "expressions build strings of at most 64 MiB"},
		{"join.yaml", "expressions build strings of at most 64 MiB"},
		{"deep.yaml", "nested more than 1000 levels deep"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			wf := loadArchive(t, testRegistry(t), "bounds", tt.file)
			_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
		})
	}
	wf := loadArchive(t, testRegistry(t), "bounds", "fine.yaml")
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"n":3,"s":"abccczzyzzp-q"}` {
		t.Errorf("got %s", got)
	}
}

// TestObjectBuiltinsDeterministic runs every builtin that walks an object (keys,
// values, toPairs, groupBy's groups, toJSON, string, uniq) many times: the result
// is the same every time (keys, values and toPairs followed Go's map order).
func TestObjectBuiltinsDeterministic(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "bounds", "objects.yaml")
	first := runJSON(t, wf, nil, runtime.Options{})
	if !strings.Contains(first, `"keys":["k1","k10","k11"`) || !strings.Contains(first, `"groups":[[0,[7,14,21,28,35]],[1,`) {
		t.Fatalf("not in key order: %s", first)
	}
	for range 30 {
		if got := runJSON(t, wf, nil, runtime.Options{}); got != first {
			t.Fatalf("the output changed between runs:\n%s\n%s", first, got)
		}
	}
}

// TestSumOverflow: an integer sum that leaves the exact integers wrapped silently
// (1100 × (2^53−1) gave a negative number and exit 0), and a float sum reaching
// +Inf was stored as succeeded. Both are state errors naming the node, the field
// and the item; a number field goes on as a float.
func TestSumOverflow(t *testing.T) {
	for _, tt := range []struct{ file, err string }{
		{"int-overflow.yaml", `node "fan": merging item 1: state field "total" (reducer sum): 9007199254740991 with 9007199254740991 overflows: the result leaves the integers kept exact`},
		{"float-overflow.yaml", `node "second": state field "total" (reducer sum): 1e+308 with 1e+308 overflows: the result is not a finite number`},
	} {
		wf := loadArchive(t, testRegistry(t), "bounds", tt.file)
		_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.file, err, tt.err)
		}
	}
	wf := loadArchive(t, testRegistry(t), "bounds", "number-sum.yaml")
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"total":9907919180215090000}` {
		t.Errorf("number sum: %s", got)
	}
}
