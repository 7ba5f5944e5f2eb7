package action

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Executor carries out action calls. The runtime decides when a call is made,
// bounds it with a timeout, retries it and recovers its panics; an executor only
// carries it out, as an http.RoundTripper carries a request for an http.Client.
// Registry.Local runs calls in this process; other executors send them to other
// machines, answer them with mocks, or wrap an executor with limits or a cache.
//
// Execute runs one attempt of call and returns the action's output. It is called
// from many goroutines at once, must honour ctx, and must not modify call.
type Executor interface {
	Execute(ctx context.Context, call *Call) (map[string]any, error)
}

// TimedExecutor is an Executor that bounds each attempt by Call.Timeout itself,
// from when the attempt starts where it runs (a call sent to other machines may wait
// in a queue first), and fails it with an *Error of Kind "timeout" then. The
// runtime leaves the timeout of its calls to it.
type TimedExecutor interface {
	Executor
	// EnforcesTimeouts reports whether the executor bounds attempts itself.
	EnforcesTimeouts() bool
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, call *Call) (map[string]any, error)

// Execute calls f(ctx, call).
func (f ExecutorFunc) Execute(ctx context.Context, call *Call) (map[string]any, error) {
	return f(ctx, call)
}

// Env is what the local executor grants actions: its policy. Nothing in a call or
// a workflow widens it.
type Env struct {
	// Dir is the directory of the run's workflow file; a call's Dir is relative to
	// it. Actions see the call's own directory here. Empty means the current
	// directory.
	Dir string
	// AllowPaths are directories file actions may use besides Dir.
	AllowPaths []string
	// Private are directories no file action may use, even inside Dir or
	// AllowPaths: the run store.
	Private []string
	// AllowExec permits the exec action.
	AllowExec bool
	// Grantor names the command whose flags grant exec and paths, for refusals
	// ("flowrun worker"); empty means "flowrun run (or resume)".
	Grantor string
	// Getenv reads an environment variable; nil means os.Getenv.
	Getenv func(string) string
	// Logger receives what actions log; nil discards it.
	Logger *slog.Logger
	// HTTP is the client of network actions; nil means a default client.
	HTTP *http.Client
	// Sleep waits for d or until ctx is done, returning ctx's cause then; nil means
	// a timer (the function Sleep). A virtual clock replaces it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Local returns the executor that runs calls in this process with the registry's
// functions, granting them env. The functions see a copy of env whose Dir is the
// call's directory and whose nil fields hold their defaults.
func (r *Registry) Local(env Env) Executor {
	root := env.Dir
	if root == "" {
		root = "."
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	env.Dir = root
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.HTTP == nil {
		env.HTTP = &http.Client{}
	}
	if env.Sleep == nil {
		env.Sleep = Sleep
	}
	return &local{reg: r, env: env}
}

type local struct {
	reg  *Registry
	env  Env
	dirs sync.Map // a call's Dir → *Env for it
}

func (l *local) Execute(ctx context.Context, call *Call) (map[string]any, error) {
	s := l.reg.Lookup(call.Action)
	if s == nil {
		return nil, Permanentf("unknown action %q: the executor's registry does not declare it", call.Action)
	}
	return s.Func(ctx, call, l.envFor(call.Dir))
}

// envFor returns the Env of actions in the workflow directory dir.
func (l *local) envFor(dir string) *Env {
	if e, ok := l.dirs.Load(dir); ok {
		return e.(*Env)
	}
	e := l.env
	e.Dir = filepath.Join(l.env.Dir, filepath.FromSlash(dir))
	got, _ := l.dirs.LoadOrStore(dir, &e)
	return got.(*Env)
}

// Sleep waits for d on a timer, or until ctx is done and then returns ctx's cause.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
