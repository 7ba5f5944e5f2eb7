package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

const eventsWorkflow = `version: 1
state:
  done: {type: array, reducer: add}
  errors: {type: array, reducer: add}
nodes:
  prep:
    action: log
    with: {message: starting}
    next: outer
  outer:
    map: {over: "[0, 1, 2]", as: o, to: inner, with: {o: "${{ o }}"}, max_failures: 1}
    next: both
  inner:
    map: {over: "[0, 1]", as: i, to: work, with: {o: "${{ input.o }}", i: "${{ i }}"}}
  work:
    action: fail
    with: {times: "${{ input.o == 1 && input.i == 1 ? 1 : (input.o == 2 && input.i == 0 ? 9 : 0) }}"}
    retry: {max_attempts: 2, delay: 1ms}
    update: {done: "${{ [string(input.o) + '/' + string(input.i)] }}"}
  both:
    parallel: [left, sub]
  left:
    action: fail
    on_error:
      update: {errors: "${{ [error.kind] }}"}
  sub:
    workflow: ./sub.yaml
`

const eventsSub = `version: 1
state:
  n: {type: integer, reducer: sum}
nodes:
  fan:
    map: {over: "[1, 2]", to: add}
  add:
    update: {n: "${{ input.item }}"}
`

// TestEvents runs a workflow with nested maps, retries, a tolerated failure, a
// parallel node and a sub-workflow, and checks every event line against the schema
// in docs/events.md and the order docs/events.md promises.
func TestEvents(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ev.yaml"), []byte(eventsWorkflow), 0o644)
	os.WriteFile(filepath.Join(dir, "sub.yaml"), []byte(eventsSub), 0o644)
	events := filepath.Join(dir, "events.jsonl")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"flowrun", "run", filepath.Join(dir, "ev.yaml"), "--events", events, "--store", "none", "--run-id", "e1"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	schema := compileEventSchema(t)
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var evs []testEvent
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %d is not JSON: %q", i+1, line)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("line %d does not fit the schema: %v\n%s", i+1, err, line)
		}
		var ev testEvent
		json.Unmarshal([]byte(line), &ev)
		evs = append(evs, ev)
	}
	if evs[0].Type != "run.started" || evs[len(evs)-1].Type != "run.finished" || evs[len(evs)-1].Status != "succeeded" {
		t.Errorf("first %+v, last %+v", evs[0], evs[len(evs)-1])
	}
	// Per item: started, retrying..., then one finished or failed.
	state := map[string]string{} // map node + item → last event
	nodeOpen := map[string]int{}
	for i, ev := range evs {
		key := ev.Workflow + ":" + ev.Node + ":" + ev.Item
		switch ev.Type {
		case "node.started":
			nodeOpen[key]++
		case "node.finished":
			if nodeOpen[key] == 0 {
				t.Errorf("event %d: %s finished before it started", i, key)
			}
			nodeOpen[key]--
		case "item.started":
			if state[key] != "" {
				t.Errorf("event %d: item %s started twice", i, key)
			}
			state[key] = "started"
		case "item.retrying":
			parentKey := ev.Workflow + ":" + mapOf(evs, ev) + ":" + ev.Item
			if state[parentKey] != "started" {
				t.Errorf("event %d: item %s retrying while %q", i, parentKey, state[parentKey])
			}
		case "item.finished", "item.failed":
			if state[key] != "started" {
				t.Errorf("event %d: item %s ended while %q", i, key, state[key])
			}
			state[key] = ev.Type
		}
	}
	want := map[string]string{
		"ev:outer:0": "item.finished", "ev:outer:1": "item.finished", "ev:outer:2": "item.failed",
		"ev:inner:0/0": "item.finished", "ev:inner:0/1": "item.finished", "ev:inner:1/0": "item.finished",
		"ev:inner:1/1": "item.finished", "ev:inner:2/0": "item.failed", "ev:inner:2/1": "item.finished",
		"ev:both:0": "item.finished", "ev:both:1": "item.finished",
		"sub:fan:1/0": "item.finished", "sub:fan:1/1": "item.finished",
	}
	for k, v := range want {
		if state[k] != v {
			t.Errorf("item %s: %q, want %q", k, state[k], v)
		}
	}
	if len(state) != len(want) {
		t.Errorf("items seen: %v", state)
	}
	for k, n := range nodeOpen {
		if n != 0 {
			t.Errorf("node %s started %d more times than it finished", k, n)
		}
	}
	var sawParent, sawTolerated bool
	for _, ev := range evs {
		sawParent = sawParent || ev.Type == "node.started" && ev.Node == "inner" && ev.Parent == "outer"
		sawTolerated = sawTolerated || ev.Type == "item.failed" && ev.Node == "outer" && ev.Tolerated
	}
	if !sawParent || !sawTolerated {
		t.Errorf("nested map's parent seen: %v; tolerated failure seen: %v", sawParent, sawTolerated)
	}
}

// testEvent is the part of an event line the test reads.
type testEvent struct {
	Type      string `json:"type"`
	Workflow  string `json:"workflow"`
	Node      string `json:"node"`
	Item      string `json:"item"`
	Parent    string `json:"parent"`
	Status    string `json:"status"`
	Tolerated bool   `json:"tolerated"`
}

// mapOf finds the map whose item an item.retrying event (which names the node that
// failed) belongs to: the map that started that item.
func mapOf(evs []testEvent, ev testEvent) string {
	for _, e := range evs {
		if e.Type == "item.started" && e.Item == ev.Item && e.Workflow == ev.Workflow {
			return e.Node
		}
	}
	return ""
}

// compileEventSchema compiles the JSON Schema in docs/events.md.
func compileEventSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/events.md has no json block")
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource("events.schema.json", bytes.NewReader(m[1])); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("events.schema.json")
	if err != nil {
		t.Fatalf("the schema in docs/events.md: %v", err)
	}
	return s
}
