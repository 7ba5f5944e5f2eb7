package runtime_test

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// A Go program registers its own action beside the built-ins, loads a workflow that
// uses it (testdata/examples/shout.yaml), and runs it.
func ExampleRun() {
	shout := &action.Spec{
		Name:    "demo.shout",
		Summary: "Upper-case a text.",
		Params:  []action.Param{{Name: "text", Type: action.String, Required: true, Doc: "The text."}},
		Output:  []action.Field{{Name: "text", Type: action.String, Doc: "The text, upper-cased."}},
		Func: func(ctx context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
			return map[string]any{"text": strings.ToUpper(call.Params.String("text"))}, nil
		},
	}
	reg, err := action.NewRegistry(append(builtins.All(), shout)...)
	if err != nil {
		panic(err)
	}
	wf, err := spec.Load("testdata/examples/shout.yaml", reg)
	if err != nil {
		panic(err)
	}
	res, err := runtime.Run(context.Background(), wf, map[string]any{"words": []any{"map", "reduce"}}, runtime.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Output["loud"])
	// Output: [MAP! REDUCE!]
}

// An executor carries out every action call of a run. This one wraps the local
// executor, which runs the registry's actions in this process, to count calls by
// action: the same seam serves remote workers, test mocks, rate limits and caches.
func ExampleOptions_executor() {
	reg, err := action.NewRegistry(builtins.All()...)
	if err != nil {
		panic(err)
	}
	wf, err := spec.Load("testdata/examples/count.yaml", reg)
	if err != nil {
		panic(err)
	}
	local := reg.Local(action.Env{Dir: wf.Dir}) // no exec, files inside wf.Dir only
	var mu sync.Mutex
	calls := map[string]int{}
	counting := action.ExecutorFunc(func(ctx context.Context, call *action.Call) (map[string]any, error) {
		mu.Lock()
		calls[call.Action]++
		mu.Unlock()
		return local.Execute(ctx, call)
	})
	res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Executor: counting})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Output["words"], calls)
	// Output: 3 map[text.count:2]
}
