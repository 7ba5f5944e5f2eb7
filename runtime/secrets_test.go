package runtime_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/runtime"
)

// TestEnvRefusesSecretNamesAtRunTime: env() of a name computed at run time that
// looks like a secret's is refused, as the loader refuses it when written out.
func TestEnvRefusesSecretNamesAtRunTime(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "env-dynamic.yaml")
	getenv := func(string) string { return "sk-live-123" }
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Getenv: getenv})
	if err == nil || !strings.Contains(err.Error(), `env("MY_API_KEY"): the name looks like a secret's: read it with secret("MY_API_KEY")`) ||
		strings.Contains(err.Error(), "sk-live-123") {
		t.Errorf("err = %v", err)
	}
}

// TestSecretMaskedInExpressionErrors: an expression error that quotes what
// secret() read shows *** instead.
func TestSecretMaskedInExpressionErrors(t *testing.T) {
	wf := loadArchive(t, testRegistry(t), "seams", "secret-in-error.yaml")
	getenv := func(string) string { return "not-a-number-sk42" }
	_, err := runtime.Run(context.Background(), wf, nil, runtime.Options{Getenv: getenv})
	if err == nil || strings.Contains(err.Error(), "sk42") || !strings.Contains(err.Error(), "***") {
		t.Errorf("err = %v", err)
	}
}
