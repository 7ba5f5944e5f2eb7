package llmstub

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUsage checks how the stub counts: prompts by words, not by bytes (so that
// flowrun's estimate is compared with another count), completions at most
// max_tokens, and full replies as long as their completion tokens.
func TestUsage(t *testing.T) {
	if got := PromptTokens([]string{"You summarize.", "one two three four five six"}); got != 3+(4+3)+(4+8) {
		t.Errorf("PromptTokens = %d, want 22", got)
	}
	s, err := Start(Options{CompletionTokens: 40, FullReplies: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct{ maxTokens, completion int }{{100, 40}, {20, 20}, {0, 40}} {
		body, _ := json.Marshal(map[string]any{"model": "m", "max_tokens": tt.maxTokens,
			"messages": []any{map[string]any{"role": "user", "content": "Summarize this document please"}}})
		resp, err := http.Post(s.URL+"/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Choices []struct{ Message struct{ Content string } }
			Usage   struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Usage.CompletionTokens != tt.completion || len(out.Choices) != 1 {
			t.Fatalf("max_tokens %d: usage %+v, want %d completion tokens", tt.maxTokens, out.Usage, tt.completion)
		}
		if words := len(strings.Fields(out.Choices[0].Message.Content)); words != tt.completion*3/4 {
			t.Errorf("max_tokens %d: a reply of %d words, want %d", tt.maxTokens, words, tt.completion*3/4)
		}
	}
}
