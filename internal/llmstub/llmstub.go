// Package llmstub is an OpenAI-compatible chat-completions server for tests and
// benchmarks: it answers on 127.0.0.1, enforces its own requests and tokens per
// minute (answering 429 with Retry-After above them, as providers do), reports
// usage, and counts what it saw.
package llmstub

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. Zero values mean no limit, no delay.
type Options struct {
	// RPM and TPM are the requests and tokens allowed per minute; Burst is how
	// many seconds' worth may come at once (default 1), as a token bucket.
	RPM, TPM int
	Burst    float64
	// RetryAfter is the Retry-After header of a 429 ("" leaves it out).
	RetryAfter string
	// PromptTokens and CompletionTokens are the usage each reply reports. A zero
	// PromptTokens counts the messages as a tokenizer for English roughly would,
	// and otherwise than flowrun's estimate (a token per four bytes): four
	// tokens for every three words, four per message and three for the reply. The
	// completion tokens are at most the request's max_tokens; a zero
	// CompletionTokens means max_tokens.
	PromptTokens, CompletionTokens int
	// FullReplies makes each reply as long as its completion tokens (three words
	// for every four tokens), as a real model's is; otherwise a reply is
	// "summary of " and the prompt's first six words.
	FullReplies bool
	// Latency is how long each reply takes.
	Latency time.Duration
}

// Stats are what a Server saw.
type Stats struct {
	// Calls were answered; Limited got a 429.
	Calls, Limited int
	// Tokens are the tokens the answered calls used.
	Tokens int
	// First and Last are when the first and last answered call came; FirstLimited
	// and LastLimited the same for 429s.
	First, Last, FirstLimited, LastLimited time.Time
	// Prompts are the prompts answered, in order.
	Prompts []string
}

// Server is a running stub.
type Server struct {
	URL  string // the base URL, http://127.0.0.1:PORT/v1
	opts Options
	srv  *http.Server

	mu       sync.Mutex
	requests *bucket
	tokens   *bucket
	stats    Stats
}

// Start starts a stub on a free port of 127.0.0.1.
func Start(opts Options) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	s := &Server{URL: "http://" + l.Addr().String() + "/v1", opts: opts}
	if opts.RPM > 0 {
		s.requests = newBucket(float64(opts.RPM)/60, opts.Burst)
	}
	if opts.TPM > 0 {
		s.tokens = newBucket(float64(opts.TPM)/60, opts.Burst)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Stats returns what the server saw so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Prompts = append([]string(nil), st.Prompts...)
	return st
}

type request struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	MaxTokens int `json:"max_tokens"`
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	prompt := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			prompt = m.Content
		}
	}
	in := s.opts.PromptTokens
	if in == 0 {
		in = PromptTokens(req.contents())
	}
	out := s.opts.CompletionTokens
	if req.MaxTokens > 0 && (out == 0 || out > req.MaxTokens) {
		out = req.MaxTokens
	}
	now := time.Now()
	s.mu.Lock()
	ok := (s.requests == nil || s.requests.has(now, 1)) && (s.tokens == nil || s.tokens.has(now, float64(in+out)))
	if ok {
		if s.requests != nil {
			s.requests.take(1)
		}
		if s.tokens != nil {
			s.tokens.take(float64(in + out))
		}
		if s.stats.Calls == 0 {
			s.stats.First = now
		}
		s.stats.Calls++
		s.stats.Last = now
		s.stats.Tokens += in + out
		s.stats.Prompts = append(s.stats.Prompts, prompt)
	} else {
		if s.stats.Limited == 0 {
			s.stats.FirstLimited = now
		}
		s.stats.Limited++
		s.stats.LastLimited = now
	}
	s.mu.Unlock()
	if !ok {
		if s.opts.RetryAfter != "" {
			w.Header().Set("Retry-After", s.opts.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"message":"Rate limit reached","type":"requests"}}`)
		return
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}
	words := strings.Fields(prompt)
	reply := "ok"
	if len(words) > 0 {
		reply = "summary of " + strings.Join(words[:min(len(words), 6)], " ")
	}
	if s.opts.FullReplies {
		reply = fill(reply, out*3/4)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"model":   req.Model,
		"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": reply}}},
		"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out},
	})
}

func (r *request) contents() []string {
	out := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		out[i] = m.Content
	}
	return out
}

// PromptTokens counts the tokens of messages as the stub does: four for every
// three words (rounded up), four per message, and three that prime the reply.
func PromptTokens(messages []string) int {
	n := 3
	for _, m := range messages {
		n += 4 + (len(strings.Fields(m))*4+2)/3
	}
	return n
}

// fill makes a reply of the given number of words, starting with text.
func fill(text string, words int) string {
	w := strings.Fields(text)
	for i := 0; len(w) < words; i++ {
		w = append(w, fillWords[i%len(fillWords)])
	}
	return strings.Join(w[:min(len(w), max(words, 1))], " ")
}

var fillWords = strings.Fields("the report describes how the team found the cause fixed it and what changes follow")

// bucket is a token bucket: capacity burst seconds' worth, refilled at perSecond.
type bucket struct {
	perSecond, capacity, level float64
	last                       time.Time
}

func newBucket(perSecond, burst float64) *bucket {
	c := math.Max(1, perSecond*burst)
	return &bucket{perSecond: perSecond, capacity: c, level: c}
}

func (b *bucket) has(now time.Time, n float64) bool {
	if !b.last.IsZero() {
		b.level = math.Min(b.capacity, b.level+now.Sub(b.last).Seconds()*b.perSecond)
	}
	b.last = now
	return b.level >= math.Min(n, b.capacity)
}

func (b *bucket) take(n float64) { b.level -= n }

// ParseOptions reads options from flag-like words (rpm=600 tpm=90000 burst=1
// retry-after=1 prompt=20 completion=20 latency=50ms reply=full), for scripts.
func ParseOptions(args []string) (Options, error) {
	var o Options
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return o, fmt.Errorf("llmstub: %q: expected key=value", a)
		}
		var err error
		switch k {
		case "rpm":
			o.RPM, err = strconv.Atoi(v)
		case "tpm":
			o.TPM, err = strconv.Atoi(v)
		case "burst":
			o.Burst, err = strconv.ParseFloat(v, 64)
		case "retry-after":
			o.RetryAfter = v
		case "prompt":
			o.PromptTokens, err = strconv.Atoi(v)
		case "completion":
			o.CompletionTokens, err = strconv.Atoi(v)
		case "latency":
			o.Latency, err = time.ParseDuration(v)
		case "reply":
			if v != "full" && v != "short" {
				err = fmt.Errorf("expected full or short")
			}
			o.FullReplies = v == "full"
		default:
			return o, fmt.Errorf("llmstub: unknown option %q", k)
		}
		if err != nil {
			return o, fmt.Errorf("llmstub: %s: %v", a, err)
		}
	}
	return o, nil
}
