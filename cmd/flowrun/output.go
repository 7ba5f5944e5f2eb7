package main

import (
	"bytes"
	"encoding/json"
	"io"

	"gopkg.in/yaml.v3"
)

// writeOutput prints a run's result with its fields in declaration order: JSON
// (indented, nested objects with sorted keys) or YAML.
func writeOutput(w io.Writer, format string, out map[string]any, fields []string) error {
	var b []byte
	var err error
	if format == "yaml" {
		b, err = orderedYAML(out, fields)
	} else {
		b, err = orderedJSON(out, fields)
	}
	if err != nil {
		return exitWith(exitFailed, err)
	}
	_, err = w.Write(b)
	return err
}

func orderedJSON(out map[string]any, fields []string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("{")
	for i, name := range fields {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  ")
		key, _ := json.Marshal(name)
		buf.Write(key)
		buf.WriteString(": ")
		val, err := marshalIndent(out[name], "  ")
		if err != nil {
			return nil, err
		}
		buf.Write(val)
	}
	if len(fields) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}

func marshalIndent(v any, prefix string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func orderedYAML(out map[string]any, fields []string) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range fields {
		var val yaml.Node
		if err := val.Encode(out[name]); err != nil {
			return nil, err
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &val)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
