package builtins

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"log/slog"

	"github.com/flowrun/flowrun/action"
)

func sleepAction() *action.Spec {
	return &action.Spec{
		Name:    "sleep",
		NoCache: true,
		Summary: "Wait for a duration.",
		Doc: `Waits for ` + "`duration`" + ` and returns. Cancellation (Ctrl-C, a node ` + "`timeout`" + `, a
failed map) ends the wait at once. Useful to pace calls to a rate-limited service and
to simulate slow work when trying out a workflow.`,
		Params: []action.Param{
			{Name: "duration", Type: action.Duration, Required: true, Doc: "How long to wait, such as `150ms`, `2s` or `1m30s`."},
		},
		Output: []action.Field{
			{Name: "slept_ms", Type: action.Integer, Doc: "The duration waited, in milliseconds."},
		},
		Examples: []action.Example{{
			Summary: "Wait 150 milliseconds.",
			With:    "duration: 150ms",
			Output:  "slept_ms: 150",
		}},
		Func: runSleep,
	}
}

func runSleep(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	d := call.Params.Duration("duration")
	if err := env.Sleep(ctx, d); err != nil {
		return nil, err
	}
	return map[string]any{"slept_ms": int(d.Milliseconds())}, nil
}

func failAction() *action.Spec {
	return &action.Spec{
		Name:    "fail",
		NoCache: true,
		Summary: "Fail on purpose, to try out retries and error handling.",
		Doc: `Returns an error with ` + "`message`" + `, to exercise ` + "`retry`" + `, ` + "`on_error`" + `,
` + "`max_failures`" + ` and failure reports without a flaky service.

- ` + "`times: N`" + ` fails the first N attempts of each item and succeeds afterwards, so
  ` + "`retry: {max_attempts: N+1}`" + ` lets every item through.
- ` + "`probability: P`" + ` fails an attempt with probability P (0 to 1). The decision is a hash of
  ` + "`seed`" + `, the node name, the item's index path and the attempt number, so a run fails
  exactly the same attempts every time; change ` + "`seed`" + ` to get another pattern.
- Both together fail an attempt when either says so; with neither, every attempt fails.

The error is retryable. On success the output is the attempt number.`,
		Params: []action.Param{
			{Name: "times", Type: action.Integer, Doc: "Fail the first this many attempts of each item, then succeed."},
			{Name: "probability", Type: action.Number, Doc: "Fail each attempt with this probability, from 0 (never) to 1 (always)."},
			{Name: "seed", Type: action.Integer, Default: 0, Doc: "Varies which attempts `probability` fails; the same seed fails the same attempts."},
			{Name: "message", Type: action.String, Default: "deliberate failure", Doc: "The error message."},
		},
		Output: []action.Field{
			{Name: "attempts", Type: action.Integer, Doc: "The number of the attempt that succeeded, counting from 1."},
		},
		Examples: []action.Example{
			{
				Summary: "Fail the first two attempts of each item; the third attempt succeeds with this output.",
				With:    "times: 2",
				Output:  "attempts: 3",
			},
			{
				Summary: "Fail about one attempt in five, the same ones on every run.",
				With:    "probability: 0.2\nseed: 7\nmessage: flaky upstream",
			},
			{
				Summary: "Always fail.",
				With:    "message: this step is not implemented yet",
			},
		},
		Func: runFail,
	}
}

func runFail(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
	p := call.Params
	attempt := max(call.Attempt, 1)
	times, hasTimes := p.Int("times"), p.Has("times")
	prob, hasProb := p.Float("probability"), p.Has("probability")
	seed, msg := p.Int("seed"), p.String("message")
	if hasTimes && times < 0 {
		return nil, action.Permanentf("parameter \"times\": must not be negative, got %d", times)
	}
	if hasProb && (prob < 0 || prob > 1) {
		return nil, action.Permanentf("parameter \"probability\": must be between 0 and 1, got %v", prob)
	}
	failing := !hasTimes && !hasProb
	if hasTimes && attempt <= times {
		failing = true
	}
	if hasProb && chance(seed, call.Node, call.Item, attempt) < prob {
		failing = true
	}
	if failing {
		return nil, &action.Error{Msg: msg}
	}
	return map[string]any{"attempts": attempt}, nil
}

// chance maps (seed, node, item, attempt) to a number in [0, 1), the same for the
// same inputs on every platform.
func chance(seed int, node, item string, attempt int) float64 {
	h := fnv.New64a()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(seed))
	h.Write(buf[:])
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(item))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(buf[:], uint64(attempt))
	h.Write(buf[:])
	// FNV's high bits mix poorly on short inputs; finish with splitmix64's mixer.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

func logAction() *action.Spec {
	return &action.Spec{
		Name:    "log",
		NoCache: true,
		Summary: "Write a message to the run's log.",
		Doc: `Sends ` + "`message`" + ` at ` + "`level`" + ` to the run's log, which ` + "`flowrun run`" + ` prints on
standard error. A message that is not a string is written as compact JSON,
so ` + "`message: \"${{ output }}\"`" + ` logs a whole object. The action returns an empty object.`,
		Params: []action.Param{
			{Name: "message", Type: action.Any, Required: true, Doc: "What to log: a string as it is, any other value as JSON."},
			{Name: "level", Type: action.String, Default: "info", Enum: []any{"debug", "info", "warn", "error"}, Doc: "The severity."},
		},
		Examples: []action.Example{
			{
				Summary: "Log a line.",
				With:    "message: starting the import\nlevel: info",
				Output:  "{}",
			},
			{
				Summary: "Log a value as JSON.",
				With:    "message: {done: 3, failed: 1}\nlevel: warn",
				Output:  "{}",
			},
		},
		Func: runLog,
	}
}

func runLog(ctx context.Context, call *action.Call, env *action.Env) (map[string]any, error) {
	msg, ok := call.Params["message"].(string)
	if !ok {
		s, err := jsonText(call.Params["message"])
		if err != nil {
			return nil, action.Permanentf("parameter \"message\": %v", err)
		}
		msg = s
	}
	env.Logger.LogAttrs(ctx, logLevels[call.Params.String("level")], msg,
		slog.String("run", call.RunID), slog.String("node", call.Node), slog.String("item", call.Item))
	return map[string]any{}, nil
}

// logLevels maps the log action's levels to slog's.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
