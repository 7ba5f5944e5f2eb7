package runtime

import (
	"context"
	"time"

	"github.com/flowrun/flowrun/action"
)

// Clock is the runtime's time: when events happen, how long to wait before a
// retry, when an attempt times out. The wall clock is the default; a virtual clock
// lets tests and `flowrun test` run retries, backoff and timeouts without waiting.
// A Clock is used from many goroutines at once.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep waits for d, or until ctx is done and then returns ctx's cause.
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls f in its own goroutine once d has passed, unless stop is
	// called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// WallClock is the Clock of the real world: package time.
var WallClock Clock = wallClock{}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error { return action.Sleep(ctx, d) }

func (wallClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
