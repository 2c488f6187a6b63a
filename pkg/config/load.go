package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a definition file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Errors collects every problem found, so a user fixes them in one go.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// IsInvalid reports whether err is a definition error (exit code 2).
func IsInvalid(err error) bool {
	var es Errors
	var e Error
	return errors.As(err, &es) || errors.As(err, &e)
}

// doc is one parsed YAML file with its node tree, for line lookups.
type doc struct {
	file  string
	root  *yaml.Node
	lines int // the input's line count, as YAML counts lines
}

// line returns the line of the value at a key path ("netns", "pod_cidr"),
// or of the deepest key found.
func (d doc) line(keys ...string) int {
	// yaml.v3 places an implicit null (a value left out at the end of
	// the input) on the line after the last one.
	return min(d.nodeLine(keys...), d.lines)
}

func (d doc) nodeLine(keys ...string) int {
	n := d.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	last := n.Line
	for _, k := range keys {
		if n.Kind == yaml.SequenceNode {
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(n.Content) {
				return last
			}
			n = n.Content[i]
			last = n.Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			return last
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				last = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return last
		}
	}
	return last
}

// fieldAt is the dotted key path ("netns.pod_cidr", "tests.2") of the
// deepest value that starts on line, "" when none does: it names the field
// a type error is about.
func (d doc) fieldAt(line int) string {
	var best []string
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(slices.Clone(path), k.Value)
				if k.Line == line || v.Line == line {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := append(slices.Clone(path), strconv.Itoa(i))
				if c.Line == line && len(p) > len(best) {
					best = p
				}
				walk(c, p)
			}
		}
	}
	if d.root != nil {
		walk(d.root, nil)
	}
	return strings.Join(best, ".")
}

var yamlErrLine = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
var unknownField = regexp.MustCompile(`^field (\S+) not found in type`)

// decodeStrict decodes data into out, turning yaml's errors into Errors with
// file and line.
func decodeStrict(file string, data []byte, out any) (doc, error) {
	d := doc{file: file, root: &yaml.Node{}, lines: Lines(data)}
	if err := yaml.Unmarshal(data, d.root); err != nil {
		return d, Errors{syntaxError(file, data, err)}
	}
	if d.empty() {
		return d, Errors{{File: file, Line: firstContentLine(data), Msg: "no definition in the file (empty, or only comments)"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if err == nil {
		return d, nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return d, Errors{syntaxError(file, data, err)}
	}
	var es Errors
	for _, msg := range te.Errors {
		e := Error{File: file, Msg: msg}
		if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
			if f := unknownField.FindStringSubmatch(m[2]); f != nil {
				e.Field, e.Msg = f[1], "unknown field"
			} else {
				e.Field = d.fieldAt(e.Line)
			}
		}
		es = append(es, e)
	}
	return d, es
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxError is a YAML error with the line it is on. yaml.v3 leaves the
// line out for a problem on line 1 (its marks count from 0) and for bytes
// its reader rejects; those lines are found here.
func syntaxError(file string, data []byte, err error) Error {
	msg := err.Error()
	e := Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = msg[len(m[0]):]
	} else if off := badByte(data); off >= 0 && !isUTF16(data) {
		e.Line = lineAt(data, off)
	} else {
		e.Line = 1
	}
	if lines := Lines(data); e.Line > lines {
		e.Line = lines // an error at the end of input, after the last newline
	}
	return e
}

// badByte is the offset of the first byte YAML does not allow: invalid
// UTF-8, or a control character other than tab, newline and carriage
// return; -1 when there is none.
func badByte(data []byte) int {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		allowed := r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
			(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || r >= 0x10000
		if (r == utf8.RuneError && size == 1) || !allowed || (r == 0xfeff && off > 0) {
			return off
		}
		off += size
	}
	return -1
}

// Lines is the number of lines of a YAML input as YAML counts them: its
// text decoded (UTF-16 when it starts with that byte-order mark, as
// yaml.v3 reads it, else UTF-8), with LF, CR LF, a lone CR, NEL, LS and PS
// each ending a line.
func Lines(data []byte) int {
	if isUTF16(data) {
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xfe {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			} else {
				u = append(u, uint16(data[i+1])<<8|uint16(data[i]))
			}
		}
		data = []byte(string(utf16.Decode(u)))
	}
	return lineAt(data, len(data))
}

func isUTF16(data []byte) bool {
	return len(data) >= 2 && ((data[0] == 0xfe && data[1] == 0xff) || (data[0] == 0xff && data[1] == 0xfe))
}

// lineAt is the 1-based line of byte offset off in UTF-8 data.
func lineAt(data []byte, off int) int {
	line := 1
	for i := 0; i < off && i < len(data); i++ {
		switch {
		case data[i] == '\n':
			line++
		case data[i] == '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				line++
			}
		case data[i] == 0xc2 && i+1 < len(data) && data[i+1] == 0x85,
			data[i] == 0xe2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xa8 || data[i+2] == 0xa9):
			line++
		}
	}
	return line
}

// empty reports whether the document holds nothing: no node, or only the
// null a bare "---" stands for.
func (d doc) empty() bool {
	n := d.root
	if n == nil || n.Kind == 0 || (n.Kind == yaml.DocumentNode && len(n.Content) == 0) {
		return true
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		c := n.Content[0]
		return c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == ""
	}
	return false
}

// firstContentLine is the first line that is neither blank nor a comment,
// 0 when there is none.
func firstContentLine(data []byte) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return i + 1
		}
	}
	return 0
}

// Set is every definition cnilab knows.
type Set struct {
	Labs      map[string]*Lab
	Scenarios map[string]*Scenario
}

// LabNames returns the lab names sorted.
func (s *Set) LabNames() []string {
	var names []string
	for n := range s.Labs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ScenarioNames returns the scenario names sorted.
func (s *Set) ScenarioNames() []string {
	var names []string
	for n := range s.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load reads every *.yaml in labsDir and scenariosDir of fsys. Files whose
// name does not describe a lab or scenario (environments.yaml) are skipped
// by the scenario loader: they belong to the ranking.
func Load(labs fs.FS, labsPrefix string, scenarios fs.FS, scenariosPrefix string) (*Set, error) {
	set := &Set{Labs: map[string]*Lab{}, Scenarios: map[string]*Scenario{}}
	var errs Errors
	add := func(err error) {
		var es Errors
		var e Error
		switch {
		case errors.As(err, &es):
			errs = append(errs, es...)
		case errors.As(err, &e):
			errs = append(errs, e)
		default:
			errs = append(errs, Error{Msg: err.Error()})
		}
	}
	labFiles, err := fs.Glob(labs, "*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range labFiles {
		data, err := fs.ReadFile(labs, f)
		if err != nil {
			return nil, err
		}
		l, err := ParseLab(path.Join(labsPrefix, f), data)
		if err != nil {
			add(err)
			continue
		}
		if prev, dup := set.Labs[l.Name]; dup {
			add(Error{File: l.File, Field: "name", Msg: fmt.Sprintf("lab %q already defined in %s", l.Name, prev.File)})
			continue
		}
		set.Labs[l.Name] = l
	}
	scFiles, err := fs.Glob(scenarios, "*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range scFiles {
		if f == EnvironmentsFile {
			continue
		}
		data, err := fs.ReadFile(scenarios, f)
		if err != nil {
			return nil, err
		}
		s, err := ParseScenario(path.Join(scenariosPrefix, f), data)
		if err != nil {
			add(err)
			continue
		}
		set.Scenarios[s.Name] = s
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

// EnvironmentsFile holds the ranking's environment profiles; it lives with
// the scenarios but is read by the rank package.
const EnvironmentsFile = "environments.yaml"
