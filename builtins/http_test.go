package builtins

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

// echoServer answers with a JSON description of each request.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		s, _ := jsonText(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "body": string(body),
			"content_type": r.Header.Get("Content-Type"), "token": r.Header.Get("X-Token"), "host": r.Host,
		})
		io.WriteString(w, s)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRequest(t *testing.T) {
	srv := echoServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		with map[string]any
		want map[string]any // expected echo
	}{
		{
			name: "GET with query",
			with: map[string]any{"url": srv.URL + "/items?x=1", "query": map[string]any{"page": 2, "tag": []any{"a b", "c"}, "on": true}},
			want: map[string]any{"method": "GET", "path": "/items", "query": "x=1&on=true&page=2&tag=a+b&tag=c", "body": "", "content_type": "", "token": "", "host": host},
		},
		{
			name: "POST JSON with headers",
			with: map[string]any{"url": srv.URL + "/p", "method": "POST", "json": map[string]any{"n": 1, "s": "<x>"}, "headers": map[string]any{"X-Token": "t0k", "Host": "example.test"}},
			want: map[string]any{"method": "POST", "path": "/p", "query": "", "body": `{"n":1,"s":"<x>"}`, "content_type": "application/json", "token": "t0k", "host": "example.test"},
		},
		{
			name: "PUT raw body keeps a given content type",
			with: map[string]any{"url": srv.URL, "method": "PUT", "body": "a=1", "headers": map[string]any{"Content-Type": "text/plain"}},
			want: map[string]any{"method": "PUT", "path": "/", "query": "", "body": "a=1", "content_type": "text/plain", "token": "", "host": host},
		},
		{
			name: "DELETE",
			with: map[string]any{"url": srv.URL + "/x/1", "method": "DELETE"},
			want: map[string]any{"method": "DELETE", "path": "/x/1", "query": "", "body": "", "content_type": "", "token": "", "host": host},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, "http.request", &action.Env{}, tt.with)
			if err != nil {
				t.Fatal(err)
			}
			if out["status"] != 200 {
				t.Errorf("status %v", out["status"])
			}
			if diff := cmp.Diff(tt.want, out["json"]); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			hdr := out["headers"].(map[string]any)
			if hdr["x-multi"] != "a, b" || hdr["content-type"] != "application/json; charset=utf-8" {
				t.Errorf("headers %v", hdr)
			}
			if body, _ := jsonText(tt.want); out["body"] != body {
				t.Errorf("body %q, want %q", out["body"], body)
			}
		})
	}
}

func TestRequestBodyParsing(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		want              any
	}{
		{"json numbers", "application/json", `{"i": 3, "f": 1.5, "big": 1e300, "one": 1.0, "l": [true, null]}`,
			map[string]any{"i": 3, "f": 1.5, "big": 1e300, "one": 1, "l": []any{true, nil}}},
		{"json without content type", "text/plain", `[1, "a"]`, []any{1, "a"}},
		{"problem+json", "application/problem+json", `{"a": 1}`, map[string]any{"a": 1}},
		{"text", "text/plain", "hello", nil},
		{"invalid json", "application/json", `{"a":`, nil},
		{"trailing data", "application/json", `{} {}`, nil},
		{"empty", "application/json", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			out, err := run(t, "http.request", &action.Env{HTTP: srv.Client()}, map[string]any{"url": srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out["json"]); diff != "" {
				t.Errorf("json (-want +got):\n%s", diff)
			}
			if out["body"] != tt.body {
				t.Errorf("body %q", out["body"])
			}
		})
	}
}

func TestRequestStatusErrors(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{
		{400, true}, {404, true}, {401, true}, {408, false}, {429, false}, {500, false}, {503, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "went wrong: details", tt.status)
			}))
			defer srv.Close()
			_, err := run(t, "http.request", &action.Env{}, map[string]any{"url": srv.URL + "/thing?token=secret"})
			var ae *action.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an action error", err)
			}
			if ae.Permanent != tt.permanent {
				t.Errorf("permanent = %v, want %v", ae.Permanent, tt.permanent)
			}
			if diff := cmp.Diff(map[string]any{"status": tt.status}, ae.Fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if !strings.Contains(ae.Msg, "went wrong: details") || !strings.Contains(ae.Msg, "/thing") {
				t.Errorf("message %q lacks the body excerpt or the URL", ae.Msg)
			}
			if strings.Contains(ae.Msg, "secret") {
				t.Errorf("message %q shows the query string", ae.Msg)
			}
		})
	}
}

func TestRequestNetworkErrorsAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := run(t, "http.request", &action.Env{}, map[string]any{"url": url + "/?k=secret"})
	var ae *action.Error
	if !errors.As(err, &ae) || ae.Permanent {
		t.Fatalf("err = %#v, want a retryable action error", err)
	}
	if strings.Contains(ae.Msg, "secret") {
		t.Errorf("message %q shows the query string", ae.Msg)
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := run(t, "http.request", &action.Env{}, map[string]any{"url": srv.URL, "timeout": "50ms"})
	var ae *action.Error
	if !errors.As(err, &ae) || ae.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v, want a retryable timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 1<<20)
		for range 33 {
			io.WriteString(w, chunk)
		}
	}))
	defer srv.Close()
	_, err := run(t, "http.request", &action.Env{}, map[string]any{"url": srv.URL})
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent || !strings.Contains(ae.Msg, "32 MiB") {
		t.Fatalf("err = %#v", err)
	}
}

func TestRequestBadParameters(t *testing.T) {
	for _, with := range []map[string]any{
		{"url": "ftp://example.com/x"},
		{"url": "not a url"},
		{"url": "http://127.0.0.1/", "headers": map[string]any{"X": []any{"a"}}},
		{"url": "http://127.0.0.1/", "query": map[string]any{"q": map[string]any{}}},
	} {
		_, err := run(t, "http.request", &action.Env{}, with)
		var ae *action.Error
		if !errors.As(err, &ae) || !ae.Permanent {
			t.Errorf("%v: err = %v, want a permanent error", with, err)
		}
	}
	if _, err := spec(t, "http.request").Bind(map[string]any{"url": "http://x", "json": 1, "body": "b"}); err == nil {
		t.Error("json and body together: want a bind error")
	}
}
