// Package journal keeps a run's journal: the append-only log of its finished work,
// written as the run goes so that an interrupted or failed run can resume.
//
// The journal is one file of lines, "crc32 json\n": the checksum (Castagnoli, 8 hex
// digits) over the JSON of one record. A record is a finished map item with its
// state updates (Item), a finished top-level node with its output or handled error
// (Node), or the end of the run with its output. Records are appended to lanes and
// written and fsynced in batches by one goroutine (group commit); Sync is the
// barrier that waits until everything appended before it is on disk.
//
// Read reads a journal back for resuming. A torn last line (a kill during a write)
// fails its checksum and is ignored, and Open cuts it off before appending.
//
// This package alone knows the record format; the runtime hands it keys and values.
// Values are written with the exact codec of package value, so they come back as
// they were.
package journal

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"
)

// The JSON form of each kind of record:
//
//	{"i":"@1:fan[17]","u":["total",34,"log",["x"]]}   a finished item: its key, its
//	                                                  updates as field, value, ...
//	{"n":"@2:merge","o":{...}}                        a finished top-level node: its
//	                                                  output, or the error on_error handled
//	{"t":"end","o":{...},"f":["a","b"]}               the run finished: its output
type record struct {
	Item string `json:"i,omitempty"`
	Node string `json:"n,omitempty"`
	Type string `json:"t,omitempty"`
	// Item: updates as field, value, field, value; Skipped: on_error skipped it.
	Updates []json.RawMessage `json:"u,omitempty"`
	Skipped bool              `json:"s,omitempty"`
	// Handled: failures on_error dealt with inside the item or node.
	Handled json.RawMessage `json:"h,omitempty"`
	// Node and end: the output; node: or the error on_error handled.
	Output json.RawMessage `json:"o,omitempty"`
	Error  *NodeError      `json:"e,omitempty"`
	// End: the output fields, in order.
	Fields []string `json:"f,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal appends records to a run's journal file. It is safe for concurrent use.
//
// Records are appended to lanes: each map worker has its own, so that workers never
// wait for each other, and records from elsewhere go to a shared one. One writer
// goroutine drains every lane, writes and fsyncs, every interval (or at once when a
// barrier waits in Sync), so a record is on disk within about an interval of being
// appended, however long its worker's next item takes.
type Journal struct {
	f        *os.File
	interval time.Duration

	mu       sync.Mutex
	shared   *Lane
	lanes    map[*Lane]struct{}
	free     [][]byte // buffers of retired lanes, for new ones
	retired  int      // item records of lanes that were retired
	started  int64    // writer cycles begun: a cycle drains every lane, then writes
	finished int64    // writer cycles whose records are on disk
	err      error    // the first write error: the journal stops
	cond     *sync.Cond
	closed   bool
	wake     chan struct{}
	done     chan struct{}
}

// Open opens (or creates) the journal at path for appending, after cutting off
// anything past the last good record. It writes and fsyncs batches every interval.
func Open(path string, interval time.Duration) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	good, err := scan(f, func(record) {})
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j := &Journal{f: f, interval: interval, lanes: map[*Lane]struct{}{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.shared = &Lane{j: j}
	j.cond = sync.NewCond(&j.mu)
	go j.writer()
	return j, nil
}

// Lane returns a new lane for one appender, which retires it when done.
func (j *Journal) Lane() *Lane {
	l := &Lane{j: j}
	j.mu.Lock()
	if n := len(j.free); n > 0 {
		l.buf, j.free = j.free[n-1], j.free[:n-1]
	}
	j.lanes[l] = struct{}{}
	j.mu.Unlock()
	return l
}

// writer drains the lanes, writes and fsyncs, every interval, or at once when a
// barrier waits.
func (j *Journal) writer() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	var lanes []*Lane
	for {
		select {
		case <-t.C:
		case <-j.wake:
		}
		j.mu.Lock()
		j.started++
		cycle, closed, failed := j.started, j.closed, j.err != nil
		lanes = append(lanes[:0], j.shared)
		for l := range j.lanes {
			lanes = append(lanes, l)
		}
		j.mu.Unlock()
		var err error
		wrote := false
		for _, l := range lanes {
			l.mu.Lock()
			out := l.buf
			l.buf, l.spare = l.spare[:0], nil
			l.mu.Unlock()
			if len(out) > 0 && err == nil && !failed {
				_, err = j.f.Write(out)
				wrote = true
			}
			l.mu.Lock()
			l.spare = out[:0]
			l.mu.Unlock()
		}
		if wrote && err == nil {
			err = j.f.Sync()
		}
		j.mu.Lock()
		if err != nil && j.err == nil {
			j.err = err
		}
		j.finished = cycle
		j.cond.Broadcast()
		j.mu.Unlock()
		if closed {
			return
		}
	}
}

// Items counts the item records this Journal has appended.
func (j *Journal) Items() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.retired
	count := func(l *Lane) {
		l.mu.Lock()
		n += l.items
		l.mu.Unlock()
	}
	count(j.shared)
	for l := range j.lanes {
		count(l)
	}
	return n
}

// Sync waits until every record appended so far is on disk: until a writer cycle
// that begins after this call has finished.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	want := j.started + 1
	for j.finished < want && j.err == nil && !j.closed {
		select {
		case j.wake <- struct{}{}:
		default:
		}
		j.cond.Wait()
	}
	return j.err
}

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	err := j.Sync()
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
