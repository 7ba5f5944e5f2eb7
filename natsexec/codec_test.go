package natsexec

import (
	"testing"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/google/go-cmp/cmp"
)

// TestCodecRoundTrip: what a worker needs of a call survives the trip; the rate
// limits and budgets stay with the coordinator, which enforces them.
func TestCodecRoundTrip(t *testing.T) {
	call := &action.Call{Action: "llm.chat", Version: "2", Params: action.Params{"prompt": "hi", "n": 3, "list": []any{"a", 1.5}},
		RunID: "r1", Dir: "lib", Node: "ask", Item: "3/1", Attempt: 2, Key: "r1/@1:fan[3]", Pool: "gpu",
		Timeout: 1500 * time.Millisecond, Throttled: true,
		Limits: []string{"openai"}, Budgets: []action.Budget{{Scope: "r1/@1:fan", USD: 1}}}
	b := appendBatch(nil, &batch{V: Protocol, ID: "b1", Run: "r1", Tasks: []*task{{ID: "r1/@1:fan[3]/0/2", Hash: "h", Call: call}}})
	got, err := readBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	want := *call
	want.Limits, want.Budgets = nil, nil
	if diff := cmp.Diff(&want, got.Tasks[0].Call); diff != "" {
		t.Errorf("the call (-want +got):\n%s", diff)
	}
	if got.V != Protocol || got.ID != "b1" || got.Run != "r1" || got.Tasks[0].ID != "r1/@1:fan[3]/0/2" || got.Tasks[0].Hash != "h" {
		t.Errorf("the batch: %+v", got)
	}
	res := []*result{{ID: "x", Key: "k", Hash: "h", Worker: "w", Took: 1234 * time.Nanosecond, Output: map[string]any{"a": 1}},
		{ID: "y", Error: &wireError{Msg: "no", Kind: "rate_limited", Permanent: true, Fields: map[string]any{"retry_after": 2.5}}}}
	back, err := readResults(appendResults(nil, "b1", res))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range back {
		r.V = 0
	}
	if diff := cmp.Diff(res, back, cmp.AllowUnexported(result{}, wireError{})); diff != "" {
		t.Errorf("the results (-want +got):\n%s", diff)
	}
}
