package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsMaskedInEverySink: a secret read with secret(), and the
// Authorization and X-Api-Key headers of http.request, never reach stdout,
// stderr, events, the run store or `flowrun runs --json`, even when a server
// echoes them back in a reply or an error.
func TestSecretsMaskedInEverySink(t *testing.T) {
	const token, apiKey = "tok-supersecret-42", "k-123456789"
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo, _ := json.Marshal(map[string]any{"auth": r.Header.Get("Authorization"), "key": r.Header.Get("X-Api-Key"), "body": string(body)})
		if r.URL.Path == "/fail" {
			http.Error(w, string(echo), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(echo)
	}))
	defer stub.Close()
	t.Setenv("STUB_URL", stub.URL)
	t.Setenv("STUB_TOKEN", token)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	events := filepath.Join(dir, "events.jsonl")

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"flowrun", "run", "testdata/secrets/workflow.yaml", "--run-id", "s1",
		"--store", store, "--events", events, "--progress", "never"}, &stdout, &stderr)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d (the map fails):\n%s", code, exitFailed, stderr.String())
	}
	var runs bytes.Buffer
	if code := run(context.Background(), []string{"flowrun", "runs", "--json", "--store", store}, &runs, io.Discard); code != 0 {
		t.Fatalf("runs --json: exit %d", code)
	}
	sinks := map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "runs --json": runs.String()}
	for _, f := range []string{events, filepath.Join(store, "runs", "s1", "meta.json"), filepath.Join(store, "runs", "s1", "journal.log"),
		filepath.Join(store, "runs", "s1", "events.jsonl"), filepath.Join(store, "runs", "s1", "inputs.json")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sinks[filepath.Base(f)] = string(b)
	}
	for name, text := range sinks {
		for _, secret := range []string{token, apiKey} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a secret:\n%s", name, text)
			}
		}
	}
	// The echoes are there, masked: in the first node's output (journal) and in the
	// failures (stderr, events).
	if !strings.Contains(sinks["journal.log"], `"auth":"***"`) || !strings.Contains(sinks["journal.log"], `"key":"***"`) {
		t.Errorf("the journal does not hold the masked echo:\n%s", sinks["journal.log"])
	}
	if !strings.Contains(sinks["stderr"], `"auth":"***"`) || !strings.Contains(sinks["events.jsonl"], `\"auth\":\"***\"`) {
		t.Errorf("the failure report or the events lack the masked echo:\n%s\n%s", sinks["stderr"], sinks["events.jsonl"])
	}
}
