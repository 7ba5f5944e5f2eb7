package builtins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

func TestAllRegisters(t *testing.T) {
	reg, err := action.NewRegistry(All()...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exec", "fail", "file.list", "file.read", "file.write", "http.request", "llm.chat",
		"log", "sleep", "text.count", "text.join", "text.split", "text.summarize"}
	if diff := cmp.Diff(want, reg.Names()); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestAllReturnsFreshDeclarations(t *testing.T) {
	a := All()
	a[0].Name = "changed"
	a[0].Params[0].Doc = "changed"
	if b := All(); b[0].Name == "changed" || b[0].Params[0].Doc == "changed" {
		t.Error("All shares declarations between calls")
	}
}

func TestDocumented(t *testing.T) {
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			if s.Summary == "" || strings.Contains(s.Summary, "\n") || !strings.HasSuffix(s.Summary, ".") {
				t.Errorf("summary %q: want one line ending in a period", s.Summary)
			}
			if len(s.Doc) < 80 {
				t.Errorf("doc too short: %q", s.Doc)
			}
			for _, p := range s.Params {
				if p.Doc == "" {
					t.Errorf("parameter %q has no doc", p.Name)
				}
				if p.Name == "api_key" && !p.Secret {
					t.Errorf("parameter %q is not secret", p.Name)
				}
			}
			for _, f := range s.Output {
				if f.Doc == "" || f.Type == "" {
					t.Errorf("output field %q has no doc or type", f.Name)
				}
			}
			if len(s.Examples) == 0 {
				t.Error("no example")
			}
			for i, ex := range s.Examples {
				if ex.Summary == "" || ex.With == "" {
					t.Errorf("example %d: want a summary and a with", i)
				}
			}
		})
	}
}

// exampleFiles are the files the file.* examples read.
var exampleFiles = map[string]string{
	"notes.txt":               "buy milk\ncall Ada\n",
	"config/settings.json":    `{"name": "demo", "workers": 4, "ratio": 0.5, "tags": ["a", "b"]}`,
	"config/settings.yaml":    "name: demo\nworkers: 4\nratio: 0.5\ntags: [a, b]\n",
	"docs/index.md":           "# Index\n",
	"docs/guide/install.md":   "# Install\n",
	"docs/guide/usage/cli.md": "# CLI\n",
	"docs/guide/notes.txt":    "not markdown\n",
}

func TestExamples(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, exampleFiles)
	srv := stubServer(t)
	e := &action.Env{
		Dir:       dir,
		AllowExec: true,
		HTTP:      srv.Client(),
		Sleep:     func(context.Context, time.Duration) error { return nil },
		Getenv: mapEnv(map[string]string{
			"FLOWRUN_LLM_BASE_URL": srv.URL + "/v1",
			"FLOWRUN_LLM_MODEL":    "test-model",
		}),
	}
	for _, s := range All() {
		for i, ex := range s.Examples {
			t.Run(fmt.Sprintf("%s/%d", s.Name, i), func(t *testing.T) {
				with := parseYAML(t, ex.With).(map[string]any)
				switch s.Name {
				case "llm.chat":
					if _, ok := with["base_url"]; ok {
						with["base_url"] = srv.URL + "/v1"
					}
				case "http.request":
					u, err := url.Parse(with["url"].(string))
					if err != nil {
						t.Fatal(err)
					}
					stub, _ := url.Parse(srv.URL)
					u.Scheme, u.Host = stub.Scheme, stub.Host
					with["url"] = u.String()
				}
				params, err := s.Bind(with)
				if err != nil {
					t.Fatalf("bind: %v", err)
				}
				got, err := local(t, e).Execute(context.Background(), &action.Call{Action: s.Name, Params: params, Attempt: 3, Node: "example", Item: "0"})
				if err != nil {
					var ae *action.Error
					if s.Name == "fail" && ex.Output == "" && errors.As(err, &ae) {
						return // this example fails on purpose
					}
					t.Fatalf("run: %v", err)
				}
				checkJSONTypes(t, "output", got)
				if ex.Output == "" {
					return
				}
				want := parseYAML(t, ex.Output)
				if diff := cmp.Diff(want, any(got)); diff != "" {
					t.Errorf("output (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// run binds with to the named action and runs one attempt through the local
// executor granting e.
func run(t *testing.T, name string, e *action.Env, with map[string]any) (map[string]any, error) {
	t.Helper()
	return runEnv(t, e, name, &action.Call{Attempt: 1, Node: "n"}, with)
}

// runCall is run with the given call's attempt, node and item, and nothing granted.
func runCall(t *testing.T, name string, call *action.Call, with map[string]any) (map[string]any, error) {
	t.Helper()
	return runEnv(t, &action.Env{}, name, call, with)
}

func runEnv(t *testing.T, e *action.Env, name string, call *action.Call, with map[string]any) (map[string]any, error) {
	t.Helper()
	s := spec(t, name)
	params, err := s.Bind(with)
	if err != nil {
		t.Fatalf("bind %s: %v", name, err)
	}
	call.Action, call.Params = name, params
	out, err := local(t, e).Execute(context.Background(), call)
	if err == nil {
		checkJSONTypes(t, "output", out)
	}
	return out, err
}

// local is the local executor of the built-ins, granting e.
func local(t *testing.T, e *action.Env) action.Executor {
	t.Helper()
	reg, err := action.NewRegistry(All()...)
	if err != nil {
		t.Fatal(err)
	}
	if e == nil {
		e = &action.Env{}
	}
	return reg.Local(*e)
}

func spec(t *testing.T, name string) *action.Spec {
	t.Helper()
	for _, s := range All() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no action %q", name)
	return nil
}

// checkJSONTypes fails when v holds a value that is not a JSON type.
func checkJSONTypes(t *testing.T, where string, v any) {
	t.Helper()
	switch v := v.(type) {
	case nil, string, bool, int, float64:
	case []any:
		for i, e := range v {
			checkJSONTypes(t, fmt.Sprintf("%s[%d]", where, i), e)
		}
	case map[string]any:
		for k, e := range v {
			checkJSONTypes(t, where+"."+k, e)
		}
	default:
		t.Errorf("%s: %T is not a JSON type", where, v)
	}
}

func parseYAML(t *testing.T, text string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	n, err := value.Normalize(v)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// stubServer answers chat completions on /v1/chat/completions and echoes any other
// request as JSON.
func stubServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/chat/completions" {
			var req map[string]any
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{
				"model":   req["model"],
				"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": "stub reply"}}},
				"usage":   map[string]any{"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
			})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestReadOnly pins which actions `flowrun plan` runs for real: those with no
// effect besides their output, needing no network, program or waiting. (fail
// has no effect either, but a plan assumes that calls succeed.)
func TestReadOnly(t *testing.T) {
	var got []string
	for _, a := range All() {
		if a.ReadOnly {
			got = append(got, a.Name)
		}
	}
	want := []string{"text.summarize", "text.split", "text.join", "text.count", "file.read", "file.list"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read-only actions (-want +got):\n%s", diff)
	}
}
