package natsexec

import (
	"fmt"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/value"
)

// The messages are JSON, written and read here by hand: encoding/json's
// reflection was a quarter of a coordinator's time. Values go through package
// value, so numbers keep the integer rule both ways.

// appendBatch writes a batch of tasks.
func appendBatch(b []byte, bt *batch) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(bt.V), 10)
	b = appendField(b, "id", bt.ID)
	b = appendField(b, "run", bt.Run)
	b = append(b, `,"tasks":[`...)
	for i, t := range bt.Tasks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = value.AppendString(b, t.ID)
		b = appendField(b, "hash", t.Hash)
		b = append(b, `,"call":`...)
		b = appendCall(b, t.Call)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendCall(b []byte, c *action.Call) []byte {
	b = append(b, `{"action":`...)
	b = value.AppendString(b, c.Action)
	for _, f := range [...]struct{ name, val string }{{"version", c.Version}, {"run_id", c.RunID}, {"dir", c.Dir},
		{"node", c.Node}, {"item", c.Item}, {"key", c.Key}, {"pool", c.Pool}} {
		if f.val != "" {
			b = appendField(b, f.name, f.val)
		}
	}
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(c.Attempt), 10)
	if c.Timeout > 0 {
		b = append(b, `,"timeout":`...)
		b = strconv.AppendInt(b, int64(c.Timeout), 10)
	}
	if c.Throttled { // the rest of the call's limits stay in the coordinator, which enforces them
		b = append(b, `,"throttled":true`...)
	}
	b = append(b, `,"params":`...)
	b = value.Append(b, map[string]any(c.Params))
	return append(b, '}')
}

func appendField(b []byte, name, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return value.AppendString(b, val)
}

// readBatch reads a batch of tasks.
func readBatch(data []byte) (*batch, error) {
	v, err := value.Decode(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a batch of tasks")
	}
	bt := &batch{V: intOf(m["v"]), ID: str(m["id"]), Run: str(m["run"])}
	tasks, _ := m["tasks"].([]any)
	for _, tv := range tasks {
		tm, _ := tv.(map[string]any)
		cm, _ := tm["call"].(map[string]any)
		t := &task{ID: str(tm["id"]), Hash: str(tm["hash"])}
		if cm != nil {
			params, _ := cm["params"].(map[string]any)
			t.Call = &action.Call{Action: str(cm["action"]), Version: str(cm["version"]), Params: params,
				RunID: str(cm["run_id"]), Dir: str(cm["dir"]), Node: str(cm["node"]), Item: str(cm["item"]),
				Attempt: intOf(cm["attempt"]), Key: str(cm["key"]), Pool: str(cm["pool"]),
				Timeout: time.Duration(intOf(cm["timeout"])), Throttled: cm["throttled"] == true}
		}
		bt.Tasks = append(bt.Tasks, t)
	}
	return bt, nil
}

// appendResults writes the results of a batch.
func appendResults(b []byte, batchID string, results []*result) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Protocol, 10)
	b = appendField(b, "batch", batchID)
	b = append(b, `,"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = value.AppendString(b, r.ID)
		b = appendField(b, "key", r.Key)
		b = appendField(b, "hash", r.Hash)
		b = appendField(b, "worker", r.Worker)
		b = append(b, `,"took_ns":`...)
		b = strconv.AppendInt(b, int64(r.Took), 10)
		if r.Error != nil {
			b = append(b, `,"error":{"msg":`...)
			b = value.AppendString(b, r.Error.Msg)
			if r.Error.Kind != "" {
				b = appendField(b, "kind", r.Error.Kind)
			}
			if r.Error.Permanent {
				b = append(b, `,"permanent":true`...)
			}
			if r.Error.Fields != nil {
				b = append(b, `,"fields":`...)
				b = value.Append(b, r.Error.Fields)
			}
			b = append(b, '}')
		} else {
			b = append(b, `,"output":`...)
			b = value.Append(b, r.Output)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// readResults reads the results of a batch.
func readResults(data []byte) ([]*result, error) {
	v, err := value.DecodeExact(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a batch of results")
	}
	list, _ := m["results"].([]any)
	out := make([]*result, 0, len(list))
	for _, rv := range list {
		rm, _ := rv.(map[string]any)
		r := &result{V: intOf(m["v"]), ID: str(rm["id"]), Key: str(rm["key"]), Hash: str(rm["hash"]), Worker: str(rm["worker"]),
			Took: time.Duration(intOf(rm["took_ns"]))}
		if em, ok := rm["error"].(map[string]any); ok {
			r.Error = &wireError{Msg: str(em["msg"]), Kind: str(em["kind"]), Permanent: em["permanent"] == true}
			r.Error.Fields, _ = em["fields"].(map[string]any)
		} else {
			r.Output, _ = rm["output"].(map[string]any)
		}
		out = append(out, r)
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func intOf(v any) int {
	n, _ := value.Int(v)
	return n
}
