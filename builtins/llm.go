package builtins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// LLM retry policy: at most llmRetries retries of 429 and 5xx, waiting Retry-After
// when the server gives it (up to llmMaxRetryAfter), else 1s, 2s, 4s... capped at 30s.
const (
	llmRetries       = 4
	llmFirstBackoff  = time.Second
	llmMaxBackoff    = 30 * time.Second
	llmMaxRetryAfter = 5 * time.Minute
)

func llmChat() *action.Spec {
	return &action.Spec{
		Name:    "llm.chat",
		Summary: "Ask a chat model through an OpenAI-compatible API.",
		Doc: `Sends one chat-completions request (` + "`POST {base_url}/chat/completions`" + `) and returns
the reply. It works with any OpenAI-compatible server: OpenAI itself, Ollama
(` + "`http://localhost:11434/v1`" + `), vLLM, llama.cpp's server, LiteLLM.

Give either ` + "`prompt`" + ` (one user message) or ` + "`messages`" + ` (the whole conversation);
` + "`system`" + ` is put before them as a system message. ` + "`model`" + `, ` + "`base_url`" + ` and
` + "`api_key`" + ` fall back to the environment variables ` + "`FLOWRUN_LLM_MODEL`" + `,
` + "`FLOWRUN_LLM_BASE_URL`" + ` and ` + "`FLOWRUN_LLM_API_KEY`" + `, so a workflow need not name a
provider. The key is sent as ` + "`Authorization: Bearer`" + ` only when one is set.

Rate limits (429) and server errors (5xx) are retried inside the action up to 4 times,
waiting as the server's ` + "`Retry-After`" + ` says, else 1s, 2s, 4s, 8s; after that the error
is retryable by the node's ` + "`retry`" + `. A node with ` + "`rate:`" + ` leaves 429s to its shared
limit instead, which pauses every call of the limit (see limits.rate). Other 4xx statuses are permanent errors. HTTP
errors carry ` + "`error.status`" + `.

The API key never appears in outputs, errors, logs or events: every occurrence of it in
a server's reply is replaced by ` + "`***`" + `.`,
		Params: []action.Param{
			{Name: "prompt", Type: action.String, Doc: "The user message. Give this or `messages`."},
			{Name: "messages", Type: action.Array, Items: action.Object, Doc: "The conversation: a list of `{role, content}` objects, role being `system`, `user` or `assistant`. Give this or `prompt`."},
			{Name: "system", Type: action.String, Doc: "A system message put before the conversation."},
			{Name: "model", Type: action.String, Doc: "The model name, such as `gpt-4o-mini` or `llama3.2`; defaults to `$FLOWRUN_LLM_MODEL`."},
			{Name: "base_url", Type: action.String, Doc: "The API's base URL, such as `https://api.openai.com/v1` or `http://localhost:11434/v1`; defaults to `$FLOWRUN_LLM_BASE_URL`."},
			{Name: "api_key", Type: action.String, Secret: true, Doc: "The API key; defaults to `$FLOWRUN_LLM_API_KEY`. Prefer the variable to writing a key into a workflow file."},
			{Name: "temperature", Type: action.Number, Doc: "Sampling temperature; the server's default when not given."},
			{Name: "max_tokens", Type: action.Integer, Doc: "The longest reply, in tokens; the server's default when not given."},
			{Name: "timeout", Type: action.Duration, Default: "60s", Doc: "How long to wait for each HTTP request; `0s` waits as long as the node allows."},
		},
		OneOf: []action.OneOf{{Params: []string{"prompt", "messages"}, Required: true}},
		Output: []action.Field{
			{Name: "text", Type: action.String, Doc: "The reply: the content of the first choice's message."},
			{Name: "model", Type: action.String, Doc: "The model that answered, as the server names it."},
			{Name: "usage", Type: action.Object, Doc: "Token counts: `prompt_tokens`, `completion_tokens` and `total_tokens` (0 when the server does not say)."},
		},
		Examples: []action.Example{
			{
				Summary: "Ask a local Ollama model.",
				With:    "prompt: Summarize in one sentence why the sky is blue.\nmodel: llama3.2\nbase_url: http://localhost:11434/v1\ntemperature: 0",
			},
			{
				Summary: "A conversation, with model, server and key taken from FLOWRUN_LLM_* variables.",
				With: `system: You answer in French.
messages:
  - {role: user, content: "Hello!"}
  - {role: assistant, content: "Bonjour !"}
  - {role: user, content: "How are you?"}
max_tokens: 200`,
			},
		},
		Meter: &action.Meter{ModelParam: "model", ModelEnv: "FLOWRUN_LLM_MODEL", Estimate: chatEstimate, Used: chatUsed,
			Placeholder: chatPlaceholder},
		Func: runChat,
	}
}

// defaultReplyTokens is the reply a call without max_tokens is assumed to get,
// for rate limits, budgets and plans.
const defaultReplyTokens = 256

// chatEstimate guesses a call's tokens: a token per four bytes of the messages, and
// max_tokens (else defaultReplyTokens) for the reply.
func chatEstimate(p action.Params) action.Usage {
	n := len(p.String("system")) + len(p.String("prompt"))
	for _, m := range p.List("messages") {
		obj, _ := m.(map[string]any)
		switch c := obj["content"].(type) {
		case string:
			n += len(c)
		case []any:
			for _, part := range c {
				if pm, ok := part.(map[string]any); ok {
					s, _ := pm["text"].(string)
					n += len(s)
				}
			}
		}
		n += 4 // the role and the message's framing
	}
	out := defaultReplyTokens
	if p.Has("max_tokens") {
		out = p.Int("max_tokens")
	}
	return action.Usage{Input: (n+3)/4 + 4, Output: out}
}

// chatPlaceholder is the reply `flowrun plan` assumes for a call it does not
// make: as many tokens of text as the estimate's reply (four bytes a token, the
// estimate's own rule, so that a prompt made of replies is estimated as it will
// be), and the estimate as usage.
func chatPlaceholder(model string, u action.Usage) map[string]any {
	n := max(u.Output, 0) * 4 // bytes
	text := strings.Repeat("word ", (n+4)/5)[:max(n-1, 0)]
	return map[string]any{
		"text":  text,
		"model": model,
		"usage": map[string]any{"prompt_tokens": u.Input, "completion_tokens": u.Output, "total_tokens": u.Total()},
	}
}

// chatUsed reads the usage a reply reported.
func chatUsed(out map[string]any) (action.Usage, bool) {
	u, _ := out["usage"].(map[string]any)
	in, _ := value.Int(u["prompt_tokens"])
	o, _ := value.Int(u["completion_tokens"])
	if in == 0 && o == 0 {
		return action.Usage{}, false
	}
	return action.Usage{Input: in, Output: o}, true
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content any `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     json.Number `json:"prompt_tokens"`
		CompletionTokens json.Number `json:"completion_tokens"`
		TotalTokens      json.Number `json:"total_tokens"`
	} `json:"usage"`
}

func runChat(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	p := call.Params
	model := firstNonEmpty(p.String("model"), env.Getenv("FLOWRUN_LLM_MODEL"))
	base := firstNonEmpty(p.String("base_url"), env.Getenv("FLOWRUN_LLM_BASE_URL"))
	key := firstNonEmpty(p.String("api_key"), env.Getenv("FLOWRUN_LLM_API_KEY"))
	red := redactor(key)
	var missing []string
	if base == "" {
		missing = append(missing, `no base URL: set the "base_url" parameter or the FLOWRUN_LLM_BASE_URL environment variable (for example http://localhost:11434/v1 for Ollama, https://api.openai.com/v1 for OpenAI)`)
	}
	if model == "" {
		missing = append(missing, `no model: set the "model" parameter or the FLOWRUN_LLM_MODEL environment variable (for example llama3.2 or gpt-4o-mini)`)
	}
	if len(missing) > 0 {
		return nil, action.Permanentf("llm.chat is not configured: %s", strings.Join(missing, "; "))
	}
	endpoint, err := chatURL(base)
	if err != nil {
		return nil, action.Permanentf("%s", red(err.Error()))
	}
	body, err := chatRequest(p, model)
	if err != nil {
		return nil, err
	}
	timeout := p.Duration("timeout")
	what := red("POST " + displayURL(endpoint))
	for retry := 0; ; retry++ {
		out, resp, err := chatOnce(ctx, env.HTTP, endpoint.String(), key, body, timeout)
		if err != nil {
			return nil, redactError(transportError(ctx, what, timeout, err), red)
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return chatOutput(out, model, red, what)
		}
		if call.Throttled && resp.StatusCode == http.StatusTooManyRequests {
			return nil, redactError(rateLimited(what, resp, red(string(out)), time.Now()), red)
		}
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !retryable {
			return nil, statusError(what, resp, red(string(out)), "")
		}
		if retry == llmRetries {
			return nil, statusError(what, resp, red(string(out)), fmt.Sprintf("(after %d attempts)", retry+1))
		}
		d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			d = min(llmFirstBackoff<<retry, llmMaxBackoff)
		}
		if d > llmMaxRetryAfter {
			return nil, statusError(what, resp, red(string(out)), fmt.Sprintf("(the server asks to retry after %s)", d.Round(time.Second)))
		}
		if err := env.Sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// chatOnce sends one request and reads the reply; err is a transport failure.
func chatOnce(ctx context.Context, client *http.Client, endpoint, key string, body []byte, timeout time.Duration) ([]byte, *http.Response, error) {
	reqCtx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return data, resp, nil
}

// chatURL appends /chat/completions to a base URL, unless it is already there.
func chatURL(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q is not an http or https URL (for example http://localhost:11434/v1)", base)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if !strings.HasSuffix(u.Path, "/chat/completions") {
		u.Path += "/chat/completions"
	}
	return u, nil
}

// chatRequest builds the request body.
func chatRequest(p action.Params, model string) ([]byte, error) {
	var msgs []any
	if s := p.String("system"); s != "" {
		msgs = append(msgs, map[string]any{"role": "system", "content": s})
	}
	if p.Has("prompt") {
		msgs = append(msgs, map[string]any{"role": "user", "content": p.String("prompt")})
	}
	for i, m := range p.List("messages") {
		obj, _ := m.(map[string]any)
		if role, _ := obj["role"].(string); role == "" {
			return nil, action.Permanentf("parameter \"messages\": element %d: want a \"role\" such as \"user\"", i)
		}
		switch obj["content"].(type) {
		case string, []any:
		default:
			return nil, action.Permanentf("parameter \"messages\": element %d: want a \"content\" string", i)
		}
		msgs = append(msgs, obj)
	}
	req := map[string]any{"model": model, "messages": msgs, "stream": false}
	if p.Has("temperature") {
		req["temperature"] = p.Float("temperature")
	}
	if p.Has("max_tokens") {
		req["max_tokens"] = p.Int("max_tokens")
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, action.Permanentf("encode request: %v", err)
	}
	return data, nil
}

// chatOutput decodes a successful reply.
func chatOutput(data []byte, model string, red func(string) string, what string) (map[string]any, error) {
	var r chatResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, action.Errorf("%s: reply is not a chat completion: %s: %s", what, red(err.Error()), excerpt(red(string(data)), 200))
	}
	if len(r.Choices) == 0 {
		return nil, action.Errorf("%s: reply has no choices: %s", what, excerpt(red(string(data)), 200))
	}
	text := ""
	switch c := r.Choices[0].Message.Content.(type) {
	case string:
		text = c
	case []any: // content parts: keep the text ones
		for _, part := range c {
			if m, ok := part.(map[string]any); ok {
				if s, ok := m["text"].(string); ok {
					text += s
				}
			}
		}
	}
	if r.Model != "" {
		model = r.Model
	}
	return map[string]any{
		"text":  red(text),
		"model": red(model),
		"usage": map[string]any{
			"prompt_tokens":     tokens(r.Usage.PromptTokens),
			"completion_tokens": tokens(r.Usage.CompletionTokens),
			"total_tokens":      tokens(r.Usage.TotalTokens),
		},
	}, nil
}

func tokens(n json.Number) int {
	v, _ := value.Normalize(n)
	i, _ := value.Int(v)
	return i
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil {
		if s < 0 {
			s = 0
		}
		return time.Duration(min(s, 1e6) * float64(time.Second)), true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// redactor returns a function that replaces every occurrence of key, plain or
// URL-escaped, with "***".
func redactor(key string) func(string) string {
	if key == "" {
		return func(s string) string { return s }
	}
	forms := []string{key}
	for _, f := range []string{url.QueryEscape(key), url.PathEscape(key)} {
		if f != key {
			forms = append(forms, f)
		}
	}
	return func(s string) string {
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, "***")
		}
		return s
	}
}

// redactError hides the key in err's message. The underlying error stays reachable
// through errors.Is (for context.DeadlineExceeded), but not through Unwrap, so no
// caller can print the key from it.
func redactError(err error, red func(string) string) error {
	var ae *action.Error
	if errors.As(err, &ae) {
		c := *ae
		c.Msg = red(c.Msg)
		if c.Err != nil && red(c.Err.Error()) != c.Err.Error() {
			c.Err = &redacted{msg: red(c.Err.Error()), err: c.Err}
		}
		return &c
	}
	if red(err.Error()) != err.Error() {
		return &redacted{msg: red(err.Error()), err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string        { return r.msg }
func (r *redacted) Is(target error) bool { return errors.Is(r.err, target) }

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
