package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowrun/flowrun/journal"
	"github.com/flowrun/flowrun/runtime"
)

// BenchmarkJournalOverhead runs the 100k-item map-reduce of bench/mapreduce.yaml
// with and without a journal; the difference is what durability costs (target:
// at most 20%; see docs/performance.md).
func BenchmarkJournalOverhead(b *testing.B) {
	src, _ := os.ReadFile("../bench/mapreduce.yaml")
	wf := loadSrc(b, testRegistry(b), string(src))
	for _, mode := range []string{"none", "journal"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				opts := runtime.Options{}
				var j *journal.Journal
				if mode == "journal" {
					j, _ = journal.Open(filepath.Join(b.TempDir(), "j.log"), 10*time.Millisecond)
					opts.Journal = j
				}
				if _, err := runtime.Run(context.Background(), wf, map[string]any{"n": 100000}, opts); err != nil {
					b.Fatal(err)
				}
				if j != nil {
					j.Close()
				}
			}
		})
	}
}
