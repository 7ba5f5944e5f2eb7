package limit

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// How a rate limit backs off when a server says to slow down (a 429), and recovers.
const (
	// minPause is the shortest pause after a 429, whatever Retry-After says
	// (Retry-After: 0 must not become a tight loop); without Retry-After the
	// pause doubles with each 429 in a row, up to maxPause.
	minPause = time.Second
	maxPause = time.Minute
	// minFactor bounds how far the limit slows down: 1/64 of its rate.
	minFactor = 1.0 / 64
	// recoverCalls is how many successful calls bring the effective rate back up
	// to its ceiling after a halving.
	recoverCalls = 20
	// ceilingRecovery is how long the ceiling takes to recover a tenth of its gap to
	// the full rate, once no 429 has come for that long.
	ceilingRecovery = 10 * time.Minute
	// pace is the share of a limit the buckets use: a little under the limit, so
	// that a server counting the same limit with other rounding does not refuse the
	// call that lands on the boundary.
	pace = 0.98
)

// rate is one named rate limit of a run: token buckets for requests and tokens, a
// cap on calls in flight, and the AIMD factor that a 429 halves for every call.
type rate struct {
	name  string
	clock runtime.Clock

	mu       sync.Mutex
	requests *bucket // nil when not limited
	tokens   *bucket
	maxConc  int // calls in flight at the full rate
	inflight int
	waiters  []chan struct{} // calls waiting for a slot
	// factor scales the rate and the concurrency: 1 at first; a 429 halves it
	// and, if it came at the ceiling, makes the half the new ceiling; successes
	// bring it back up to the ceiling step by step, and the ceiling creeps back to
	// 1 when no 429 comes for long.
	factor, ceiling float64
	lastLimited     time.Time
	pausedUntil     time.Time
	pauses          int // pause episodes so far: a booking made before one is void
	streak          int // 429s in a row, for pauses without Retry-After

	stats runtime.LimitUsage
}

func newRate(r *spec.Rate, maxConc int, clock runtime.Clock) *rate {
	l := &rate{name: r.Name, clock: clock, maxConc: maxConc, factor: 1, ceiling: 1}
	if r.Concurrency > 0 {
		l.maxConc = r.Concurrency
	}
	l.maxConc = max(l.maxConc, 1)
	if r.Requests != nil {
		l.requests = newBucket(r.Requests.PerSecond() * pace)
	}
	if r.Tokens != nil {
		l.tokens = newBucket(r.Tokens.PerSecond() * pace)
	}
	return l
}

// bucket paces a flow of units (requests or tokens): a token bucket that holds at
// most a second's worth (and at least one unit), refilled at perSecond times the
// limit's factor. A reservation takes its units at once, into debt if need be,
// and is told when the bucket has them.
type bucket struct {
	perSecond float64
	level     float64
	last      time.Time // when level was computed; later than now during a pause
}

func newBucket(perSecond float64) *bucket {
	return &bucket{perSecond: perSecond, level: math.Max(1, perSecond)}
}

// fill brings the level up to now.
func (b *bucket) fill(now time.Time, factor float64) {
	if b.last.IsZero() {
		b.last = now
	}
	if now.After(b.last) {
		b.level = math.Min(math.Max(1, b.perSecond), b.level+now.Sub(b.last).Seconds()*b.perSecond*factor)
		b.last = now
	}
}

// reserve takes n units at the given rate factor and returns when they may be used.
func (b *bucket) reserve(now time.Time, n, factor float64) time.Time {
	b.fill(now, factor)
	b.level -= n
	if b.level >= 0 {
		return now
	}
	from := now
	if b.last.After(now) {
		from = b.last // paused: nothing refills before the pause ends
	}
	return from.Add(seconds(-b.level / (b.perSecond * factor)))
}

// settle corrects a reservation of est units that turned out to be n.
func (b *bucket) settle(est, n float64) { b.level += est - n }

// pause empties the bucket until the given time, so that the calls waiting do not
// all go at once when the pause ends; what was booked and has not gone yet is
// booked again after the pause.
func (b *bucket) pause(now, until time.Time, factor float64) {
	b.level = 0
	if until.After(b.last) {
		b.last = until
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// effective is the calls in flight allowed now (r.mu held).
func (r *rate) effective() int {
	return max(1, int(math.Round(float64(r.maxConc)*r.factor)))
}

// acquire waits until a call estimated at tokens may go: the limit is not paused,
// a slot is free, and both buckets allow it. It returns how long it waited.
func (r *rate) acquire(ctx context.Context, tokens int) (time.Duration, error) {
	start := r.clock.Now()
	slot, booked := false, false // a slot held; units booked in the buckets
	epoch := 0                   // r.pauses when booked
	for {
		r.mu.Lock()
		now := r.clock.Now()
		if booked && epoch != r.pauses {
			booked = false // a pause came since: book again, at the new pace
		}
		if now.Before(r.pausedUntil) {
			d := r.pausedUntil.Sub(now)
			r.mu.Unlock()
			booked = false // what was booked before the pause is booked again after it, paced anew
			if err := r.clock.Sleep(ctx, d); err != nil {
				r.release(slot)
				return 0, err
			}
			continue
		}
		if !slot {
			if r.inflight >= r.effective() {
				ch := make(chan struct{})
				r.waiters = append(r.waiters, ch)
				r.mu.Unlock()
				select {
				case <-ch:
				case <-ctx.Done():
					r.mu.Lock()
					r.dropWaiter(ch)
					r.mu.Unlock()
					return 0, context.Cause(ctx)
				}
				continue
			}
			r.inflight++
			slot = true
		}
		if !booked {
			booked, epoch = true, r.pauses
			var at time.Time
			if r.requests != nil {
				at = r.requests.reserve(now, 1, r.factor)
			}
			if r.tokens != nil && tokens > 0 {
				if t := r.tokens.reserve(now, float64(tokens), r.factor); t.After(at) {
					at = t
				}
			}
			if at.After(now) {
				r.mu.Unlock()
				if err := r.clock.Sleep(ctx, at.Sub(now)); err != nil {
					r.release(true)
					return 0, err
				}
				continue // a 429 may have paused the limit meanwhile
			}
		}
		waited := now.Sub(start)
		if waited > 0 {
			r.stats.Waits++
			r.stats.WaitMS += float64(waited.Microseconds()) / 1000
		}
		r.mu.Unlock()
		return waited, nil
	}
}

// dropWaiter forgets a waiter that gave up (r.mu held).
func (r *rate) dropWaiter(ch chan struct{}) {
	for i, w := range r.waiters {
		if w == ch {
			r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
			return
		}
	}
}

// release frees a call's slot, if it held one, and wakes those that fit now.
func (r *rate) release(held bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if held {
		r.inflight--
	}
	r.wake()
}

// wake lets waiting calls try again, as many as there are free slots (r.mu held).
func (r *rate) wake() {
	for free := r.effective() - r.inflight; free > 0 && len(r.waiters) > 0; free-- {
		close(r.waiters[0])
		r.waiters = r.waiters[1:]
	}
}

// done ends a call that went through: its slot is freed, its tokens settled, and
// a success brings the rate back up.
func (r *rate) done(est, used int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	r.stats.Calls++
	r.stats.Tokens += int64(used)
	if r.tokens != nil && est != used {
		r.tokens.settle(float64(est), float64(used))
	}
	if ok {
		r.streak = 0
		now := r.clock.Now()
		if r.ceiling < 1 && now.Sub(r.lastLimited) >= ceilingRecovery {
			r.ceiling += (1 - r.ceiling) / 10
			r.lastLimited = now // the next step after as long again
		}
		if r.factor < r.ceiling {
			r.factor = math.Min(r.ceiling, r.factor+r.ceiling/(2*recoverCalls))
		}
	}
	r.wake()
}

// limited handles a 429 a call met: the limit pauses for everyone for the server's
// Retry-After (negative: not given) and, once per pause, halves its rate and
// concurrency. It frees the call's slot; the call acquires again. It returns the
// pause and whether this 429 started it.
func (r *rate) limited(retryAfter time.Duration) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	r.stats.RateLimited++
	now := r.clock.Now()
	pause := retryAfter
	if pause < 0 {
		pause = min(minPause<<min(r.streak, 6), maxPause)
	}
	pause = max(pause, minPause)
	first := !now.Before(r.pausedUntil) // not already paused: a new episode
	if first {
		r.streak++
		r.pauses++
		r.factor = math.Max(minFactor, r.factor/2)
		if r.factor*2 >= r.ceiling*0.95 {
			// At the ceiling: the limit asks more than the server gives, so half of
			// it becomes the ceiling. (Below it, the limit was still recovering from
			// a pause: the server's bucket was empty, which says nothing new of its
			// rate.)
			r.ceiling = r.factor
		}
		r.lastLimited = now
		for _, b := range []*bucket{r.requests, r.tokens} {
			if b != nil {
				b.pause(now, now.Add(pause), r.factor)
			}
		}
	}
	if until := now.Add(pause); until.After(r.pausedUntil) {
		r.pausedUntil = until
	}
	r.wake()
	return pause, first
}

// usage is the limit's totals so far.
func (r *rate) usage() runtime.LimitUsage {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.stats
	u.Concurrency = float64(r.effective())
	return u
}

// addUSD counts what a call of the limit cost.
func (r *rate) addUSD(usd float64) {
	r.mu.Lock()
	r.stats.USD += usd
	r.mu.Unlock()
}
