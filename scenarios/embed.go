// Package scenarios embeds the scenario definitions and the ranking's
// environment profiles; --scenarios DIR points at other files.
package scenarios

import "embed"

// FS holds scenarios/*.yaml.
//
//go:embed *.yaml
var FS embed.FS
