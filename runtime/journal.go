package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flowrun/flowrun/spec"
)

// The journal is a run's append-only log of finished work: one line per record,
// "crc32 json\n", the checksum (Castagnoli, 8 hex digits) over the JSON. A record
// is a finished map item with its state updates, a finished top-level node with its
// output, or the end of the run. Records are appended by the workers and written and
// fsynced in batches by one goroutine; a barrier (the end of a map, the end of the
// run) waits until everything before it is on disk.
//
// Resuming re-runs the workflow from its start: execution is deterministic, so every
// unit of work gets the same key again, and a unit whose key is in the journal is
// replayed from its record instead of running. A torn last line (a kill during a
// write) fails its checksum and is cut off.

// record is one journal line, of one of three kinds:
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
	Handled []Failure `json:"h,omitempty"`
	// Node and end: the output; node: or the error on_error handled.
	Output json.RawMessage `json:"o,omitempty"`
	Error  *recordedError  `json:"e,omitempty"`
	// End: the output fields, in order.
	Fields []string `json:"f,omitempty"`
}

type recordedError struct {
	Kind     string         `json:"kind"`
	Message  string         `json:"message"`
	Attempts int            `json:"attempts"`
	Fields   map[string]any `json:"fields,omitempty"`
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
	shared   *lane
	lanes    map[*lane]struct{}
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

// lane is one appender's buffer of records. The writer takes buf and leaves spare
// in its place, so that records are never copied between the two.
type lane struct {
	mu    sync.Mutex
	buf   []byte
	spare []byte
	items int
}

// OpenJournal opens (or creates) the journal at path for appending, after cutting
// off anything past the last good record. It writes and fsyncs batches every
// interval.
func OpenJournal(path string, interval time.Duration) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	good, err := scanJournal(f, func(record) {})
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
	j := &Journal{f: f, interval: interval, shared: &lane{}, lanes: map[*lane]struct{}{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.cond = sync.NewCond(&j.mu)
	go j.writer()
	return j, nil
}

// lane returns a new lane for one appender, which retires it when done.
func (j *Journal) lane() *lane {
	l := &lane{}
	j.mu.Lock()
	if n := len(j.free); n > 0 {
		l.buf, j.free = j.free[n-1], j.free[:n-1]
	}
	j.lanes[l] = struct{}{}
	j.mu.Unlock()
	return l
}

// retire hands what is left in a lane to the shared one and forgets the lane.
func (j *Journal) retire(l *lane) {
	j.mu.Lock()
	defer j.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	j.shared.mu.Lock()
	j.shared.buf = append(j.shared.buf, l.buf...)
	j.shared.mu.Unlock()
	j.retired += l.items
	for _, b := range [][]byte{l.buf, l.spare} {
		if cap(b) > 0 && len(j.free) < 64 {
			j.free = append(j.free, b[:0])
		}
	}
	l.buf, l.spare, l.items = nil, nil, 0
	delete(j.lanes, l)
}

// append adds a record to the shared lane.
func (j *Journal) append(line []byte) { j.shared.append(line) }

// append adds one record to the lane: the JSON of the record, checksummed, as one
// line.
func (l *lane) append(line []byte) {
	sum := crc32.Checksum(line, castagnoli)
	var hex [9]byte
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		hex[i] = digits[sum&0xf]
		sum >>= 4
	}
	hex[8] = ' '
	l.mu.Lock()
	if need := len(l.buf) + len(hex) + len(line) + 1; need > cap(l.buf) {
		// Double (append grows large slices by a quarter, reallocating often).
		grown := make([]byte, len(l.buf), max(2*cap(l.buf), need, 64<<10))
		copy(grown, l.buf)
		l.buf = grown
	}
	l.buf = append(l.buf, hex[:]...)
	l.buf = append(l.buf, line...)
	l.buf = append(l.buf, '\n')
	if bytes.HasPrefix(line, []byte(`{"i":`)) {
		l.items++
	}
	l.mu.Unlock()
}

// writer drains the lanes, writes and fsyncs, every interval, or at once when a
// barrier waits.
func (j *Journal) writer() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	var lanes []*lane
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
	for _, l := range append([]*lane{j.shared}, keys(j.lanes)...) {
		l.mu.Lock()
		n += l.items
		l.mu.Unlock()
	}
	return n
}

func keys(m map[*lane]struct{}) []*lane {
	out := make([]*lane, 0, len(m))
	for l := range m {
		out = append(out, l)
	}
	return out
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

// scanJournal reads records until the end or the first bad line, calling fn for
// each, and returns the offset just past the last good record.
func scanJournal(r io.Reader, fn func(record)) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var good int64
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return good, nil // a last line without its newline is torn: ignored
		}
		if err != nil {
			return good, err
		}
		rec, ok := parseLine(line)
		if !ok {
			return good, nil
		}
		fn(rec)
		good += int64(len(line))
	}
}

func parseLine(line []byte) (record, bool) {
	if len(line) < 11 || line[8] != ' ' || line[len(line)-1] != '\n' {
		return record{}, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	body := line[9 : len(line)-1]
	if err != nil || uint32(sum) != crc32.Checksum(body, castagnoli) {
		return record{}, false
	}
	var rec record
	if err := json.Unmarshal(body, &rec); err != nil {
		return record{}, false
	}
	return rec, true
}

// Replay is what a journal says was finished: the records by key.
type Replay struct {
	items map[string]*record
	nodes map[string]*record
	end   *record
	// Items counts the finished items; Records all good records.
	Items, Records int
}

// ReadReplay reads a journal for resuming.
func ReadReplay(path string) (*Replay, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &Replay{items: map[string]*record{}, nodes: map[string]*record{}}, nil
		}
		return nil, err
	}
	defer f.Close()
	rp := &Replay{items: map[string]*record{}, nodes: map[string]*record{}}
	_, err = scanJournal(f, func(rec record) {
		rp.Records++
		r := rec
		switch {
		case rec.Item != "":
			rp.items[rec.Item] = &r
			rp.Items++
		case rec.Node != "":
			rp.nodes[rec.Node] = &r
		case rec.Type == "end":
			rp.end = &r
		}
	})
	return rp, err
}

// hasItems reports whether there are item records to replay.
func (rp *Replay) hasItems() bool { return rp != nil && len(rp.items) > 0 }

// item returns the record of a finished item, or nil.
func (rp *Replay) item(key string) *record {
	if rp == nil {
		return nil
	}
	return rp.items[key]
}

// Finished returns the result of a run that finished (its output and the order of
// its fields), and whether it did.
func (rp *Replay) Finished() (map[string]any, []string, bool) {
	if rp == nil || rp.end == nil {
		return nil, nil, false
	}
	v, err := decodeExact(rp.end.Output)
	obj, _ := v.(map[string]any)
	return obj, rp.end.Fields, err == nil
}

// itemRecord appends an item's journal line (without the checksum) to b.
func itemRecord(b []byte, ch *chain, updates []update, skipped bool, handled []Failure) []byte {
	b = append(b, `{"i":`...)
	if ch.keyMade {
		b = appendString(b, ch.key)
	} else {
		start := len(b)
		b = append(b, '"')
		b = ch.appendKey(b)
		if plainASCII(b[start+1:]) {
			b = append(b, '"')
		} else {
			b = appendString(b[:start], string(b[start+1:]))
		}
	}
	if skipped {
		b = append(b, `,"s":true`...)
	}
	if len(updates) > 0 {
		b = append(b, `,"u":[`...)
		for i, u := range updates {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, u.field.Name)
			b = append(b, ',')
			b = appendValue(b, u.value)
		}
		b = append(b, ']')
	}
	if len(handled) > 0 {
		h, _ := json.Marshal(handled)
		b = append(b, `,"h":`...)
		b = append(b, h...)
	}
	return append(b, '}')
}

// plainASCII reports whether b needs no escaping inside a JSON string.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if needsEscape(c) {
			return false
		}
	}
	return true
}

// needsEscape reports whether a byte cannot stand as it is in a JSON string (or is
// the start of a multi-byte character, left to encoding/json).
func needsEscape(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf }

// updatesOf decodes an item record's updates for the workflow's fields.
func updatesOf(wf *spec.Workflow, rec *record) ([]update, error) {
	if len(rec.Updates)%2 != 0 {
		return nil, fmt.Errorf("item %s: updates are not field, value pairs", rec.Item)
	}
	out := make([]update, 0, len(rec.Updates)/2)
	for i := 0; i < len(rec.Updates); i += 2 {
		var name string
		if err := json.Unmarshal(rec.Updates[i], &name); err != nil {
			return nil, err
		}
		f := wf.Field(name)
		if f == nil {
			return nil, fmt.Errorf("the journal updates state field %q, which the workflow no longer has", name)
		}
		v, err := decodeExact(rec.Updates[i+1])
		if err != nil {
			return nil, err
		}
		if t := f.UpdateType(); t != nil {
			if msg := t.Check(v); msg != "" { // the field's type may have changed (--force)
				return nil, fmt.Errorf("the journal's update of state field %q no longer fits it: %s", name, msg)
			}
		}
		out = append(out, update{field: f, value: v})
	}
	return out, nil
}

// appendValue writes a JSON value so that decodeJSON gives it back as it was: a
// float64 that happens to be whole is written with ".0", so it stays a float.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float64:
		n := len(b)
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
		if !bytes.ContainsAny(b[n:], ".eEn") {
			b = append(b, ".0"...)
		}
		return b
	case string:
		return appendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendValue(b, x[k])
		}
		return append(b, '}')
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}

// appendString writes a JSON string; plain ASCII goes straight through.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeExact decodes JSON written by appendValue: numbers written with a point or
// an exponent are float64, others int.
func decodeExact(src []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convertNumbers(v, true)
}
