// Package charts embeds cnilab's own Helm charts so an installed binary
// can deploy its workloads anywhere.
package charts

import "embed"

// FS holds the charts, one directory each (cnilab-bench).
//
//go:embed cnilab-bench
var FS embed.FS

// Bench is the directory of the benchmark workloads chart in FS.
const Bench = "cnilab-bench"
