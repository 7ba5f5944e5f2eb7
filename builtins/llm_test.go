package builtins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

const testKey = "sk-test-S3CRET-key/42"

// chatStub is an OpenAI-compatible server whose answers a test scripts.
type chatStub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []chatSeen
	answer   func(n int, r *http.Request, w http.ResponseWriter) // n counts from 0
}

type chatSeen struct {
	Path, Auth string
	Body       map[string]any
}

func newChatStub(t *testing.T, answer func(n int, r *http.Request, w http.ResponseWriter)) *chatStub {
	s := &chatStub{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &body)
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, chatSeen{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
		s.mu.Unlock()
		s.answer(n, r, w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *chatStub) seen() []chatSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chatSeen(nil), s.requests...)
}

func reply(w http.ResponseWriter, content string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"x","model":"served-model","choices":[{"index":0,"message":{"role":"assistant","content":%q}}],
		"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}`, content)
}

// recordSleeps returns an Env.Sleep that returns at once and records the waits.
func recordSleeps() (func(context.Context, time.Duration) error, func() []time.Duration) {
	var mu sync.Mutex
	var waits []time.Duration
	return func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return ctx.Err()
		}, func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Duration(nil), waits...)
		}
}

func TestChatRequestAndOutput(t *testing.T) {
	stub := newChatStub(t, func(_ int, _ *http.Request, w http.ResponseWriter) { reply(w, "Because of Rayleigh scattering.") })
	out, err := run(t, "llm.chat", &action.Env{}, map[string]any{
		"prompt": "Why is the sky blue?", "system": "Be brief.", "model": "m1",
		"base_url": stub.URL + "/v1/", "api_key": testKey, "temperature": 0, "max_tokens": 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"text":  "Because of Rayleigh scattering.",
		"model": "served-model",
		"usage": map[string]any{"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantSeen := []chatSeen{{
		Path: "/v1/chat/completions",
		Auth: "Bearer " + testKey,
		Body: map[string]any{
			"model": "m1",
			"messages": []any{
				map[string]any{"role": "system", "content": "Be brief."},
				map[string]any{"role": "user", "content": "Why is the sky blue?"},
			},
			"temperature": 0.0, "max_tokens": 50.0, "stream": false,
		},
	}}
	if diff := cmp.Diff(wantSeen, stub.seen()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestChatMessagesAndEnvFallback(t *testing.T) {
	stub := newChatStub(t, func(_ int, _ *http.Request, w http.ResponseWriter) { reply(w, "ok") })
	e := &action.Env{Getenv: mapEnv(map[string]string{
		"FLOWRUN_LLM_BASE_URL": stub.URL + "/v1/chat/completions",
		"FLOWRUN_LLM_MODEL":    "env-model",
	})}
	msgs := []any{
		map[string]any{"role": "user", "content": "Hi"},
		map[string]any{"role": "assistant", "content": "Hello"},
		map[string]any{"role": "user", "content": "Bye"},
	}
	if _, err := run(t, "llm.chat", e, map[string]any{"messages": msgs}); err != nil {
		t.Fatal(err)
	}
	seen := stub.seen()
	if len(seen) != 1 {
		t.Fatalf("%d requests", len(seen))
	}
	if seen[0].Auth != "" {
		t.Errorf("Authorization %q sent without a key", seen[0].Auth)
	}
	if seen[0].Path != "/v1/chat/completions" || seen[0].Body["model"] != "env-model" {
		t.Errorf("path %q model %v", seen[0].Path, seen[0].Body["model"])
	}
	if diff := cmp.Diff(msgs, seen[0].Body["messages"]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestChatMissingConfig(t *testing.T) {
	_, err := run(t, "llm.chat", &action.Env{Getenv: mapEnv(nil)}, map[string]any{"prompt": "hi"})
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent {
		t.Fatalf("err = %#v, want a permanent error", err)
	}
	for _, s := range []string{`"base_url"`, "FLOWRUN_LLM_BASE_URL", `"model"`, "FLOWRUN_LLM_MODEL"} {
		if !strings.Contains(ae.Msg, s) {
			t.Errorf("message %q does not mention %s", ae.Msg, s)
		}
	}
}

func TestChatRetries(t *testing.T) {
	date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		answer    func(n int, r *http.Request, w http.ResponseWriter)
		wantErr   bool
		permanent bool
		status    int
		requests  int
		waits     []time.Duration
	}{
		{
			name: "429 with Retry-After seconds, then success",
			answer: func(n int, _ *http.Request, w http.ResponseWriter) {
				if n == 0 {
					w.Header().Set("Retry-After", "7")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				}
				reply(w, "ok")
			},
			requests: 2, waits: []time.Duration{7 * time.Second},
		},
		{
			name: "503 with Retry-After date, then success",
			answer: func(n int, _ *http.Request, w http.ResponseWriter) {
				if n == 0 {
					w.Header().Set("Retry-After", date)
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				reply(w, "ok")
			},
			requests: 2,
		},
		{
			name: "500s exhausted",
			answer: func(_ int, _ *http.Request, w http.ResponseWriter) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			wantErr: true, status: 500, requests: 5,
			waits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		},
		{
			name: "400 is permanent and not retried",
			answer: func(_ int, _ *http.Request, w http.ResponseWriter) {
				http.Error(w, `{"error":{"message":"unknown model"}}`, http.StatusBadRequest)
			},
			wantErr: true, permanent: true, status: 400, requests: 1,
		},
		{
			name: "Retry-After beyond five minutes is not waited for",
			answer: func(_ int, _ *http.Request, w http.ResponseWriter) {
				w.Header().Set("Retry-After", "86400")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantErr: true, status: 429, requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newChatStub(t, tt.answer)
			sleep, waits := recordSleeps()
			_, err := run(t, "llm.chat", &action.Env{Sleep: sleep}, map[string]any{"prompt": "hi", "model": "m", "base_url": stub.URL + "/v1"})
			if got := len(stub.seen()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if tt.name == "503 with Retry-After date, then success" {
				if w := waits(); len(w) != 1 || w[0] <= 0 || w[0] > 3*time.Second {
					t.Errorf("waits %v, want one of at most 3s", w)
				}
			} else if diff := cmp.Diff(tt.waits, waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *action.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an action error", err)
			}
			if ae.Permanent != tt.permanent || ae.Fields["status"] != tt.status {
				t.Errorf("permanent %v status %v, want %v %v (%s)", ae.Permanent, ae.Fields["status"], tt.permanent, tt.status, ae.Msg)
			}
		})
	}
}

func TestChatCancelledDuringRetryWait(t *testing.T) {
	stub := newChatStub(t, func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	ctx, cancel := context.WithCancel(context.Background())
	e := &action.Env{Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}}
	s := spec(t, "llm.chat")
	params, _ := s.Bind(map[string]any{"prompt": "hi", "model": "m", "base_url": stub.URL})
	_, err := local(t, e).Execute(ctx, &action.Call{Action: s.Name, Params: params, Attempt: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(stub.seen()); n != 1 {
		t.Errorf("%d requests after cancellation", n)
	}
}

// TestChatKeyNeverLeaks runs llm.chat against servers that echo the key back in
// every way and checks that neither the output nor any error mentions it.
func TestChatKeyNeverLeaks(t *testing.T) {
	echo := func(status int) func(int, *http.Request, http.ResponseWriter) {
		return func(_ int, r *http.Request, w http.ResponseWriter) {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":"bad key %s (header %s) url %s"}}`,
				testKey, r.Header.Get("Authorization"), r.URL)
		}
	}
	tests := []struct {
		name   string
		answer func(int, *http.Request, http.ResponseWriter)
		base   func(url string) string
	}{
		{name: "success echoing the key", answer: func(_ int, r *http.Request, w http.ResponseWriter) {
			reply(w, "your key is "+testKey+" and "+r.Header.Get("Authorization"))
		}},
		{name: "401 echoing the key", answer: echo(http.StatusUnauthorized)},
		{name: "500s echoing the key", answer: echo(http.StatusInternalServerError)},
		{name: "malformed reply echoing the key", answer: func(_ int, _ *http.Request, w http.ResponseWriter) {
			fmt.Fprintf(w, `{"choices": "not a list", "key": %q}`, testKey)
		}},
		{name: "key in the base URL", answer: echo(http.StatusNotFound),
			base: func(u string) string { return u + "/" + testKey + "/v1" }},
		{name: "unreachable server with the key in the URL", answer: echo(http.StatusOK),
			base: func(string) string { return "http://127.0.0.1:1/" + testKey }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newChatStub(t, tt.answer)
			base := stub.URL + "/v1"
			if tt.base != nil {
				base = tt.base(stub.URL)
			}
			sleep, _ := recordSleeps()
			out, err := run(t, "llm.chat", &action.Env{Sleep: sleep}, map[string]any{
				"prompt": "hi", "model": "m", "base_url": base, "api_key": testKey,
			})
			data, _ := json.Marshal(out)
			texts := []string{string(data)}
			for e := err; e != nil; e = errors.Unwrap(e) {
				texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
			}
			var ae *action.Error
			if errors.As(err, &ae) {
				texts = append(texts, fmt.Sprint(ae.Fields))
			}
			for _, s := range texts {
				if strings.Contains(s, testKey) || strings.Contains(s, "S3CRET") {
					t.Errorf("key leaked: %s", s)
				}
			}
			if err == nil && !strings.Contains(out["text"].(string), "***") {
				t.Errorf("text %q: want the key replaced by ***", out["text"])
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"-3", 0, true},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

// TestChatPlaceholder: the reply a plan assumes is as long as the estimate says
// (so a prompt built from it is estimated as it will be) and reports the
// estimate as its usage, the way Used reads a real reply.
func TestChatPlaceholder(t *testing.T) {
	m := llmChat().Meter
	for _, n := range []int{0, 1, 7, 200} {
		out := m.Placeholder("gpt-4o-mini", action.Usage{Input: 30, Output: n})
		text := out["text"].(string)
		if got := m.Estimate(action.Params{"prompt": text, "max_tokens": 1}).Input - 4; got != n && !(n == 0 && got == 0) {
			t.Errorf("a placeholder of %d tokens is estimated at %d (%q)", n, got, text)
		}
		if u, ok := m.Used(out); (n > 0 || ok) && (!ok || u != (action.Usage{Input: 30, Output: n})) {
			t.Errorf("usage of the placeholder: %v %v, want 30 in, %d out", u, ok, n)
		}
		if out["model"] != "gpt-4o-mini" {
			t.Errorf("model %v", out["model"])
		}
	}
	if out := m.Placeholder("m", action.Usage{Output: -3}); out["text"] != "" {
		t.Errorf("a negative estimate gives %q", out["text"])
	}
}
