package htmlreport

import (
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
)

// extraFields returns the JSON fields of v that are not in known, so the
// page shows what a newer pkg/rank or results schema adds (ties, the
// fidelity check) before this package learns to lay it out.
func extraFields(v any, known ...string) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range known {
		delete(m, k)
	}
	for k, raw := range m {
		if s := strings.TrimSpace(string(raw)); s == "null" || s == "[]" || s == "{}" || s == `""` || s == "false" {
			delete(m, k)
		}
	}
	return m, nil
}

// genericHTML lays out any JSON value: an array of objects as a table
// (one column per key), an object as a key/value table, scalars as text.
func genericHTML(raw json.RawMessage) template.HTML {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return template.HTML(template.HTMLEscapeString(string(raw)))
	}
	var b strings.Builder
	writeGeneric(&b, v, 0)
	return template.HTML(b.String())
}

func writeGeneric(b *strings.Builder, v any, depth int) {
	esc := template.HTMLEscapeString
	if depth > 4 {
		j, _ := json.Marshal(v)
		b.WriteString("<code>" + esc(string(j)) + "</code>")
		return
	}
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`<table class="generic">`)
		for _, k := range keys {
			b.WriteString("<tr><th>" + esc(k) + "</th><td>")
			writeGeneric(b, t[k], depth+1)
			b.WriteString("</td></tr>")
		}
		b.WriteString("</table>")
	case []any:
		var cols []string
		objects := len(t) > 0
		for _, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				objects = false
				break
			}
			for k := range m {
				if !slices.Contains(cols, k) {
					cols = append(cols, k)
				}
			}
		}
		if !objects {
			for i, e := range t {
				if i > 0 {
					b.WriteString(", ")
				}
				writeGeneric(b, e, depth+1)
			}
			return
		}
		sort.Strings(cols)
		b.WriteString(`<table class="generic"><tr>`)
		for _, c := range cols {
			b.WriteString("<th>" + esc(c) + "</th>")
		}
		b.WriteString("</tr>")
		for _, e := range t {
			m := e.(map[string]any)
			b.WriteString("<tr>")
			for _, c := range cols {
				b.WriteString("<td>")
				if x, ok := m[c]; ok {
					writeGeneric(b, x, depth+1)
				}
				b.WriteString("</td>")
			}
			b.WriteString("</tr>")
		}
		b.WriteString("</table>")
	case float64:
		b.WriteString(esc(num(t)))
	case nil:
	default:
		b.WriteString(esc(fmt.Sprint(t)))
	}
}
