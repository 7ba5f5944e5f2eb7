package workflows_test

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
)

// TestLoadAll loads every workflow file, sub-workflows included: no errors, no
// warnings, and the conventions every example follows.
func TestLoadAll(t *testing.T) {
	reg := registry(t)
	for _, file := range yamlFiles(t) {
		t.Run(file, func(t *testing.T) {
			wf, err := spec.Load(file, reg)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			for _, w := range wf.Warnings {
				t.Errorf("warning: %v", w)
			}
			first, _, _ := strings.Cut(string(wf.Source), "\n")
			if !strings.HasPrefix(first, "# yaml-language-server: $schema=") || !strings.HasSuffix(first, "schema.json") {
				t.Errorf("first line is %q, want the yaml-language-server $schema comment", first)
			}
			if strings.TrimSpace(wf.Description) == "" {
				t.Error("no description")
			}
		})
	}
}

// run loads and runs a top-level example with a clean environment (env() sees only

const summarizeFinal = "Requests queued behind the lock, the connection pool of the checkout service filled up, " +
	"and new requests waited for a free connection until they timed out. The on-call engineer looked at the " +
	"checkout service first, since that was where the alert pointed, and only found the lock at 09:58 after " +
	"comparing the deploy log with the latency graph. To help urban bees, plant a variety of native flowers, " +
	"leave some bare, sunny soil for ground-nesting species, keep a few hollow stems standing over winter, and " +
	"avoid pesticides."

// examples are the top-level workflows and what each must produce. Every top-level
// file must have an entry (TestEveryExampleIsRun).
var examples = map[string]func(t *testing.T){
	"llm-summarize.yaml": checkLLMSummarize,
	"summarize.yaml": func(t *testing.T) {
		res := run(t, "summarize.yaml", nil, runtime.Options{}, nil)
		if diff := cmp.Diff([]string{"final_summary", "summaries", "words"}, res.Fields); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
		// Both routes are taken: the two documents over 2000 characters go long.
		type doc struct {
			Document string
			Route    string
			Words    int
		}
		var got []doc
		for _, s := range field(t, res, "summaries").([]any) {
			m := s.(map[string]any)
			got = append(got, doc{m["document"].(string), m["route"].(string), int(m["words"].(float64))})
			if m["summary"] == "" {
				t.Errorf("empty summary of %v", m["document"])
			}
		}
		want := []doc{
			{"data/docs/01-incident-postmortem.txt", "long", 437},
			{"data/docs/02-release-notes.txt", "short", 120},
			{"data/docs/03-customer-feedback.txt", "short", 152},
			{"data/docs/04-meeting-notes.txt", "short", 107},
			{"data/docs/05-field-guide-bees.txt", "short", 212},
			{"data/docs/06-onboarding-guide.txt", "long", 380},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("summaries (-want +got):\n%s", diff)
		}
		if got := field(t, res, "words"); got != 1408.0 {
			t.Errorf("words = %v, want 1408", got)
		}
		if got := field(t, res, "final_summary"); got != summarizeFinal {
			t.Errorf("final_summary =\n%v\nwant\n%v", got, summarizeFinal)
		}
	},

	"send-with-index.yaml": func(t *testing.T) {
		ev := &events{}
		res := run(t, "send-with-index.yaml", nil, runtime.Options{Observers: []runtime.Observer{ev}}, nil)
		wantOutput(t, res, `{
			"ordered": ["0: Lisbon", "1: Reykjavík", "2: Nairobi", "3: Kyoto", "4: Montevideo", "5: Tallinn", "6: Auckland", "7: Quebec"],
			"by_index": {
				"0": {"city": "Lisbon", "letters": 6}, "1": {"city": "Reykjavík", "letters": 9},
				"2": {"city": "Nairobi", "letters": 7}, "3": {"city": "Kyoto", "letters": 5},
				"4": {"city": "Montevideo", "letters": 10}, "5": {"city": "Tallinn", "letters": 7},
				"6": {"city": "Auckland", "letters": 8}, "7": {"city": "Quebec", "letters": 6}
			},
			"letters": 58
		}`)
		finished := 0
		for _, e := range ev.all {
			if e.Type == runtime.ItemFinished && e.Node == "orchestrator" {
				finished++
			}
		}
		if finished != 8 {
			t.Errorf("%d item.finished events, want 8", finished)
		}
	},

	"hierarchical.yaml": func(t *testing.T) {
		ev := &events{}
		res := run(t, "hierarchical.yaml", nil, runtime.Options{Observers: []runtime.Observer{ev}}, nil)
		// Chapter order, then section order within a chapter.
		wantOutput(t, res, `{
			"sections": [
				{"chapter": "Getting started", "section": "Installing", "paragraphs": 2, "words": 25,
				 "summary": "Check the installation with the version command."},
				{"chapter": "Getting started", "section": "A first workflow", "paragraphs": 3, "words": 41,
				 "summary": "The final state is printed as JSON."},
				{"chapter": "Fan-out", "section": "Maps", "paragraphs": 2, "words": 36,
				 "summary": "A map node runs one worker per item of a list."},
				{"chapter": "Operations", "section": "Retries", "paragraphs": 1, "words": 12,
				 "summary": "A node can retry failed attempts."},
				{"chapter": "Operations", "section": "Limits", "paragraphs": 2, "words": 28,
				 "summary": "The number of actions in flight is limited across the whole run."}
			],
			"paragraphs": 10,
			"words": 142
		}`)
		// The nested map's items have two-level paths: chapter/section.
		var nested []string
		for _, e := range ev.all {
			if e.Type == runtime.ItemFinished && e.Node == "sections_of_chapter" {
				nested = append(nested, e.Item)
			}
		}
		sort.Strings(nested)
		if diff := cmp.Diff([]string{"0/0", "0/1", "1/0", "2/0", "2/1"}, nested); diff != "" {
			t.Errorf("nested item paths (-want +got):\n%s", diff)
		}
	},

	"conditional-routing.yaml": func(t *testing.T) {
		res := run(t, "conditional-routing.yaml", nil, runtime.Options{}, nil)
		wantOutput(t, res, `{
			"queues": {"T-1": "billing", "T-2": "oncall", "T-3": "engineering", "T-5": "general",
			           "T-6": "oncall", "T-7": "general", "T-8": "engineering"},
			"paged": ["T-2", "T-6"],
			"handled": 7,
			"dropped": ["T-4"]
		}`)
	},

	"batch.yaml": func(t *testing.T) {
		res := run(t, "batch.yaml", nil, runtime.Options{}, nil)
		wantOutput(t, res, `{
			"batch_sizes": [5, 5, 2],
			"batch_totals": [646, 516, 498],
			"total": 1660,
			"byte_batch_sizes": [2, 2, 3],
			"digests": [
				"disk 91% full on db-2 | deploy 2.4.1 finished",
				"login failures spiked for tenant acme, 212 in five minutes | cache hit ratio back to 97%",
				"nightly backup took 41 minutes, 9 more than usual | cert renewed | queue depth normal"
			],
			"chunk_sizes": [3, 3, 2, 2, 2]
		}`)
	},

	"retry-errors.yaml": func(t *testing.T) {
		ev := &events{}
		res := run(t, "retry-errors.yaml", nil, runtime.Options{Observers: []runtime.Observer{ev}}, nil)
		wantOutput(t, res, `{
			"results": [
				{"job": 0, "via": "fallback"},
				{"job": 1, "via": "fetch", "attempts": 3},
				{"job": 2, "via": "fallback"},
				{"job": 3, "via": "fetch", "attempts": 2},
				{"job": 4, "via": "fetch", "attempts": 4},
				{"job": 5, "via": "fetch", "attempts": 5},
				{"job": 6, "via": "fallback"},
				{"job": 8, "via": "fetch", "attempts": 5},
				{"job": 9, "via": "fallback"}
			],
			"errors": [
				{"job": 0, "node": "fetch", "kind": "action", "attempts": 2, "message": "upstream returned 503"},
				{"job": 2, "node": "fetch", "kind": "action", "attempts": 2, "message": "upstream returned 503"},
				{"job": 6, "node": "fetch", "kind": "action", "attempts": 2, "message": "upstream returned 503"},
				{"job": 9, "node": "fetch", "kind": "action", "attempts": 2, "message": "upstream returned 503"}
			],
			"attempts": 33,
			"fallbacks": 4
		}`)
		// Job 7 failed outright and was tolerated by max_failures: 1; the four
		// errors on_error handled are reported as handled.
		type failure struct {
			Node, Item         string
			Attempts           int
			Tolerated, Handled bool
		}
		var got []failure
		for _, f := range res.Failures {
			got = append(got, failure{f.Node, f.Item, f.Attempts, f.Tolerated, f.Handled})
		}
		sort.Slice(got, func(i, j int) bool { return len(got[i].Item) < len(got[j].Item) || got[i].Item < got[j].Item })
		want := []failure{
			{"fetch", "0", 2, false, true}, {"fetch", "2", 2, false, true}, {"fetch", "6", 2, false, true},
			{"doomed", "7", 1, true, false}, {"fetch", "9", 2, false, true},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
		// Retries happened: connect retries jobs with job%3 > 0 (1+2+1+2+2 = 8 for
		// jobs 1, 2, 4, 5, 8), fetch retries its failed first attempts.
		retries := 0
		for _, e := range ev.all {
			if e.Type == runtime.ItemRetrying && e.Node == "connect" {
				retries++
			}
		}
		if retries != 8 {
			t.Errorf("%d retries of connect, want 8", retries)
		}
	},

	"adaptive-parallelism.yaml": func(t *testing.T) {
		for _, workers := range []string{"", "3"} {
			t.Run("MAX_WORKERS="+workers, func(t *testing.T) {
				ev := &events{}
				res := run(t, "adaptive-parallelism.yaml", nil, runtime.Options{Observers: []runtime.Observer{ev}},
					map[string]string{"MAX_WORKERS": workers})
				n := 4 // the default in the file
				if workers != "" {
					n = 3
				}
				wantOutput(t, res, fmt.Sprintf(`{"workers": %d, "done": 20, "slept_ms": 400}`, n))
				// Never more items in flight than the limit.
				inFlight, most := 0, 0
				sort.SliceStable(ev.all, func(i, j int) bool { return ev.all[i].Time.Before(ev.all[j].Time) })
				for _, e := range ev.all {
					switch e.Type {
					case runtime.ItemStarted:
						inFlight++
						most = max(most, inFlight)
					case runtime.ItemFinished:
						inFlight--
					}
				}
				if most > n || most < 2 {
					t.Errorf("at most %d items in flight, want 2..%d", most, n)
				}
			})
		}
	},

	"aggregation.yaml": func(t *testing.T) {
		res := run(t, "aggregation.yaml", nil, runtime.Options{}, nil)
		wantOutput(t, res, `{
			"revenue": 122.5,
			"largest": 61,
			"line_items": ["tea", "mug", "coffee", "coffee", "tea", "mug", "kettle", "tea"],
			"products": ["tea", "mug", "coffee", "kettle"],
			"customers": ["ana", "ben", "chloe"],
			"order_ids": ["A-100", "A-101", "A-102", "A-103", "A-104"],
			"last_order": {"ana": "A-102", "ben": "A-104", "chloe": "A-103"},
			"trail": "A-100 A-101 A-102 A-103 A-104 ",
			"top_product": "tea",
			"report_words": 7
		}`)
	},

	"statistics.yaml": func(t *testing.T) {
		res := run(t, "statistics.yaml", nil, runtime.Options{}, nil)
		out := plain(t, res.Output).(map[string]any)
		running := out["running"].(map[string]any)
		approx := map[string]float64{"stddev": out["stddev"].(float64), "running.mean": running["mean"].(float64)}
		delete(out, "stddev")
		delete(running, "mean")
		if diff := cmp.Diff(parse(t, `{
			"count": 12, "total": 1680, "minimum": 78, "maximum": 430, "mean": 140,
			"running": {"n": 12}, "slow": [430, 250]
		}`), out); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
		for name, want := range map[string]float64{"stddev": 97.83063596508678, "running.mean": 140} {
			if math.Abs(approx[name]-want) > 1e-9 {
				t.Errorf("%s = %v, want %v", name, approx[name], want)
			}
		}
	},

	"llm-offline.yaml": func(t *testing.T) {
		res := run(t, "llm-offline.yaml", nil, runtime.Options{}, nil)
		partials := []string{
			"Even when a document fits, models tend to pay less attention to the middle of a very long input, and a single huge request is slow and expensive to retry when it fails.",
			"Small chunks give the model little context, and their summaries repeat background that every chunk mentions.",
			"Each request should be retried with a growing delay, a single failed chunk should not discard the work done on the others, and the final step should run only when every chunk has either succeeded or been recorded as missing.",
			"Running the pipeline against it costs nothing, needs no network and gives the same answer every time, which makes it a good stand-in for tests and for trying out changes to the workflow itself.",
		}
		want := map[string]any{
			"summary":  partials[0] + " " + partials[2] + " " + partials[3],
			"partials": partials,
			"words":    467,
		}
		if diff := cmp.Diff(plain(t, want), plain(t, res.Output)); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
	},

	"progress.yaml": func(t *testing.T) {
		res := run(t, "progress.yaml", nil, runtime.Options{}, nil)
		// 1 + 2 + ... + 20000 = 20000 * 20001 / 2; floor(20000 / 7) multiples of 7.
		wantOutput(t, res, `{"items": 20000, "total": 200010000, "multiples_of_7": 2857, "last": 20000}`)
	},
}

// TestExamples runs every top-level example and checks its result.
func TestExamples(t *testing.T) {
	for _, file := range topLevel(t) {
		check, ok := examples[file]
		if !ok {
			t.Errorf("%s has no test: add it to examples", file)
			continue
		}
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			check(t)
		})
	}
}

func topLevel(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSummarizeGivenDocuments runs the summarize example on documents given as an
// input instead of files, one on each side of the 2000-character route.
func TestSummarizeGivenDocuments(t *testing.T) {
	long := strings.Repeat("Long documents take the long route. ", 60) // 2160 characters
	res := run(t, "summarize.yaml", map[string]any{"documents": []any{"Short and sweet. Nothing more.", long}},
		runtime.Options{}, nil)
	var routes []string
	for _, s := range field(t, res, "summaries").([]any) {
		m := s.(map[string]any)
		routes = append(routes, m["document"].(string)+"="+m["route"].(string))
	}
	if diff := cmp.Diff([]string{"document 0=short", "document 1=long"}, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if got := field(t, res, "words"); got != 5.0+360 {
		t.Errorf("words = %v, want 365", got)
	}
}

// TestSummarizeDeterministic runs the summarize example with 1, 3 and 64 workers:
// the output must be byte for byte the same.
func TestSummarizeDeterministic(t *testing.T) {
	var first []byte
	for _, n := range []int{1, 3, 64} {
		res := run(t, "summarize.yaml", nil, runtime.Options{MaxWorkers: n}, nil)
		got := outputJSON(t, res)
		if first == nil {
			first = got
			continue
		}
		if !bytes.Equal(first, got) {
			t.Errorf("--max-workers %d gave a different output:\n%s\nwant (--max-workers 1):\n%s", n, got, first)
		}
	}
	if !bytes.Contains(first, []byte(`"route":"long"`)) || !bytes.Contains(first, []byte(`"route":"short"`)) {
		t.Errorf("output does not take both routes:\n%s", first)
	}
}
