package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/runtime"
)

// Regression tests, each named after the bug it pins; their workflows are in
// testdata/regressions.txtar.

func TestOnErrorDoesNotHandleExpressionErrors(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "regressions", "on-error-does-not-handle-expression-errors.yaml")
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindExpression || re.Failures[0].Handled {
		t.Fatalf("got %v %+v, want an unhandled expression failure", err, re)
	}
}

func TestOnErrorDoesNotHandleBadParameters(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "regressions", "on-error-does-not-handle-bad-parameters.yaml")
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindExpression ||
		!strings.Contains(re.Failures[0].Error, `parameter "text": expected a string, got 42`) {
		t.Fatalf("got %v %+v", err, re)
	}
}

func TestConcurrencyLimitSeesStateDefaults(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "regressions", "concurrency-limit-sees-state-defaults.yaml")
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"workers":4}` {
		t.Errorf("got %s", got)
	}
}

func TestWholeNumbersFromExpressionsAreIntegers(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "regressions", "whole-numbers-from-expressions-are-integers.yaml")
	if got := runJSON(t, wf, nil, runtime.Options{}); got != `{"mods":[0,1],"n":3,"odd":true}` {
		t.Errorf("got %s", got)
	}
}

func TestFailuresInsideToleratedItemsAreTolerated(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "regressions", "failures-inside-tolerated-items-are-tolerated.yaml")
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
	wf := loadArchive(t, testRegistry(t), "regressions", "sub-workflow-input-errors-are-not-retried.yaml")
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{})
	var re *runtime.RunError
	if !errors.As(err, &re) || len(re.Failures) != 1 || re.Failures[0].Kind != runtime.KindState || re.Failures[0].Attempts != 0 {
		t.Fatalf("got %v %+v, want one unretried state failure", err, re)
	}
}
