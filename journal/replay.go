package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"

	"github.com/flowrun/flowrun/value"
)

// Replay is what a journal says was finished: the records by key.
type Replay struct {
	items map[string]*record
	nodes map[string]*record
	end   *record
	// Items counts the finished items; Records all good records.
	Items, Records int
}

// Read reads a journal for resuming; a missing file is an empty journal.
func Read(path string) (*Replay, error) {
	rp := &Replay{items: map[string]*record{}, nodes: map[string]*record{}}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return rp, nil
		}
		return nil, err
	}
	defer f.Close()
	_, err = scan(f, func(rec record) {
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

// Item returns the record of the finished item with the given key, or nil. Its
// Handled is a json.RawMessage, or nil.
func (rp *Replay) Item(key string) (*Item, error) {
	if rp == nil || len(rp.items) == 0 {
		return nil, nil
	}
	rec := rp.items[key]
	if rec == nil {
		return nil, nil
	}
	if len(rec.Updates)%2 != 0 {
		return nil, fmt.Errorf("item %s: updates are not field, value pairs", key)
	}
	it := &Item{Key: []byte(key), Skipped: rec.Skipped}
	if rec.Handled != nil {
		it.Handled = rec.Handled
	}
	for i := 0; i < len(rec.Updates); i += 2 {
		var name string
		if err := json.Unmarshal(rec.Updates[i], &name); err != nil {
			return nil, fmt.Errorf("item %s: %w", key, err)
		}
		v, err := value.DecodeExact(rec.Updates[i+1])
		if err != nil {
			return nil, fmt.Errorf("item %s: update of %q: %w", key, name, err)
		}
		it.Fields, it.Values = append(it.Fields, name), append(it.Values, v)
	}
	return it, nil
}

// Node returns the record of the finished top-level node with the given key, or
// nil.
func (rp *Replay) Node(key string) *Node {
	if rp == nil {
		return nil
	}
	rec := rp.nodes[key]
	if rec == nil {
		return nil
	}
	if e := rec.Error; e != nil {
		if e.Fields != nil { // decoded by encoding/json: whole numbers as float64
			fields, err := value.Normalize(e.Fields)
			if err != nil {
				return nil
			}
			e.Fields = fields.(map[string]any)
		}
		return &Node{Error: e}
	}
	v, err := value.DecodeExact(rec.Output)
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil // unreadable: the node runs again
	}
	return &Node{Output: obj}
}

// Result returns the output of a run that finished and the order of its fields,
// and whether it did.
func (rp *Replay) Result() (map[string]any, []string, bool) {
	if rp == nil || rp.end == nil {
		return nil, nil, false
	}
	v, err := value.DecodeExact(rp.end.Output)
	obj, _ := v.(map[string]any)
	return obj, rp.end.Fields, err == nil
}

// scan reads records until the end, calling fn for each, and returns the offset
// just past the last good record. A bad last line is a torn tail (a kill in the
// middle of a write) and ends the journal; a bad line with good records after it
// is damage, a *DamageError.
func scan(r io.Reader, fn func(record)) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var good int64
	var damage *DamageError
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return good, damage.orNil() // a last line without its newline is torn: ignored
		}
		if err != nil {
			return good, err
		}
		rec, ok := parseLine(line)
		switch {
		case !ok && damage == nil:
			damage = &DamageError{Line: n, Offset: good}
		case !ok:
			damage.Bad++
		case damage != nil:
			damage.Following++
		default:
			fn(rec)
			good += int64(len(line))
		}
	}
}

// DamageError is a journal with a damaged record in its middle: good records follow
// it, so it is not a torn tail, and reading past it would drop them (or reading it
// would trust a record that lies).
type DamageError struct {
	// Line is the first damaged line (from 1), at byte Offset; Bad counts the
	// damaged lines after it, Following the good records after it.
	Line           int
	Offset         int64
	Bad, Following int
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("the journal is damaged at line %d (byte %d), and %d good records follow it", e.Line, e.Offset, e.Following)
}

func (e *DamageError) orNil() error {
	if e == nil || e.Following == 0 {
		return nil // only a torn tail
	}
	return e
}

// Repair rewrites the journal at path without its damaged lines, keeping every good
// record, and returns how many lines it dropped. The work the dropped records held
// runs again when the run resumes.
func Repair(path string) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	dropped := 0
	for line := range bytes.Lines(src) {
		if _, ok := parseLine(line); ok {
			out.Write(line)
		} else {
			dropped++
		}
	}
	tmp := path + ".repair"
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return 0, err
	}
	return dropped, os.Rename(tmp, path)
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
