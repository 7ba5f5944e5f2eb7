package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func item(key string) *Item { return &Item{Key: []byte(key)} }

// TestRecords writes one record of each kind and reads them back.
func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.log")
	j, err := Open(path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	l := j.Lane()
	type failure struct {
		Node string `json:"node"`
	}
	l.AppendItem(&Item{Key: []byte("@1:fan[0]"), Fields: []string{"total", "log"}, Values: []any{2.0, []any{"x", 1}}})
	l.AppendItem(&Item{Key: []byte("@1:fan[1]é"), Skipped: true, Handled: []failure{{Node: "w"}}})
	l.Retire()
	j.AppendNode("@2:merge", map[string]any{"n": 1, "f": 0.5})
	j.AppendNodeError("@3:risky", &NodeError{Kind: "action", Message: "boom", Attempts: 2, Fields: map[string]any{"status": 503}})
	j.AppendEnd(map[string]any{"total": 2.0}, []string{"total"})
	if got := j.Items(); got != 2 {
		t.Errorf("Items() = %d, want 2", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	rp, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Items != 2 || rp.Records != 5 {
		t.Errorf("read %d items in %d records, want 2 in 5", rp.Items, rp.Records)
	}
	got, err := rp.Item("@1:fan[0]")
	if err != nil {
		t.Fatal(err)
	}
	want := &Item{Key: []byte("@1:fan[0]"), Fields: []string{"total", "log"}, Values: []any{2.0, []any{"x", 1}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("item (-want +got):\n%s", diff)
	}
	got, err = rp.Item("@1:fan[1]é")
	if err != nil || got == nil || !got.Skipped || string(got.Handled.(json.RawMessage)) != `[{"node":"w"}]` {
		t.Errorf("skipped item: %+v, %v", got, err)
	}
	if it, _ := rp.Item("@1:fan[2]"); it != nil {
		t.Errorf("an item never written reads %+v", it)
	}
	if n := rp.Node("@2:merge"); n == nil || n.Error != nil || n.Output["f"] != 0.5 {
		t.Errorf("node: %+v", n)
	}
	if n := rp.Node("@3:risky"); n == nil || n.Error == nil || n.Error.Fields["status"] != 503 || n.Error.Message != "boom" {
		t.Errorf("node error: %+v", n)
	}
	out, fields, ok := rp.Result()
	if !ok || out["total"] != 2.0 || !cmp.Equal(fields, []string{"total"}) {
		t.Errorf("result: %v %v %v", out, fields, ok)
	}
	text, _ := os.ReadFile(path)
	if !strings.Contains(string(text), ` {"i":"@1:fan[0]","u":["total",2.0,"log",["x",1]]}`+"\n") {
		t.Errorf("the item record's format changed:\n%s", text)
	}
}

// TestTornJournal checks that a record cut short or damaged ends the journal there:
// what follows is ignored, and reopening cuts it off before appending.
func TestTornJournal(t *testing.T) {
	for _, tt := range []struct{ name, tail string }{
		{"torn line", `1234abcd {"i":"@1:x[9`},
		{"bad checksum", "00000000 {\"i\":\"@1:x[9]\"}\n"},
		{"garbage", "\x00\x00\x00\x00\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.log")
			j, err := Open(path, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			l := j.Lane()
			for i := range 3 {
				l.AppendItem(item(fmt.Sprintf("@1:x[%d]", i)))
			}
			l.Retire()
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			good, _ := os.ReadFile(path)
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(tt.tail)
			f.Close()

			rp, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if it, _ := rp.Item("@1:x[2]"); rp.Items != 3 || it == nil {
				t.Errorf("replay has %d items", rp.Items)
			}
			if it, _ := rp.Item("@1:x[9]"); it != nil {
				t.Error("the damaged record was read")
			}
			j, err = Open(path, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			l = j.Lane()
			l.AppendItem(item("@1:x[3]"))
			l.Retire()
			j.Close()
			after, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(after), string(good)) || strings.Contains(string(after), tt.tail) {
				t.Errorf("the damaged tail was not cut off:\n%q", after)
			}
			if rp, _ := Read(path); rp.Items != 4 {
				t.Errorf("after appending, %d items; want 4", rp.Items)
			}
		})
	}
}

// TestJournalSync checks that Sync returns only once every record appended before
// it is on disk, with appends racing from many lanes.
func TestJournalSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.log")
	j, err := Open(path, time.Hour) // only Sync and Close write
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := j.Lane()
			for i := range 100 {
				l.AppendItem(item(fmt.Sprintf("@1:w%d[%d]", w, i)))
			}
		}()
	}
	wg.Wait()
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	rp, err := Read(path)
	if err != nil || rp.Items != 800 {
		t.Fatalf("after Sync the file has %d items (%v), want 800", rp.Items, err)
	}
	j.Close()
}

// TestDamagedMiddle: a bad record with good ones after it is damage, not a torn
// tail: Read and Open refuse it, naming the line, and Repair drops that record only.
func TestDamagedMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.log")
	j, err := Open(path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	l := j.Lane()
	for i := range 50 {
		l.AppendItem(item(fmt.Sprintf("@1:x[%d]", i)))
	}
	l.Retire()
	j.Close()
	text, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(text), "\n")
	lines[9] = strings.Replace(lines[9], "x[9]", "x[8]", 1) // the checksum no longer fits
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600)

	_, err = Read(path)
	var de *DamageError
	if !errors.As(err, &de) || de.Line != 10 || de.Following != 40 || de.Offset != int64(len(strings.Join(lines[:9], ""))) {
		t.Fatalf("Read: %v, want damage at line 10 with 40 records after it", err)
	}
	if _, err := Open(path, time.Millisecond); !errors.As(err, &de) {
		t.Fatalf("Open: %v, want the damage", err)
	}
	n, err := Repair(path)
	if err != nil || n != 1 {
		t.Fatalf("Repair: %d, %v", n, err)
	}
	rp, err := Read(path)
	if err != nil || rp.Items != 49 {
		t.Fatalf("after Repair: %d items, %v", rp.Items, err)
	}
	if it, _ := rp.Item("@1:x[9]"); it != nil {
		t.Error("the damaged record survived")
	}
}
