package action_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

func TestParams(t *testing.T) {
	s := &action.Spec{Name: "a", Summary: "s", Func: noop, Params: []action.Param{
		{Name: "s", Type: action.String, Default: "def"},
		{Name: "n", Type: action.Integer, Default: 3},
		{Name: "f", Type: action.Number},
		{Name: "b", Type: action.Boolean, Default: true},
		{Name: "d", Type: action.Duration, Default: "1m30s"},
		{Name: "l", Type: action.Array, Items: action.String},
		{Name: "o", Type: action.Object},
		{Name: "key", Type: action.String, Secret: true},
		{Name: "token", Type: action.String, Secret: true},
	}}
	p, err := s.Bind(map[string]any{"f": 2.5, "l": []any{"x", "y"}, "o": map[string]any{"k": 1}, "key": "sk-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.String("s") != "def" || p.Int("n") != 3 || p.Float("f") != 2.5 || !p.Bool("b") || p.Duration("d") != 90*time.Second {
		t.Errorf("scalars: %v", p)
	}
	if diff := cmp.Diff([]string{"x", "y"}, p.Strings("l")); diff != "" {
		t.Errorf("Strings (-want +got):\n%s", diff)
	}
	if p.Object("o")["k"] != 1 || len(p.List("l")) != 2 {
		t.Errorf("containers: %v", p)
	}
	if !p.Has("s") || p.Has("token") || p.Has("nope") || p.String("nope") != "" || p.Int("token") != 0 {
		t.Error("Has and absent parameters")
	}
	if diff := cmp.Diff([]string{"sk-1"}, s.Secrets(p)); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
}

// TestCallIsData checks that a call survives a trip through JSON: it is what another
// machine would receive.
func TestCallIsData(t *testing.T) {
	call := &action.Call{Action: "text.count", Version: "1", Params: action.Params{"text": "a b", "n": 2},
		RunID: "r1", Dir: "lib", Node: "count", Item: "3/0", Attempt: 2, Key: "r1/@1:fan[3]@1:count"}
	b, err := json.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	var back action.Call
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Params["n"] = int(back.Params["n"].(float64))
	if diff := cmp.Diff(call, &back); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLocal(t *testing.T) {
	root := t.TempDir()
	var seen []*action.Env
	probe := &action.Spec{Name: "probe", Summary: "s", Func: func(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
		seen = append(seen, env)
		return map[string]any{"dir": env.Dir, "node": call.Node}, env.Sleep(ctx, 0)
	}}
	reg, err := action.NewRegistry(probe)
	if err != nil {
		t.Fatal(err)
	}
	ex := reg.Local(action.Env{Dir: root, AllowPaths: []string{"/other"}})
	for _, dir := range []string{"", "lib", "lib"} {
		out, err := ex.Execute(context.Background(), &action.Call{Action: "probe", Dir: dir, Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, dir); out["dir"] != want {
			t.Errorf("dir %q: the action sees %v, want %s", dir, out["dir"], want)
		}
	}
	e := seen[0]
	if e.AllowExec || e.Getenv == nil || e.Logger == nil || e.HTTP == nil || e.Sleep == nil {
		t.Errorf("the defaults are not filled in, or exec is allowed: %+v", e)
	}
	if seen[1] != seen[2] {
		t.Error("the Env of one directory is made again for every call")
	}
	if e.Getenv("PATH") != os.Getenv("PATH") {
		t.Error("Getenv is not the process environment by default")
	}
	_, err = ex.Execute(context.Background(), &action.Call{Action: "nope"})
	var ae *action.Error
	if !errors.As(err, &ae) || !ae.Permanent {
		t.Errorf("an unknown action: %v, want a permanent action error", err)
	}

	client := &http.Client{}
	logger := slog.New(slog.DiscardHandler)
	ex = reg.Local(action.Env{AllowExec: true, HTTP: client, Logger: logger, Getenv: func(string) string { return "x" }})
	if _, err := ex.Execute(context.Background(), &action.Call{Action: "probe"}); err != nil {
		t.Fatal(err)
	}
	e = seen[len(seen)-1]
	wd, _ := os.Getwd()
	if !e.AllowExec || e.HTTP != client || e.Logger != logger || e.Getenv("y") != "x" || e.Dir != wd {
		t.Errorf("the granted Env is not passed on: %+v", e)
	}
}
