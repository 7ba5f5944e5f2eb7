package limit

import (
	"fmt"
	"strings"
	"sync"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/runtime"
)

// spent is what a budget's calls used: calls, tokens and US dollars.
type spent struct {
	Calls  int64
	Tokens int64
	USD    float64
}

func spentOf(u runtime.LimitUsage) spent { return spent{Calls: u.Calls, Tokens: u.Tokens, USD: u.USD} }

func (s *spent) add(o spent) {
	s.Calls += o.Calls
	s.Tokens += o.Tokens
	s.USD += o.USD
}

func (s *spent) sub(o spent) {
	s.Calls -= o.Calls
	s.Tokens -= o.Tokens
	s.USD -= o.USD
}

// budget is one budget of a run: the run's own (limits.budget) or one run of a map.
// It counts what was spent and what the calls in flight are expected to spend; once
// a call would pass it, it is reached for good, and no new call starts.
type budget struct {
	name string // "run", or the map's scope
	caps action.Budget

	mu       sync.Mutex
	spent    spent
	inflight spent // estimates of the calls in flight
	reached  string
	told     bool // the run's observers heard of it
}

// reserve books a call's estimate, or says why the budget does not allow it.
func (b *budget) reserve(est spent) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reached != "" {
		return b.reached, false
	}
	after := b.spent
	after.add(b.inflight)
	after.add(est)
	var over []string
	if b.caps.Calls > 0 && after.Calls > b.caps.Calls {
		over = append(over, fmt.Sprintf("calls %d (%d made)", b.caps.Calls, b.spent.Calls))
	}
	if b.caps.Tokens > 0 && after.Tokens > b.caps.Tokens {
		over = append(over, fmt.Sprintf("tokens %d (%d used, the next call needs about %d)", b.caps.Tokens, b.spent.Tokens, est.Tokens))
	}
	if b.caps.USD > 0 && after.USD > b.caps.USD+1e-12 {
		over = append(over, fmt.Sprintf("usd %s (%s spent, the next call needs about %s)", dollars(b.caps.USD), dollars(b.spent.USD), dollars(est.USD)))
	}
	if over != nil {
		who := "the run's budget"
		if b.name != "run" {
			who = "the budget of map " + b.name
		}
		b.reached = fmt.Sprintf("%s is reached: %s", who, strings.Join(over, "; "))
		return b.reached, false
	}
	b.inflight.add(est)
	return "", true
}

// settle replaces a call's estimate with what it used.
func (b *budget) settle(est, used spent) {
	b.mu.Lock()
	b.inflight.sub(est)
	b.spent.add(used)
	b.mu.Unlock()
}

func (b *budget) usage() runtime.LimitUsage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return runtime.LimitUsage{Calls: b.spent.Calls, Tokens: b.spent.Tokens, USD: b.spent.USD}
}

func dollars(f float64) string {
	if f < 0.01 && f > 0 {
		return fmt.Sprintf("$%.4f", f)
	}
	return fmt.Sprintf("$%.2f", f)
}
