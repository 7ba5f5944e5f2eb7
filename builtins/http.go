package builtins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// maxBody is the largest response body the network actions read.
const maxBody = 32 << 20

var errTooLarge = errors.New("response body larger than 32 MiB")

func httpRequest() *action.Spec {
	return &action.Spec{
		Name:    "http.request",
		Summary: "Send an HTTP request and return the response.",
		Doc: `Sends one HTTP request and returns the status, headers and body of the response;
when the body is JSON it is parsed into ` + "`json`" + ` too. Redirects are followed (up to 10).

A status outside 200-299 is an error whose ` + "`error.status`" + ` holds the status code: 429,
408 and 5xx are retryable (so ` + "`retry`" + ` handles a busy server), other codes are
permanent. Network failures and timeouts are retryable. Bodies larger than 32 MiB are
refused. Error messages show the URL without its query string, so tokens passed in
the query do not end up in logs.`,
		Params: []action.Param{
			{Name: "url", Type: action.String, Required: true, Doc: "The http or https URL."},
			{Name: "method", Type: action.String, Default: "GET", Enum: []any{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, Doc: "The HTTP method."},
			{Name: "headers", Type: action.Object, Doc: "Request headers, name to value; numbers and booleans are written as text.",
				SecretKeys: []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key"}},
			{Name: "query", Type: action.Object, Doc: "Query parameters added to the URL; values are written as text, and a list value repeats the parameter once per element."},
			{Name: "json", Type: action.Any, Doc: "A value sent as the JSON request body, with `Content-Type: application/json` unless `headers` sets another."},
			{Name: "body", Type: action.String, Doc: "A text sent as the request body as it is."},
			{Name: "timeout", Type: action.Duration, Default: "30s", Doc: "How long to wait for the whole response; `0s` waits as long as the node allows."},
		},
		OneOf: []action.OneOf{{Params: []string{"json", "body"}}},
		Output: []action.Field{
			{Name: "status", Type: action.Integer, Doc: "The response status code."},
			{Name: "headers", Type: action.Object, Doc: "The response headers, by lower-case name; repeated headers are joined with `, `."},
			{Name: "body", Type: action.String, Doc: "The response body as text."},
			{Name: "json", Type: action.Any, Doc: "The parsed body when it is JSON, else null; integral numbers are integers."},
		},
		Examples: []action.Example{
			{
				Summary: "Fetch a JSON document.",
				With:    "url: https://api.example.com/items\nquery: {page: 2, tag: [go, yaml]}\nheaders: {Accept: application/json}",
			},
			{
				Summary: "Post a JSON body.",
				With:    "url: https://api.example.com/items\nmethod: POST\njson: {name: widget, count: 3}\ntimeout: 10s",
			},
		},
		Func: runRequest,
	}
}

func runRequest(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	p := call.Params
	raw := p.String("url")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, action.Permanentf("parameter \"url\": %q is not an http or https URL", raw)
	}
	if err := addQuery(u, p); err != nil {
		return nil, err
	}
	method := p.String("method")
	headers, err := stringMap(p, "headers")
	if err != nil {
		return nil, err
	}
	var body io.Reader
	contentType := ""
	if v := p["json"]; v != nil {
		s, err := jsonText(v)
		if err != nil {
			return nil, action.Permanentf("parameter \"json\": %v", err)
		}
		body, contentType = strings.NewReader(s), "application/json"
	} else if p.Has("body") {
		body = strings.NewReader(p.String("body"))
	}
	timeout := p.Duration("timeout")
	reqCtx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, method, u.String(), body)
	if err != nil {
		return nil, action.Permanentf("build request: %v", err)
	}
	for _, h := range headers {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		req.Header.Set(h[0], h[1])
	}
	if contentType != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	what := method + " " + displayURL(u)
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return nil, transportError(ctx, what, timeout, err)
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, action.Permanentf("%s: %v", what, err)
		}
		return nil, transportError(ctx, what, timeout, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if call.Throttled && resp.StatusCode == http.StatusTooManyRequests {
			return nil, rateLimited(what, resp, string(data), time.Now())
		}
		return nil, statusError(what, resp, string(data), "")
	}
	hdr := make(map[string]any, len(resp.Header))
	for k, v := range resp.Header {
		hdr[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	var parsed any
	if len(data) > 0 {
		if v, err := decodeJSON(data); err == nil {
			parsed = v
		}
	}
	return map[string]any{
		"status":  resp.StatusCode,
		"headers": hdr,
		"body":    string(data),
		"json":    parsed,
	}, nil
}

// addQuery appends the query parameter's values to u's query string.
func addQuery(u *url.URL, p map[string]any) error {
	q, _ := p["query"].(map[string]any)
	if len(q) == 0 {
		return nil
	}
	vals := url.Values{}
	for k, v := range q {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, e := range list {
			s, ok := scalarString(e)
			if !ok {
				return action.Permanentf("parameter \"query\": value of %q: expected a string, number, boolean or list of them, got %s", k, value.Kind(e))
			}
			vals.Add(k, s)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += vals.Encode()
	return nil
}

// withTimeout bounds ctx by d when d is positive.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// client returns the run's HTTP client, or the default one.
// readCapped reads a response body of at most maxBody bytes.
func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBody {
		return nil, errTooLarge
	}
	return data, nil
}

// displayURL shows u without its query string, fragment or password.
func displayURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	return c.Redacted()
}

// transportError turns a failed round trip into an error. When the caller's ctx is
// done (run cancelled, node timeout) its cause is returned as it is; a request
// timeout or a network failure is a retryable action error.
func transportError(ctx context.Context, what string, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the full URL, query included
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &action.Error{Msg: fmt.Sprintf("%s: no response within %s", what, timeout), Err: err}
	}
	return &action.Error{Msg: fmt.Sprintf("%s: %v", what, err), Err: err}
}

// rateLimited reports a 429 to the shared rate limit of a Throttled call, with the
// wait the server asked for.
func rateLimited(what string, resp *http.Response, body string, now time.Time) *action.Error {
	e := statusError(what, resp, body, "")
	d, ok := retryAfter(resp.Header.Get("Retry-After"), now)
	if !ok {
		d = -1
	}
	return action.RateLimited(e.Msg, resp.StatusCode, d)
}

// statusError reports a response outside 2xx, with an excerpt of its body. 429, 408
// and 5xx are retryable; other statuses are permanent.
func statusError(what string, resp *http.Response, body, detail string) *action.Error {
	code := resp.StatusCode
	msg := fmt.Sprintf("%s: HTTP %s", what, resp.Status)
	if !strings.HasPrefix(resp.Status, fmt.Sprint(code)) {
		msg = fmt.Sprintf("%s: HTTP %d", what, code)
	}
	if detail != "" {
		msg += " " + detail
	}
	if ex := excerpt(body, 300); ex != "" {
		msg += ": " + ex
	}
	return &action.Error{
		Msg:       msg,
		Permanent: code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout,
		Fields:    map[string]any{"status": code},
	}
}

// excerpt returns s on one line, cut to at most n bytes at a character boundary.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
