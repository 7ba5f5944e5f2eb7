package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/flowrun/flowrun/runtime"
)

// refreshEvery is how often the progress display reads the run's counters: the run
// itself does no more per item than the atomic additions its Stats do anyway.
const refreshEvery = 100 * time.Millisecond

// progress draws one bar per map (or parallel) node while a run goes, nested maps
// indented under their parent: done/total, rate, ETA, failures and retries.
type progress struct {
	p     *mpb.Progress
	stats *runtime.Stats
	root  string // the run's workflow, whose name bars omit
	color bool
	// usage, when set, is what the run's metered calls used so far: the top
	// bars show tokens per minute and dollars.
	usage   func() runtime.LimitUsage
	started time.Time

	mu    sync.Mutex
	bars  map[*runtime.NodeStats]*bar
	order []*runtime.NodeStats
	stop  chan struct{}
	done  chan struct{}
}

type bar struct {
	b       *mpb.Bar
	started time.Time
}

// progressMode decides whether to draw: always, never, or auto (when w is a
// terminal, and TERM is not dumb).
func progressMode(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto", "":
		f, ok := w.(*os.File)
		if !ok || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		fi, err := f.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0, nil
	}
	return false, usageError("--progress %q: expected auto, always or never", mode)
}

func startProgress(w io.Writer, stats *runtime.Stats, root string, usage func() runtime.LimitUsage) *progress {
	pr := &progress{usage: usage,
		p:     mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(refreshEvery), mpb.WithAutoRefresh(), mpb.WithWidth(100)),
		stats: stats, root: root, color: os.Getenv("NO_COLOR") == "", started: time.Now(),
		bars: map[*runtime.NodeStats]*bar{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(pr.done)
		t := time.NewTicker(refreshEvery)
		defer t.Stop()
		for {
			pr.update(false)
			select {
			case <-t.C:
			case <-pr.stop:
				pr.update(true)
				return
			}
		}
	}()
	return pr
}

// Write prints text above the bars (log messages during the run).
func (pr *progress) Write(b []byte) (int, error) { return pr.p.Write(b) }

// finish draws the final counts and stops the display.
func (pr *progress) finish() {
	close(pr.stop)
	<-pr.done
	pr.p.Wait()
}

// update makes bars for maps that started since, and sets every bar's counts.
func (pr *progress) update(final bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	nodes := pr.stats.Nodes()
	added := false
	for _, ns := range nodes {
		if (ns.Kind == "map" || ns.Kind == "parallel") && pr.bars[ns] == nil {
			pr.bars[ns] = pr.newBar(ns)
			added = true
		}
	}
	if added {
		pr.order = treeOrder(nodes, pr.bars)
		for i, ns := range pr.order {
			pr.p.UpdateBarPriority(pr.bars[ns].b, i, false)
		}
	}
	for _, ns := range pr.order {
		b := pr.bars[ns].b
		total, finished := ns.Items.Load(), ns.Done.Load()+ns.Failed.Load()
		b.SetTotal(max(total, 1), false)
		b.SetCurrent(finished)
		switch {
		case final && finished >= total:
			b.SetTotal(max(total, 1), true)
		case final:
			b.Abort(false) // stopped short (a failure, Ctrl-C): the bar keeps what really finished
		}
	}
}

func (pr *progress) newBar(ns *runtime.NodeStats) *bar {
	name := strings.Repeat("  ", ns.Depth) + ns.Node
	if ns.Workflow != pr.root {
		name += " (" + ns.Workflow + ")"
	}
	br := &bar{started: time.Now()}
	br.b = pr.p.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.PrependDecorators(
			decor.Name(name, decor.WC{W: 24, C: decor.DindentRight | decor.DSyncWidth}),
			decor.CountersNoUnit("%d/%d", decor.WC{W: 15, C: decor.DSyncWidth}),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.Any(func(s decor.Statistics) string { return pr.rateETA(ns, br, s) }),
			decor.Any(func(decor.Statistics) string { return pr.trouble(ns) }),
			decor.Any(func(decor.Statistics) string { return pr.spend(ns) }),
		),
	)
	return br
}

// rateETA shows items per second and the time left at that rate.
func (pr *progress) rateETA(ns *runtime.NodeStats, br *bar, s decor.Statistics) string {
	elapsed := time.Since(br.started).Seconds()
	if elapsed <= 0 || s.Current == 0 {
		return ""
	}
	rate := float64(s.Current) / elapsed
	out := fmt.Sprintf("  %s/s", shortCount(rate))
	if !s.Completed && !s.Aborted && s.Total > s.Current {
		left := time.Duration(float64(s.Total-s.Current)/rate) * time.Second
		out += fmt.Sprintf("  ETA %s", left.Round(time.Second))
	}
	return out
}

// trouble shows failed and retrying counts when there are any.
func (pr *progress) trouble(ns *runtime.NodeStats) string {
	var parts []string
	if n := ns.Failed.Load(); n > 0 {
		s := fmt.Sprintf("%d failed", n)
		if pr.color {
			s = "\x1b[31m" + s + "\x1b[0m"
		}
		parts = append(parts, s)
	}
	if n := ns.Retrying.Load(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d retrying", n))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, ", ")
}

// spend shows, on top-level bars, the tokens per minute and dollars of the run's
// metered calls.
func (pr *progress) spend(ns *runtime.NodeStats) string {
	if pr.usage == nil || ns.Depth > 0 {
		return ""
	}
	u := pr.usage()
	minutes := time.Since(pr.started).Minutes()
	if u.Tokens == 0 || minutes <= 0 {
		return ""
	}
	out := fmt.Sprintf("  %s tok/min", shortCount(float64(u.Tokens)/minutes))
	if u.USD > 0 {
		out += "  " + dollars(u.USD)
	}
	return out
}

func shortCount(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.0fk", x/1e3)
	case x >= 10:
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// treeOrder lists the nodes that have bars so that each nested map follows its
// parent, in the order they first ran.
func treeOrder(nodes []*runtime.NodeStats, bars map[*runtime.NodeStats]*bar) []*runtime.NodeStats {
	var out []*runtime.NodeStats
	placed := map[*runtime.NodeStats]bool{}
	var place func(parent string, depth int)
	place = func(parent string, depth int) {
		for _, ns := range nodes {
			if bars[ns] != nil && !placed[ns] && ns.Parent == parent && ns.Depth == depth {
				placed[ns] = true
				out = append(out, ns)
				place(ns.Node, depth+1)
			}
		}
	}
	place("", 0)
	for _, ns := range nodes { // anything whose parent has no bar
		if bars[ns] != nil && !placed[ns] {
			out = append(out, ns)
		}
	}
	return out
}
