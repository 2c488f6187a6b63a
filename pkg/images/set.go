// Package images builds the image set a kind lab needs, offline: the node
// image cnilab/kind-node (a kind-compatible Debian bookworm node with the
// seven Kubernetes component images already imported into its containerd),
// the flannel image and the bench image. Root filesystems come from
// mmdebstrap, Go binaries from package gobuild; images are assembled with
// go-containerregistry and handed to `docker load`.
//
// It also names the pinned upstream set used where public registries are
// reachable (`--images upstream`).
package images

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images/gobuild"
)

// Versions of what the offline set contains: those package gobuild builds.
const (
	KubernetesVersion = gobuild.KubernetesVersion
	EtcdTag           = gobuild.EtcdTag
	CoreDNSVersion    = gobuild.CoreDNSVersion
	PauseTag          = gobuild.PauseTag
	FlannelVersion    = gobuild.FlannelVersion
	KubeRouterVersion = gobuild.KubeRouterVersion
	// BenchTag names the bench image by the probe protocol its cnilab
	// binary speaks, so the kind provider can name it without building it;
	// the content label tells a stale image from a current one.
	BenchTag = "probe-v2"
)

// Image names of the offline set.
const (
	NodeImage    = "cnilab/kind-node:" + KubernetesVersion
	FlannelImage = "cnilab/flannel:" + FlannelVersion
	BenchImage   = "cnilab/bench:" + BenchTag
	// KubeRouterImage is kube-router for cnilab's charts/kube-router.
	KubeRouterImage = "cnilab/kube-router:" + KubeRouterVersion
	// nodeBaseImage is the node image without the preloaded component
	// images; the preload step runs it once to fill containerd's store.
	nodeBaseImage = "cnilab/kind-node-base:" + KubernetesVersion
)

// ContentLabel is the image label carrying the sha256 of everything an image
// was built from; an image whose label matches is not rebuilt.
const ContentLabel = "org.cnilab.content"

// Component image references, exactly as `kubeadm config images list
// --kubernetes-version v1.34.4` prints them (kind-offline.md §6).
var (
	APIServerImage         = "registry.k8s.io/kube-apiserver:" + KubernetesVersion
	ControllerManagerImage = "registry.k8s.io/kube-controller-manager:" + KubernetesVersion
	SchedulerImage         = "registry.k8s.io/kube-scheduler:" + KubernetesVersion
	ProxyImage             = "registry.k8s.io/kube-proxy:" + KubernetesVersion
	CoreDNSImage           = "registry.k8s.io/coredns/coredns:" + CoreDNSVersion
	PauseImage             = "registry.k8s.io/pause:" + PauseTag
	EtcdImage              = "registry.k8s.io/etcd:" + EtcdTag
)

// Source says where a set's images come from.
type Source string

const (
	// SourceOffline is built here from Debian packages and Go modules.
	SourceOffline Source = "offline"
	// SourceUpstream is pulled from public registries at pinned versions.
	SourceUpstream Source = "upstream"
)

// Set is the images a kind lab runs.
type Set struct {
	Source Source
	// Node is the kind node image.
	Node string
	// Flannel is the image for both the flanneld container and the
	// install-cni-plugin init container (it holds /flannel and cp). Empty
	// in the upstream set: the chart's own defaults apply there.
	Flannel string
	// KubeRouter is the image of kube-router's agent and install-cni init
	// container. Empty in the upstream set: charts/kube-router's default
	// (the pinned upstream release image) applies there.
	KubeRouter string
	// Bench is the workload image: iperf3, busybox and cnilab (probe).
	Bench string
	// Cilium and CiliumOperator are the Cilium agent image (with clang-19
	// and the BPF sources) and the generic operator. Empty upstream.
	Cilium, CiliumOperator string
	// Notes are, per CNI, how the set's build of it differs from the
	// upstream release (stand-in modules, parts that cannot be built); a
	// lab on the set records them.
	Notes map[string][]string
	// Components are the images kubeadm needs; in the offline set they are
	// already inside the node image's containerd, not in the Docker store.
	Components []string
	// FlannelChartRepo and FlannelChartVersion locate the flannel chart
	// upstream. Offline, the chart comes from the flannel Go module at
	// FlannelVersion.
	FlannelChartRepo    string
	FlannelChartVersion string
}

// Offline returns the locally built set.
func Offline() Set {
	return Set{
		Source:              SourceOffline,
		Node:                NodeImage,
		Flannel:             FlannelImage,
		KubeRouter:          KubeRouterImage,
		Bench:               BenchImage,
		Cilium:              CiliumImage,
		CiliumOperator:      CiliumOperatorImage,
		Notes:               map[string][]string{"flannel": gobuild.FlannelNotes(), "cilium": gobuild.CiliumNotes()},
		Components:          componentRefs(),
		FlannelChartRepo:    FlannelChartRepo,
		FlannelChartVersion: FlannelVersion,
	}
}

func componentRefs() []string {
	return []string{APIServerImage, ControllerManagerImage, SchedulerImage, ProxyImage, CoreDNSImage, PauseImage, EtcdImage}
}

// CNIImages maps a lab's CNI name (config.Lab.CNI) to the set's image for
// it; a CNI that is not here has no image in this set.
func (s Set) CNIImages() map[string]string {
	out := map[string]string{}
	for cni, ref := range map[string]string{"flannel": s.Flannel, "kube-router": s.KubeRouter, "cilium": s.Cilium} {
		if ref != "" {
			out[cni] = ref
		}
	}
	return out
}

// Upstream pins.
const (
	// UpstreamNodeImage is the v1.34 node image published with kind v0.33.0.
	// Source: the kind v0.33.0 release notes' image list, as reproduced in a
	// kind v0.33.0 guide whose v1.37.0 entry
	// (sha256:a1ed56cf…80ae5) matches sigs.k8s.io/kind@v0.33.0
	// pkg/apis/config/defaults/image.go byte for byte. kind publishes
	// v1.34.11, not v1.34.4, for this release; a digest-pinned reference is
	// required because kind's tags are rebuilt per release.
	UpstreamNodeImage = "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d"
	// FlannelChartRepo is the chart repository named in the flannel README
	// and chart/kube-flannel/Chart.yaml `sources`; the chart version equals
	// the app version (Chart.yaml version: v0.28.10 in the v0.28.10 module).
	FlannelChartRepo = "https://flannel-io.github.io/flannel/"
)

// Upstream returns the pinned public set. Components are those the upstream
// node image already carries; Flannel is left to the chart's defaults
// (ghcr.io/flannel-io/flannel:v0.28.10 and flannel-cni-plugin:v1.9.1-flannel3
// per chart/kube-flannel/values.yaml at v0.28.10). Bench has no upstream:
// it is always built here.
func Upstream() Set {
	return Set{
		Source:              SourceUpstream,
		Node:                UpstreamNodeImage,
		Bench:               BenchImage,
		FlannelChartRepo:    FlannelChartRepo,
		FlannelChartVersion: FlannelVersion,
	}
}

// DockerImages are the images of s that must be in the local Docker store
// for a lab to start (components live inside the node image).
func (s Set) DockerImages() []string {
	var out []string
	for _, ref := range []string{s.Node, s.Flannel, s.KubeRouter, s.Bench, s.Cilium, s.CiliumOperator} {
		if ref != "" {
			out = append(out, ref)
		}
	}
	return out
}

// ErrMissing is wrapped by Present's error when images are absent.
var ErrMissing = errors.New("kind images not built: run `cnilab images build`")

// Present reports which images of the offline set are missing from the
// local Docker store; MissingError turns the list into the hint to run
// `cnilab images build`.
func Present(ctx context.Context, r command.Runner) (missing []string, err error) {
	return Offline().Missing(ctx, r)
}

// Missing reports which of the set's Docker images are not in the local
// Docker store. A nil error with an empty list means all are there. It fails
// only when Docker cannot be asked.
func (s Set) Missing(ctx context.Context, r command.Runner) (missing []string, err error) {
	for _, ref := range s.DockerImages() {
		info, err := Inspect(ctx, r, ref)
		if err != nil {
			return nil, err
		}
		if info == nil {
			missing = append(missing, ref)
		}
	}
	return missing, nil
}

// MissingError turns a Present result into the error a caller shows, or nil.
func MissingError(missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w (missing %s)", ErrMissing, strings.Join(missing, ", "))
}
