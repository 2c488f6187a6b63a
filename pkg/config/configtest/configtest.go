// Package configtest holds the property every definition parser's fuzz
// target checks: a rejected file is a config error that names the file and,
// when the input had a line, the line.
package configtest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cnilab/cnilab/pkg/config"
)

// Located fails t unless err (from parsing data as file) is a config error
// whose every entry names file and a line within data; an input with no
// content line (empty, blank or only comments) may give line 0.
func Located(t testing.TB, file string, data []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var es config.Errors
	var one config.Error
	switch {
	case errors.As(err, &es):
	case errors.As(err, &one):
		es = config.Errors{one}
	default:
		t.Fatalf("error is not a config error (exit 2 with file:line: field): %T %v", err, err)
	}
	if len(es) == 0 {
		t.Fatalf("empty config.Errors returned as an error")
	}
	lines := config.Lines(data)
	content := hasContentLine(data)
	for _, e := range es {
		if e.File != file {
			t.Errorf("error names file %q, want %q: %v", e.File, file, e)
		}
		if e.Line < 0 || e.Line > lines {
			t.Errorf("error names line %d of a %d-line input: %v", e.Line, lines, e)
		}
		if e.Line == 0 && content {
			t.Errorf("error carries no line although the input has content: %v", e)
		}
	}
}

// hasContentLine reports whether a line of data is neither blank nor a
// YAML comment.
func hasContentLine(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return true
		}
	}
	return false
}
