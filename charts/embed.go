// Package charts embeds cnilab's own Helm charts so an installed binary
// can deploy its workloads anywhere.
package charts

import "embed"

// FS holds the charts, one directory each (cnilab-bench, kube-router).
// "all:" keeps kube-router's _helpers.tpl, which go:embed would otherwise
// leave out for its leading underscore.
//
//go:embed cnilab-bench all:kube-router
var FS embed.FS

// Bench is the directory of the benchmark workloads chart in FS.
const Bench = "cnilab-bench"

// KubeRouter is the directory of cnilab's kube-router chart in FS (upstream
// publishes DaemonSet manifests, not a chart).
const KubeRouter = "kube-router"
