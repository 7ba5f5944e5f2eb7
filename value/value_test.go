package value

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIntegerRule(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want any
	}{
		{2.0, 2},
		{2.5, 2.5},
		{float64(MaxInt), MaxInt},
		{-float64(MaxInt), -MaxInt},
		{float64(MaxInt) * 2, float64(MaxInt) * 2},
		{1e21, 1e21},
		{MaxInt + 1, float64(MaxInt + 1)},
		{int64(7), 7},
		{int64(MaxInt) * 4, float64(MaxInt) * 4},
		{uint8(3), 3},
		{float32(1.5), 1.5},
		{float32(4), 4},
		{json.Number("12"), 12},
		{json.Number("12.0"), 12},
		{json.Number("0.25"), 0.25},
		{json.Number("18014398509481984"), float64(1 << 54)},
	} {
		got, err := Normalize(tt.in)
		if err != nil {
			t.Errorf("Normalize(%#v): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Normalize(%#v) (-want +got):\n%s", tt.in, diff)
		}
		if _, isText := tt.in.(json.Number); isText {
			continue // Int takes Go numbers
		}
		n, isInt := Int(tt.in)
		if w, wantInt := tt.want.(int); wantInt != isInt || isInt && n != w {
			t.Errorf("Int(%#v) = %d, %t; want %v", tt.in, n, isInt, tt.want)
		}
	}
}

func TestDecodeUsesTheIntegerRule(t *testing.T) {
	got, err := Decode([]byte(`{"a": 1, "b": 1.0, "c": 1.5, "d": 1e3, "e": [18014398509481985], "f": 9007199254740992}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": 1, "b": 1, "c": 1.5, "d": 1000, "e": []any{float64(18014398509481985)}, "f": MaxInt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{`1e999`, `[1] [2]`, `{`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s): no error", bad)
		}
	}
}

func TestNormalizeKeepsNormalValues(t *testing.T) {
	list := []any{1, "x", []any{true, nil}, map[string]any{"k": 0.5}}
	obj := map[string]any{"list": list}
	allocs := testing.AllocsPerRun(100, func() {
		out, err := Normalize(obj)
		if err != nil || out == nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Normalize of a normal value allocates %v times", allocs)
	}
}

func TestNormalizeConverts(t *testing.T) {
	type named string
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	x := 3
	got, err := Normalize(map[string]any{
		"ints":     []int{1, 2},
		"anymap":   map[any]any{1: "one", "two": 2.0},
		"time":     when,
		"duration": 90 * time.Second,
		"named":    named("n"),
		"ptr":      &x,
		"nilptr":   (*int)(nil),
		"nested":   []any{[]string{"a"}, 4.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"ints":     []any{1, 2},
		"anymap":   map[string]any{"1": "one", "two": 2},
		"time":     "2026-01-02T03:04:05Z",
		"duration": "1m30s",
		"named":    "n",
		"ptr":      3,
		"nilptr":   nil,
		"nested":   []any{[]any{"a"}, 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []any{math.Inf(1), math.NaN(), []any{func() {}}, make(chan int)} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%T): no error", bad)
		}
	}
}

// TestDepthBound builds values far deeper than the stack could walk recursively
// (a million levels); Normalize and Decode refuse them with an error.
func TestDepthBound(t *testing.T) {
	var deep any = []any{}
	for range 1_000_000 {
		deep = []any{deep}
	}
	if _, err := Normalize(deep); err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Errorf("Normalize of a million levels: %v", err)
	}
	ok := any([]any{})
	for range MaxDepth - 1 {
		ok = []any{ok}
	}
	if _, err := Normalize(ok); err != nil {
		t.Errorf("Normalize of %d levels: %v", MaxDepth, err)
	}
	if _, err := Normalize([]any{ok}); err == nil {
		t.Errorf("Normalize of %d levels: no error", MaxDepth+1)
	}
	text := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if _, err := Decode([]byte(text)); err == nil {
		t.Errorf("Decode of %d levels: no error", MaxDepth+1)
	}
	if _, err := DecodeExact([]byte(text)); err == nil {
		t.Errorf("DecodeExact of %d levels: no error", MaxDepth+1)
	}
}

// TestExactRoundTrip checks that the journal's codec gives values back exactly: a
// whole float stays a float, integers stay integers.
func TestExactRoundTrip(t *testing.T) {
	for _, v := range []any{
		nil, true, 0, -7, 1 << 52, MaxInt, 2.0, 0.5, -1e-9, 1e21, 123456789.25, "", "plain", "quote\" back\\ nl\n é 😀 <&>",
		[]any{}, []any{1, 2.0, "x", nil}, map[string]any{}, map[string]any{"b": []any{map[string]any{"z": 1.0}}, "a": false},
	} {
		b := Append(nil, v)
		got, err := DecodeExact(b)
		if err != nil {
			t.Fatalf("%v: %s: %v", v, b, err)
		}
		if diff := cmp.Diff(v, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", b, diff)
		}
	}
	if got := string(Append(nil, map[string]any{"b": 1, "a": []any{2.0}})); got != `{"a":[2.0],"b":1}` {
		t.Errorf("Append sorts keys and marks floats: got %s", got)
	}
}

func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{"two", `"two"`},
		{strings.Repeat("x", 50), `"` + strings.Repeat("x", 37) + `..."`},
		{true, "true"},
		{7, "7"},
		{2.5, "2.5"},
		{[]any{1, 2, 3}, "a list of 3"},
		{map[string]any{}, "an object"},
		{struct{}{}, "a struct {}"},
	} {
		if got := Describe(tt.in); got != tt.want {
			t.Errorf("Describe(%#v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for in, want := range map[any]string{nil: "null", "s": "string", true: "boolean", 1: "number", 1.5: "number"} {
		if got := Kind(in); got != want {
			t.Errorf("Kind(%#v) = %s, want %s", in, got, want)
		}
	}
	if Kind([]any{}) != "list" || Kind(map[string]any{}) != "object" {
		t.Error("Kind of containers")
	}
}

func TestEqualAndKey(t *testing.T) {
	same := [][2]any{
		{1, 1.0},
		{[]any{1, "a"}, []any{1.0, "a"}},
		{map[string]any{"x": []any{2}}, map[string]any{"x": []any{2.0}}},
		{nil, nil},
	}
	for _, p := range same {
		if !Equal(p[0], p[1]) {
			t.Errorf("Equal(%v, %v) = false", p[0], p[1])
		}
		if Key(p[0]) != Key(p[1]) {
			t.Errorf("Key(%v) != Key(%v)", p[0], p[1])
		}
	}
	differ := [][2]any{{1, "1"}, {[]any{1}, []any{1, 1}}, {map[string]any{"x": 1}, map[string]any{"y": 1}}, {nil, false}, {0.5, 0.25}}
	for _, p := range differ {
		if Equal(p[0], p[1]) {
			t.Errorf("Equal(%v, %v) = true", p[0], p[1])
		}
		if Key(p[0]) == Key(p[1]) {
			t.Errorf("Key(%v) == Key(%v)", p[0], p[1])
		}
	}
	if got := Text(map[string]any{"a": "<b>"}); got != `{"a":"\u003cb\u003e"}` {
		t.Errorf("Text: %s", got)
	}
	if Text(nil) != "" || Text("s") != "s" || Text(3) != "3" || Text(0.5) != "0.5" {
		t.Error("Text of scalars")
	}
}

// TestInvalidUTF8 (a resumed run was not byte-identical when an update held invalid
// UTF-8: it came back from the journal as U+FFFD): Normalize gives text as the
// journal would give it back.
func TestInvalidUTF8(t *testing.T) {
	bad := "ok \xff\xfe end"
	got, err := Normalize(map[string]any{"s": bad, "l": []any{bad}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeExact(Append(nil, got))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, back); diff != "" || got.(map[string]any)["s"] != "ok \uFFFD end" {
		t.Errorf("normalised %q, back from the journal (-normalised +back):\n%s", got, diff)
	}
}
