package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

const testKey = "sk-test-SECRET-0123456789"

// chatStub is an OpenAI-compatible chat-completions server on 127.0.0.1. It
// answers with the first sentence of the prompt's last line, so replies are
// deterministic; its first answer is a 429 with Retry-After, to be retried; with
// reject set, every answer is a 401 that echoes the key it was given.
type chatStub struct {
	mu       sync.Mutex
	requests []map[string]any
	reject   bool
	limited  bool
}

func (s *chatStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	first := !s.limited
	s.limited = true
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	auth := r.Header.Get("Authorization")
	switch {
	case r.URL.Path != "/v1/chat/completions":
		http.NotFound(w, r)
	case s.reject:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error": {"message": "invalid key %s"}}`, strings.TrimPrefix(auth, "Bearer "))
	case auth != "Bearer "+testKey:
		http.Error(w, "no key", http.StatusUnauthorized)
	case first:
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error": {"message": "slow down"}}`, http.StatusTooManyRequests)
	default:
		msgs := req["messages"].([]any)
		prompt := msgs[len(msgs)-1].(map[string]any)["content"].(string)
		lines := strings.Split(strings.TrimSpace(prompt), "\n")
		reply, _, _ := strings.Cut(lines[len(lines)-1], ".")
		json.NewEncoder(w).Encode(map[string]any{
			"model":   req["model"],
			"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": " " + reply + ". "}}},
			"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
		})
	}
}

func llmEnv(url string) map[string]string {
	return map[string]string{"FLOWRUN_LLM_BASE_URL": url + "/v1", "FLOWRUN_LLM_MODEL": "stub-1", "FLOWRUN_LLM_API_KEY": testKey}
}

// checkLLMSummarize runs llm-summarize.yaml against the stub.
func checkLLMSummarize(t *testing.T) {
	stub := &chatStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	var ev events
	res := run(t, "llm-summarize.yaml", nil, runtime.Options{Observers: []runtime.Observer{&ev}}, llmEnv(srv.URL))

	out := string(outputJSON(t, res))
	summaries := field(t, res, "summaries").([]any)
	if len(summaries) != 6 {
		t.Fatalf("%d summaries, want 6: %s", len(summaries), out)
	}
	first := summaries[0].(map[string]any)
	// The stub's reply is the last line's first sentence, padded with spaces that
	// the workflow trims.
	if first["document"] != "data/docs/01-incident-postmortem.txt" || first["summary"] != "We will review the action items at the next reliability meeting." {
		t.Errorf("first summary: %v", first)
	}
	// 6 documents and the merge, 15 tokens each; one more request was the 429.
	if got := field(t, res, "tokens"); got != 105.0 {
		t.Errorf("tokens = %v, want 105", got)
	}
	if len(stub.requests) != 8 {
		t.Errorf("%d requests, want 8 (7 and a retried 429)", len(stub.requests))
	}
	for _, req := range stub.requests {
		if req["model"] != "stub-1" || req["temperature"] != 0.0 {
			t.Errorf("request %v: want model stub-1 and temperature 0", req)
		}
	}
	if final, _ := field(t, res, "final_summary").(string); final == "" {
		t.Errorf("no final summary: %s", out)
	}
	for _, text := range append([]string{out}, ev.lines()...) {
		if strings.Contains(text, "SECRET") {
			t.Fatalf("the API key leaked: %s", text)
		}
	}
}

// TestLLMKeyNeverLeaksOnFailure makes every request fail with a server message
// that echoes the key: the failure report, the errors and the events must not
// hold it.
func TestLLMKeyNeverLeaksOnFailure(t *testing.T) {
	stub := &chatStub{reject: true}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	wf, err := spec.Load("llm-summarize.yaml", registry(t))
	if err != nil {
		t.Fatal(err)
	}
	env := llmEnv(srv.URL)
	var ev events
	_, err = runtime.Run(context.Background(), wf, nil, runtime.Options{Observers: []runtime.Observer{&ev}, Getenv: func(k string) string { return env[k] }})
	var re *runtime.RunError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want the run to fail", err)
	}
	report := runtime.Report(re.Failures)
	if !strings.Contains(report, "401") {
		t.Errorf("the report does not say why:\n%s", report)
	}
	for _, text := range append([]string{err.Error(), report}, ev.lines()...) {
		if strings.Contains(text, "SECRET") {
			t.Fatalf("the API key leaked: %s", text)
		}
	}
}
