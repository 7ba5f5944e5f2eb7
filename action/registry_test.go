package action_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/action"
)

func noop(context.Context, *action.Call, *action.Env) (map[string]any, error) { return nil, nil }

func TestNewRegistry(t *testing.T) {
	ok := func(name string) *action.Spec { return &action.Spec{Name: name, Summary: "s", Func: noop} }
	tests := []struct {
		name  string
		specs []*action.Spec
		err   string
	}{
		{"valid", []*action.Spec{ok("a.b"), ok("c")}, ""},
		{"declared twice", []*action.Spec{ok("a"), ok("a")}, `action "a" declared twice`},
		{"bad name", []*action.Spec{ok("Text.Sum")}, `action name "Text.Sum": want lower-case words separated by dots`},
		{"no summary", []*action.Spec{{Name: "a", Func: noop}}, `action "a": no summary`},
		{"no func", []*action.Spec{{Name: "a", Summary: "s"}}, `action "a": no function`},
		{"default of the wrong type", []*action.Spec{{Name: "a", Summary: "s", Func: noop,
			Params: []action.Param{{Name: "n", Type: action.Integer, Default: "x"}}}},
			`action "a" parameter "n": default: expected an integer, got "x"`},
		{"required with a default", []*action.Spec{{Name: "a", Summary: "s", Func: noop,
			Params: []action.Param{{Name: "n", Type: action.Integer, Default: 1, Required: true}}}},
			`action "a" parameter "n": required with a default`},
		{"one-of names an unknown parameter", []*action.Spec{{Name: "a", Summary: "s", Func: noop,
			OneOf: []action.OneOf{{Params: []string{"x"}}}}},
			`action "a": one-of group names unknown parameter "x"`},
		{"unknown type", []*action.Spec{{Name: "a", Summary: "s", Func: noop,
			Params: []action.Param{{Name: "n", Type: "float"}}}},
			`action "a" parameter "n": unknown type "float"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := action.NewRegistry(tt.specs...)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]string{"a.b", "c"}, reg.Names()); diff != "" {
					t.Errorf("names (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestBind(t *testing.T) {
	s := &action.Spec{Name: "a", Summary: "s", Func: noop,
		Params: []action.Param{
			{Name: "text", Type: action.String, Required: true},
			{Name: "n", Type: action.Integer, Default: 3},
			{Name: "mode", Type: action.String, Enum: []any{"fast", "slow"}, Default: "fast"},
			{Name: "tags", Type: action.Array, Items: action.String},
			{Name: "wait", Type: action.Duration},
			{Name: "prompt", Type: action.String},
			{Name: "messages", Type: action.Array},
		},
		OneOf: []action.OneOf{{Params: []string{"prompt", "messages"}, Required: true}},
	}
	tests := []struct {
		name string
		with map[string]any
		want action.Params
		err  string
	}{
		{"defaults apply", map[string]any{"text": "x", "prompt": "p"},
			action.Params{"text": "x", "n": 3, "mode": "fast", "prompt": "p"}, ""},
		{"an integral float is an integer", map[string]any{"text": "x", "n": 4.0, "prompt": "p"},
			action.Params{"text": "x", "n": 4.0, "mode": "fast", "prompt": "p"}, ""},
		{"unknown", map[string]any{"text": "x", "txet": 1}, nil, `unknown parameter "txet"`},
		{"missing", map[string]any{"prompt": "p"}, nil, `missing parameter "text"`},
		{"null is missing", map[string]any{"text": nil, "prompt": "p"}, nil, `missing parameter "text"`},
		{"wrong type", map[string]any{"text": 1, "prompt": "p"}, nil, `parameter "text": expected a string, got 1`},
		{"not integral", map[string]any{"text": "x", "n": 2.5, "prompt": "p"}, nil, `parameter "n": expected an integer, got 2.5`},
		{"enum", map[string]any{"text": "x", "mode": "quick", "prompt": "p"}, nil, `parameter "mode": expected one of "fast", "slow", got "quick"`},
		{"element type", map[string]any{"text": "x", "tags": []any{"a", 2}, "prompt": "p"}, nil, `parameter "tags": element 1: expected a string, got 2`},
		{"duration", map[string]any{"text": "x", "wait": "soon", "prompt": "p"}, nil, `parameter "wait": expected a duration such as "150ms" or "2m", got "soon"`},
		{"one of: none", map[string]any{"text": "x"}, nil, `missing parameter: give one of "prompt" and "messages"`},
		{"one of: both", map[string]any{"text": "x", "prompt": "p", "messages": []any{}}, nil, `give only one of "prompt" and "messages"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Bind(tt.with)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := action.Permanentf("status %d", 404)
	if !e.Permanent || e.Error() != "status 404" {
		t.Errorf("Permanentf: %+v", e)
	}
	if r := action.Errorf("wrap: %w", context.Canceled); r.Permanent || r.Unwrap() != context.Canceled ||
		!strings.Contains(r.Error(), "context canceled") {
		t.Errorf("Errorf: %+v", r)
	}
}
