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

// record kinds.
const (
	recItem = "item" // a finished item: its updates, in order
	recNode = "node" // a finished top-level action or workflow node: its output or handled error
	recEnd  = "end"  // the run finished: its output
)

// record is one journal line.
type record struct {
	Type string `json:"t"`
	Key  string `json:"k,omitempty"`
	// Item: updates as [field, value] pairs; Skipped: on_error skipped the item.
	Updates [][2]json.RawMessage `json:"u,omitempty"`
	Skipped bool                 `json:"s,omitempty"`
	// Handled: failures on_error dealt with inside the item or node.
	Handled []Failure `json:"h,omitempty"`
	// Node: the output, or the error on_error handled.
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
type Journal struct {
	f        *os.File
	interval time.Duration

	mu      sync.Mutex
	buf     []byte     // records not yet written
	pending int64      // sequence number of the last record appended
	synced  int64      // sequence number of the last record on disk
	err     error      // the first write error: the journal stops
	cond    *sync.Cond // signals a finished sync
	closed  bool
	items   int // item records appended by this process
	wake    chan struct{}
	done    chan struct{}
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
	j := &Journal{f: f, interval: interval, wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.cond = sync.NewCond(&j.mu)
	go j.writer()
	return j, nil
}

// append adds one record: the JSON of the record, checksummed, as one line.
func (j *Journal) append(line []byte) {
	sum := crc32.Checksum(line, castagnoli)
	j.mu.Lock()
	if j.err == nil && !j.closed {
		var hex [9]byte
		const digits = "0123456789abcdef"
		for i := 7; i >= 0; i-- {
			hex[i] = digits[sum&0xf]
			sum >>= 4
		}
		hex[8] = ' '
		j.buf = append(j.buf, hex[:]...)
		j.buf = append(j.buf, line...)
		j.buf = append(j.buf, '\n')
		j.pending++
		if bytes.HasPrefix(line, []byte(`{"t":"item"`)) {
			j.items++
		}
	}
	j.mu.Unlock()
}

// writer writes and fsyncs what has been appended, every interval, or at once when
// a barrier waits.
func (j *Journal) writer() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	var out []byte
	for {
		select {
		case <-t.C:
		case <-j.wake:
		}
		j.mu.Lock()
		out, j.buf = j.buf, out[:0]
		seq, closed := j.pending, j.closed
		j.mu.Unlock()
		var err error
		if len(out) > 0 {
			if _, err = j.f.Write(out); err == nil {
				err = j.f.Sync()
			}
		}
		j.mu.Lock()
		if err != nil && j.err == nil {
			j.err = err
		}
		j.synced = seq
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
	return j.items
}

// Sync waits until every record appended so far is on disk.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	want := j.pending
	for j.synced < want && j.err == nil && !j.closed {
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
		switch rec.Type {
		case recItem:
			rp.items[rec.Key] = &r
			rp.Items++
		case recNode:
			rp.nodes[rec.Key] = &r
		case recEnd:
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
	b = append(b, `{"t":"item","k":`...)
	if ch.keyMade {
		b = appendString(b, ch.key)
	} else {
		start := len(b)
		b = ch.appendKey(b)
		b = quoteInPlace(b, start)
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
			b = append(b, '[')
			b = appendString(b, u.field.Name)
			b = append(b, ',')
			b = appendValue(b, u.value)
			b = append(b, ']')
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

// quoteInPlace turns b[start:] into a JSON string.
func quoteInPlace(b []byte, start int) []byte {
	raw := b[start:]
	plain := true
	for _, c := range raw {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if !plain {
		return appendString(b[:start], string(raw))
	}
	b = append(b, 0)
	copy(b[start+1:], b[start:len(b)-1])
	b[start] = '"'
	return append(b, '"')
}

// updatesOf decodes an item record's updates for the workflow's fields.
func updatesOf(wf *spec.Workflow, rec *record) ([]update, error) {
	out := make([]update, 0, len(rec.Updates))
	for _, pair := range rec.Updates {
		var name string
		if err := json.Unmarshal(pair[0], &name); err != nil {
			return nil, err
		}
		f := wf.Field(name)
		if f == nil {
			return nil, fmt.Errorf("the journal updates state field %q, which the workflow no longer has", name)
		}
		v, err := decodeExact(pair[1])
		if err != nil {
			return nil, err
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
		if bytes.IndexAny(b[n:], ".eEn") < 0 {
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
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
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
