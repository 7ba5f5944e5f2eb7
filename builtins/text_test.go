package builtins

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want map[string]any
	}{
		{
			name: "empty text",
			with: map[string]any{"text": "  \n "},
			want: map[string]any{"summary": "", "sentences": []any{}, "words": 0},
		},
		{
			name: "fewer sentences than asked",
			with: map[string]any{"text": "One sentence only."},
			want: map[string]any{"summary": "One sentence only.", "sentences": []any{"One sentence only."}, "words": 3},
		},
		{
			name: "chosen sentences keep their original order",
			with: map[string]any{
				"text":          "Cats sleep. Dogs bark loudly at cats. Cats and dogs fight. Birds sing.",
				"max_sentences": 2,
			},
			// cats=3 dogs=2: "Dogs bark loudly at cats" scores 2+1+1+3=7, "Cats and dogs fight" 3+2+1=6.
			want: map[string]any{
				"summary":   "Dogs bark loudly at cats. Cats and dogs fight.",
				"sentences": []any{"Dogs bark loudly at cats.", "Cats and dogs fight."},
				"words":     13,
			},
		},
		{
			name: "ties go to the earlier sentence",
			with: map[string]any{"text": "Alpha beta. Gamma delta. Epsilon zeta.", "max_sentences": 1},
			want: map[string]any{"summary": "Alpha beta.", "sentences": []any{"Alpha beta."}, "words": 6},
		},
		{
			name: "stopwords do not count and white space is collapsed",
			with: map[string]any{"text": "The the the the of it.\n\nRust   is\nfast. Rust is safe.", "max_sentences": 1},
			want: map[string]any{"summary": "Rust is fast.", "sentences": []any{"Rust is fast."}, "words": 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, "text.summarize", nil, tt.with)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeDeterministic(t *testing.T) {
	text := strings.Repeat("Maps fan out work. Reducers fold results. Workers run in parallel. Maps and reducers and workers. ", 20)
	first, err := run(t, "text.summarize", nil, map[string]any{"text": text, "max_sentences": 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		got, _ := run(t, "text.summarize", nil, map[string]any{"text": text, "max_sentences": 5})
		if diff := cmp.Diff(first, got); diff != "" {
			t.Fatalf("differs between runs (-first +got):\n%s", diff)
		}
	}
}

func TestSummarizeRejectsZeroSentences(t *testing.T) {
	if _, err := run(t, "text.summarize", nil, map[string]any{"text": "A.", "max_sentences": 0}); err == nil {
		t.Error("want an error")
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want []any
	}{
		{"paragraphs", map[string]any{"text": "\n\na\nb\n \n\t\nc\r\n\r\nd  "}, []any{"a\nb", "c", "d"}},
		{"no text", map[string]any{"text": "   "}, []any{}},
		{"sentences", map[string]any{"text": "Hi there! How are you? I'm fine... Thanks.", "by": "sentence"},
			[]any{"Hi there!", "How are you?", "I'm fine...", "Thanks."}},
		{"sentence with abbreviation and decimal", map[string]any{"text": "Pi is approx. equal to 3.14 today. Next.", "by": "sentence"},
			[]any{"Pi is approx. equal to 3.14 today.", "Next."}},
		{"sentence ending in quote", map[string]any{"text": `He said "stop." Then left.`, "by": "sentence"},
			[]any{`He said "stop."`, "Then left."}},
		{"sentences across blank line", map[string]any{"text": "Title\n\nBody text here", "by": "sentence"},
			[]any{"Title", "Body text here"}},
		{"cjk sentences", map[string]any{"text": "你好。今天好吗？好！", "by": "sentence"},
			[]any{"你好。", "今天好吗？", "好！"}},
		{"size exact fit", map[string]any{"text": "aaa bbb ccc", "by": "size", "size": 7}, []any{"aaa bbb", "ccc"}},
		{"size long word", map[string]any{"text": "a abcdefghij b", "by": "size", "size": 4}, []any{"a", "abcdefghij", "b"}},
		{"size counts characters not bytes", map[string]any{"text": "ééé ééé ééé", "by": "size", "size": 7}, []any{"ééé ééé", "ééé"}},
		{"size whole text fits", map[string]any{"text": "  short  ", "by": "size", "size": 100}, []any{"short"}},
		{"size newlines", map[string]any{"text": "one\ntwo\nthree", "by": "size", "size": 8}, []any{"one\ntwo", "three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, "text.split", nil, tt.with)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got["chunks"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitSizeNeverExceeds(t *testing.T) {
	text := strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit ", 50)
	for _, size := range []int{5, 11, 30, 100} {
		got, err := run(t, "text.split", nil, map[string]any{"text": text, "by": "size", "size": size})
		if err != nil {
			t.Fatal(err)
		}
		var words []string
		for _, c := range got["chunks"].([]any) {
			s := c.(string)
			if n := len([]rune(s)); n > size && strings.ContainsAny(s, " ") {
				t.Errorf("size %d: chunk of %d characters: %q", size, n, s)
			}
			words = append(words, strings.Fields(s)...)
		}
		if strings.Join(words, " ") != strings.Join(strings.Fields(text), " ") {
			t.Errorf("size %d: chunks lose or reorder words", size)
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want string
	}{
		{"default separator", map[string]any{"parts": []any{"a", "b"}}, "a\nb"},
		{"empty", map[string]any{"parts": []any{}}, ""},
		{"values as JSON", map[string]any{"parts": []any{1, 2.5, nil, []any{"x"}, map[string]any{"b": 1, "a": "<&>"}}, "separator": "|"},
			`1|2.5|null|["x"]|{"a":"<&>","b":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, "text.join", nil, tt.with)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got["text"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		text                string
		words, chars, lines int
	}{
		{"", 0, 0, 0},
		{"\n", 0, 1, 1},
		{"one", 1, 3, 1},
		{"one\n", 1, 4, 1},
		{"one\ntwo", 2, 7, 2},
		{"one\n\ntwo\n", 2, 9, 3},
		{"日本語 テキスト", 2, 8, 1},
		{"😀 ok\r\n", 2, 6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := run(t, "text.count", nil, map[string]any{"text": tt.text})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"words": tt.words, "chars": tt.chars, "lines": tt.lines}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
