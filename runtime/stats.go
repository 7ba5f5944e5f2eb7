package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts a run's progress as it goes, per node: safe to read while the run
// runs (a progress display polls it), and complete when Run returns. Counting costs
// a lookup per node execution or map instance and atomic additions per item.
type Stats struct {
	mu    sync.Mutex
	nodes []*NodeStats
	byKey map[statsKey]*NodeStats

	// Retries counts the attempts that were retried, run-wide.
	Retries atomic.Int64
}

type statsKey struct {
	workflow, node string
}

// NodeStats are one node's counters, over every time it ran (a nested map runs once
// per item of its parent: its counters add up).
type NodeStats struct {
	Workflow string
	Node     string
	// Kind is the node's kind: action, pass, map, parallel or workflow.
	Kind string
	// Parent is the map node whose items run this node ("" at top level); Depth
	// counts the maps around it.
	Parent string
	Depth  int

	// Runs counts the node's executions; Busy sums their durations (for a map, from
	// its start to its barrier).
	Runs, Busy atomic.Int64
	// For maps and parallels: the items started so far (known when each map
	// instance starts), those done, failed, and waiting to retry now.
	Items, Done, Failed, Retrying atomic.Int64
	// Width, for maps and parallels, is the most items one run of the node may
	// have in flight: the smaller of its concurrency and its items, the largest
	// over its runs.
	Width atomic.Int64
}

// Nodes returns the nodes seen so far, in the order they first ran.
func (s *Stats) Nodes() []*NodeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*NodeStats(nil), s.nodes...)
}

// node returns the counters of a node, making them on first use.
func (s *Stats) node(workflow, node, kind, parent string, depth int) *NodeStats {
	k := statsKey{workflow, node}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns := s.byKey[k]; ns != nil {
		return ns
	}
	if s.byKey == nil {
		s.byKey = map[statsKey]*NodeStats{}
	}
	ns := &NodeStats{Workflow: workflow, Node: node, Kind: kind, Parent: parent, Depth: depth}
	s.byKey[k] = ns
	s.nodes = append(s.nodes, ns)
	return ns
}

// widen raises Width to n.
func (ns *NodeStats) widen(n int64) {
	for {
		w := ns.Width.Load()
		if n <= w || ns.Width.CompareAndSwap(w, n) {
			return
		}
	}
}

// ran adds one execution of d to the node.
func (ns *NodeStats) ran(d time.Duration) {
	ns.Runs.Add(1)
	ns.Busy.Add(int64(d))
}
