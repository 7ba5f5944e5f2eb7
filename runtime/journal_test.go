package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestValueRoundTrip checks that journal values come back exactly: a whole float
// stays a float, integers stay integers.
func TestValueRoundTrip(t *testing.T) {
	for _, v := range []any{
		nil, true, 0, -7, 1 << 52, 2.0, 0.5, -1e-9, 1e21, 123456789.25, "", "plain", "quote\" back\\ nl\n é 😀",
		[]any{}, []any{1, 2.0, "x", nil}, map[string]any{}, map[string]any{"b": []any{map[string]any{"z": 1.0}}, "a": false},
	} {
		b := appendValue(nil, v)
		got, err := decodeExact(b)
		if err != nil {
			t.Fatalf("%v: %s: %v", v, b, err)
		}
		if diff := cmp.Diff(v, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", b, diff)
		}
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
			j, err := OpenJournal(path, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				j.append(itemRecord(nil, &chain{key: "@1:x[" + string(rune('0'+i)) + "]", keyMade: true}, nil, false, nil))
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			good, _ := os.ReadFile(path)
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(tt.tail)
			f.Close()

			rp, err := ReadReplay(path)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Items != 3 || rp.item("@1:x[2]") == nil || rp.item("@1:x[9]") != nil {
				t.Errorf("replay has %d items: %v", rp.Items, rp.items)
			}
			j, err = OpenJournal(path, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			j.append(itemRecord(nil, &chain{key: "@1:x[3]", keyMade: true}, nil, false, nil))
			j.Close()
			after, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(after), string(good)) || strings.Contains(string(after), tt.tail) {
				t.Errorf("the damaged tail was not cut off:\n%q", after)
			}
			if rp, _ := ReadReplay(path); rp.Items != 4 {
				t.Errorf("after appending, %d items; want 4", rp.Items)
			}
		})
	}
}

// TestJournalSync checks that Sync returns only once every record appended before
// it is on disk, with appends racing from many goroutines.
func TestJournalSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.log")
	j, err := OpenJournal(path, time.Hour) // only Sync and Close write
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				j.append(itemRecord(nil, &chain{key: filepathKey(w, i), keyMade: true}, nil, false, nil))
			}
		}()
	}
	wg.Wait()
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	rp, err := ReadReplay(path)
	if err != nil || rp.Items != 800 {
		t.Fatalf("after Sync the file has %d items (%v), want 800", rp.Items, err)
	}
	j.Close()
}

func filepathKey(w, i int) string {
	return "@1:w" + string(rune('a'+w)) + "[" + string(rune('0'+i%10)) + string(rune('0'+i/10)) + "]"
}
