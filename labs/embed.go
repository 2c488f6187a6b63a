// Package labs embeds the lab definitions (one YAML per CNI variant) so an
// installed cnilab binary works anywhere; --labs DIR points at other files.
package labs

import "embed"

// FS holds labs/*.yaml.
//
//go:embed *.yaml
var FS embed.FS
