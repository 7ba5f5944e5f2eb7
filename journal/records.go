package journal

import (
	"encoding/json"

	"github.com/flowrun/flowrun/value"
)

// NodeError is the error of a top-level node that on_error handled, as its record
// keeps it.
type NodeError struct {
	Kind     string         `json:"kind"`
	Message  string         `json:"message"`
	Attempts int            `json:"attempts"`
	Fields   map[string]any `json:"fields,omitempty"`
}

// Node is a finished top-level node: its output, or the error on_error handled.
type Node struct {
	Output map[string]any
	Error  *NodeError
}

// AppendNode appends the record of a finished top-level node with its output.
func (j *Journal) AppendNode(key string, output map[string]any) {
	b := append([]byte(`{"n":`), value.AppendString(nil, key)...)
	b = value.Append(append(b, `,"o":`...), output)
	j.shared.append(append(b, '}'), false)
}

// AppendNodeError appends the record of a finished top-level node whose error
// on_error handled.
func (j *Journal) AppendNodeError(key string, e *NodeError) {
	b := append([]byte(`{"n":`), value.AppendString(nil, key)...)
	enc, _ := json.Marshal(e)
	b = append(append(b, `,"e":`...), enc...)
	j.shared.append(append(b, '}'), false)
}

// AppendEnd appends the record of a run that finished with output, whose fields
// are in the given order.
func (j *Journal) AppendEnd(output map[string]any, fields []string) {
	b := value.Append([]byte(`{"t":"end","o":`), output)
	f, _ := json.Marshal(fields)
	b = append(append(b, `,"f":`...), f...)
	j.shared.append(append(b, '}'), false)
}
