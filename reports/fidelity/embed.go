// Package fidelity holds the kept fidelity summary (summary.json, written
// by `cnilab report --fidelity-summary`), embedded so that a ranking of a
// netns run can carry each model's measured error against the real CNI.
package fidelity

import _ "embed"

// Summary is summary.json as this binary was built with it.
//
//go:embed summary.json
var Summary []byte
