package runtime

import (
	"errors"
	"strings"

	"github.com/flowrun/flowrun/action"
)

// masked is what a secret is replaced with.
const masked = "***"

// mask replaces every occurrence of a secret in the strings of a value (keys
// included) with ***; the value is returned as it was when there is nothing to
// hide.
func mask(v any, secrets []string) any {
	if len(secrets) == 0 {
		return v
	}
	switch x := v.(type) {
	case string:
		return maskText(x, secrets)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mask(e, secrets)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[maskText(k, secrets)] = mask(e, secrets)
		}
		return out
	}
	return v
}

func maskText(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, masked)
		}
	}
	return s
}

// maskError hides secrets in an error's message. An action error keeps its kind
// (permanent or not) but loses what it wraps, which could show the secret again.
func maskError(err error, secrets []string) error {
	if len(secrets) == 0 || err == nil {
		return err
	}
	msg := err.Error()
	m := maskText(msg, secrets)
	var ae *action.Error
	if errors.As(err, &ae) {
		return &action.Error{Msg: m, Permanent: ae.Permanent, Kind: ae.Kind, Fields: maskFields(ae.Fields, secrets)}
	}
	if m == msg {
		return err
	}
	return errors.New(m)
}

func maskFields(fields map[string]any, secrets []string) map[string]any {
	if len(secrets) == 0 || fields == nil {
		return fields
	}
	m, _ := mask(fields, secrets).(map[string]any)
	return m
}
