package spec

import (
	"bytes"
	"encoding/json"

	"github.com/flowrun/flowrun/action"
)

// SchemaID is the $id of the JSON Schema for workflow files.
const SchemaID = "https://raw.githubusercontent.com/flowrun/flowrun/main/schema.json"

// Schema returns the JSON Schema (draft 2020-12) for workflow files that use the
// registry's actions, as indented JSON. It is generated from the language
// description (lang.go) and the action declarations; each action's `with:` is checked
// through `if action == X then with: {...}`, so an editor's message names that
// action's own parameters.
func Schema(reg *action.Registry) []byte {
	root := objSchema(workflowDef)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "flowrun workflow"
	root["required"] = []string{"version", "nodes"}
	props := root["properties"].(schema)
	props["output"] = withDoc(anyOf(strSchema, workflowDef.field("output").schema), workflowDef.field("output").doc)

	caseObj := objSchema(caseDef)
	caseObj["required"] = []string{"to"}
	mapObj := objSchema(mapDef)
	mapObj["required"] = []string{"over"}
	mapObj["oneOf"] = []any{requires("to"), requires("route")}
	mapObj["not"] = requires("batch", "chunks")
	batchObj := objSchema(batchDef)
	batchObj["minProperties"] = 1 // max_items, max_bytes or both
	reducerObj := objSchema(reducerExprDef)
	reducerObj["required"] = []string{"expr"}
	typeEnum := schema{"enum": stringsToAny(typeNames)}
	// A field written as a mapping names its type; a required field gets its value
	// at run time, so it has no default.
	fieldObj := objSchema(stateFieldDef)
	fieldObj["required"] = []string{"type"}
	fieldObj["if"] = schema{"properties": schema{"required": schema{"const": true}}, "required": []string{"required"}}
	fieldObj["then"] = schema{"not": requires("default")}

	root["$defs"] = schema{
		"node":       nodeSchema(reg),
		"map":        mapObj,
		"batch":      batchObj,
		"case":       caseObj,
		"next":       oneOf(strSchema, schema{"type": "array", "minItems": 1, "items": ref("case")}),
		"retry":      objSchema(retryDef),
		"onError":    oneOf(schema{"enum": []any{"fail", "skip"}}, objSchema(onErrorDef)),
		"reducer":    oneOf(schema{"enum": stringsToAny(reducerNames)}, reducerObj),
		"stateField": anyOf(typeEnum, fieldObj),
		"type":       anyOf(typeEnum, objSchema(typeDef)),
		"limits":     objSchema(limitsDef),
		"rate":       withMin(objSchema(rateDef), 1),
		"budget":     withMin(objSchema(budgetDef), 1),
		"price":      withRequired(objSchema(priceDef), "input", "output"),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		panic(err) // the schema is built from maps of JSON types only
	}
	return buf.Bytes()
}

func withMin(s schema, n int) schema {
	s["minProperties"] = n
	return s
}

func withRequired(s schema, names ...string) schema {
	s["required"] = names
	return s
}

func (d *objDef) field(key string) fieldDef {
	for _, f := range d.fields {
		if f.key == key {
			return f
		}
	}
	panic("spec: no field " + key + " in " + d.name)
}

// requires is {required: names}. It also declares the names as properties, which
// changes nothing for validation but keeps Ajv's strictRequired mode content with a
// required list inside not, if, oneOf and anyOf.
func requires(names ...string) schema {
	props := schema{}
	for _, n := range names {
		props[n] = true
	}
	return schema{"required": names, "properties": props}
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func withDoc(s schema, doc string) schema {
	out := schema{}
	for k, v := range s {
		out[k] = v
	}
	if doc != "" {
		out["description"] = doc
	}
	return out
}

// objSchema is the schema of a mapping kind: its keys, documented, and no others.
func objSchema(d *objDef) schema {
	props := schema{}
	for _, f := range d.fields {
		props[f.key] = withDoc(f.schema, f.doc)
	}
	return schema{
		"type":                 "object",
		"description":          d.doc,
		"properties":           props,
		"additionalProperties": false,
	}
}

// nodeSchema adds to the node mapping: one kind at most, the keys each kind takes,
// and each action's parameters.
func nodeSchema(reg *action.Registry) schema {
	s := objSchema(nodeDef)
	props := s["properties"].(schema)
	props["action"] = withDoc(schema{"enum": stringsToAny(reg.Names())}, nodeDef.field("action").doc)
	var rules []any
	for i, a := range kindKeys {
		for _, b := range kindKeys[i+1:] {
			rules = append(rules, schema{"not": requires(a, b)})
		}
	}
	for _, kind := range []NodeKind{MapNode, ParallelNode, WorkflowNode} {
		allowed := stringsToAny(append([]string{kind.String()}, kindAllows[kind]...))
		rules = append(rules, schema{
			"if":   requires(kind.String()),
			"then": schema{"propertyNames": schema{"enum": allowed}},
		})
	}
	// A pass node (no kind key) takes only its keys, and does something.
	var kinds, passActs []any
	for _, k := range kindKeys {
		kinds = append(kinds, requires(k))
	}
	for _, k := range kindAllows[PassNode] {
		if k != "description" {
			passActs = append(passActs, requires(k))
		}
	}
	rules = append(rules, schema{
		"if": schema{"not": schema{"anyOf": kinds}},
		"then": schema{
			"propertyNames": schema{"enum": stringsToAny(kindAllows[PassNode])},
			"anyOf":         passActs,
		},
	})
	for _, a := range reg.Specs() {
		then := schema{"properties": schema{"with": anyOf(withSchema(a), templateSchema)}}
		if needsWith(a) {
			then["required"] = []string{"with"}
		}
		rules = append(rules, schema{
			"if": schema{
				"required":   []string{"action"},
				"properties": schema{"action": schema{"const": a.Name}},
			},
			"then": then,
		})
	}
	s["allOf"] = rules
	return s
}

// needsWith reports whether the action has a parameter that must be given.
func needsWith(a *action.Spec) bool {
	for _, p := range a.Params {
		if p.Required {
			return true
		}
	}
	for _, g := range a.OneOf {
		if g.Required {
			return true
		}
	}
	return false
}

// withSchema is the schema of one action's with: its parameters, typed; any value may
// also be a template computed at run time.
func withSchema(a *action.Spec) schema {
	props := schema{}
	var required []string
	for _, p := range a.Params {
		ps := withDoc(paramSchema(p), p.Doc)
		if p.Default != nil {
			ps["default"] = p.Default
		}
		props[p.Name] = ps
		if p.Required {
			required = append(required, p.Name)
		}
	}
	s := schema{
		"type":                 "object",
		"description":          "Parameters of " + a.Name + ": " + a.Summary,
		"properties":           props,
		"additionalProperties": false,
	}
	if required != nil {
		s["required"] = required
	}
	var groups []any
	for _, g := range a.OneOf {
		if g.Required {
			var alts []any
			for _, name := range g.Params {
				alts = append(alts, requires(name))
			}
			groups = append(groups, schema{"anyOf": alts})
		}
		for i, x := range g.Params {
			for _, y := range g.Params[i+1:] {
				groups = append(groups, schema{"not": requires(x, y)})
			}
		}
	}
	if groups != nil {
		s["allOf"] = groups
	}
	return s
}

func paramSchema(p action.Param) schema {
	var typed schema
	switch p.Type {
	case action.Duration:
		typed = durationSchema
	case action.Any:
		return schema{}
	case action.String:
		typed = schema{"type": "string"} // a template is a string too
	default:
		typed = schema{"type": string(p.Type)}
		if p.Type == action.Array && p.Items != "" && p.Items != action.Any && p.Items != action.Duration {
			typed["items"] = anyOf(schema{"type": string(p.Items)}, templateSchema)
		}
	}
	if len(p.Enum) > 0 {
		typed = schema{"enum": p.Enum}
	}
	if p.Type == action.String && len(p.Enum) == 0 {
		return typed
	}
	return anyOf(typed, templateSchema)
}
