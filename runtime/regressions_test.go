package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/runtime"
)

// Regression tests, each named after the bug it pins.

func TestOnErrorDoesNotHandleExpressionErrors(t *testing.T) {
	wf := loadSrc(t, testRegistry(t), `version: 1
state:
  errors: {type: array, reducer: add}
nodes:
  bad:
    action: text.count
    with: {text: "${{ [1, 2][5] }}"}
    on_error:
      update: {errors: "${{ [error.kind] }}"}
`)
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindExpression || re.Failures[0].Handled {
		t.Fatalf("got %v %+v, want an unhandled expression failure", err, re)
	}
}

func TestOnErrorDoesNotHandleBadParameters(t *testing.T) {
	wf := loadSrc(t, testRegistry(t), `version: 1
nodes:
  bad:
    action: text.count
    with: {text: "${{ 42 }}"}
    retry: {max_attempts: 3, delay: 1ms}
    on_error: skip
`)
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindExpression ||
		!strings.Contains(re.Failures[0].Error, `parameter "text": expected a string, got 42`) {
		t.Fatalf("got %v %+v", err, re)
	}
}

func TestConcurrencyLimitSeesStateDefaults(t *testing.T) {
	wf := loadSrc(t, testRegistry(t), `version: 1
state:
  workers: {type: integer, default: 3}
limits: {concurrency: "${{ state.workers }}"}
nodes:
  only:
    update: {workers: 4}
`)
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"workers":4}` {
		t.Errorf("got %s", got)
	}
}

func TestWholeNumbersFromExpressionsAreIntegers(t *testing.T) {
	wf := loadSrc(t, testRegistry(t), `version: 1
state:
  n: {type: integer, default: 6}
  odd: {type: boolean}
  mods: {type: array, reducer: add}
nodes:
  half:
    update: {n: "${{ state.n / 2 }}"}
    next: check
  check:
    update: {odd: "${{ state.n % 2 == 1 }}"}
    next: fan
  fan:
    map: {over: "[6.0, 3.0]", to: mod}
  mod:
    update: {mods: "${{ [input.item % 2] }}"}
`)
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"mods":[0,1],"n":3,"odd":true}` {
		t.Errorf("got %s", got)
	}
}

func TestFailuresInsideToleratedItemsAreTolerated(t *testing.T) {
	wf := loadSrc(t, testRegistry(t), `version: 1
state:
  done: {type: array, reducer: add}
nodes:
  outer:
    map: {over: "[0, 1]", as: o, to: inner, with: {o: "${{ o }}"}, max_failures: 1}
  inner:
    map: {over: "[0, 1]", as: i, to: work, with: {fail: "${{ input.o == 1 && i == 1 }}"}}
  work:
    action: fail
    with: {times: "${{ input.fail ? 1 : 0 }}"}
    update: {done: "${{ [1] }}"}
`)
	res, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	report := runtime.Report(res.Failures)
	if !strings.HasPrefix(report, "tolerated failures: 2\n") || strings.Contains(report, "failed items") {
		t.Errorf("a successful run's report:\n%s", report)
	}
}

func TestSubWorkflowInputErrorsAreNotRetried(t *testing.T) {
	wf := load(t, testRegistry(t), map[string]string{"workflow.yaml": `version: 1
nodes:
  sub:
    workflow: ./sub.yaml
    with: {n: "${{ 'not a number' }}"}
    retry: {max_attempts: 3, delay: 1ms}
    on_error: skip
`, "sub.yaml": `version: 1
state:
  n: {type: integer, required: true}
nodes:
  only:
    update: {n: 1}
`})
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindState || re.Failures[0].Attempts != 0 {
		t.Fatalf("got %v %+v, want one unretried state failure", err, re)
	}
}
