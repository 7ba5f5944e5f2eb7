package journal

import (
	"encoding/json"
	"hash/crc32"
	"sync"

	"github.com/flowrun/flowrun/value"
)

// Lane is one appender's buffer of records: a map worker's, or the journal's shared
// one. The writer takes its buffer and leaves a spare in its place, so that records
// are never copied between the two.
type Lane struct {
	j       *Journal
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	items   int
	scratch []byte // the record being encoded; only the lane's owner uses it
}

// Item is a finished map item: what its record holds.
type Item struct {
	// Key identifies the item's unit of work (the runtime builds it).
	Key []byte
	// Fields and Values are the item's state updates, in order.
	Fields []string
	Values []any
	// Skipped: on_error dropped the item's updates.
	Skipped bool
	// Handled lists the errors on_error dealt with in the item, in any form
	// encoding/json writes; Read gives it back as a json.RawMessage. Nil for none.
	Handled any
}

// AppendItem appends a finished item's record. Only the lane's owner calls it.
func (l *Lane) AppendItem(it *Item) {
	b := append(l.scratch[:0], `{"i":`...)
	b = appendKey(b, it.Key)
	if it.Skipped {
		b = append(b, `,"s":true`...)
	}
	if len(it.Fields) > 0 {
		b = append(b, `,"u":[`...)
		for i, name := range it.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = value.AppendString(b, name)
			b = append(b, ',')
			b = value.Append(b, it.Values[i])
		}
		b = append(b, ']')
	}
	b = appendHandled(b, it.Handled)
	l.scratch = append(b, '}')
	l.append(l.scratch, true)
}

// appendKey writes a key as a JSON string; a plain ASCII one goes straight through.
func appendKey(b, key []byte) []byte {
	for _, c := range key {
		if value.NeedsEscape(c) {
			return value.AppendString(b, string(key))
		}
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"')
}

func appendHandled(b []byte, handled any) []byte {
	if handled == nil {
		return b
	}
	h, err := json.Marshal(handled)
	if err != nil || string(h) == "null" || string(h) == "[]" {
		return b
	}
	b = append(b, `,"h":`...)
	return append(b, h...)
}

// Retire hands what is left in the lane to the shared one and forgets the lane.
func (l *Lane) Retire() {
	j := l.j
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

// append adds one record to the lane: the JSON of the record, checksummed, as one
// line.
func (l *Lane) append(line []byte, item bool) {
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
	if item {
		l.items++
	}
	l.mu.Unlock()
}
