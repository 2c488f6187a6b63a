// Package config loads cnilab's definition files (labs/*.yaml and
// scenarios/*.yaml) strictly: unknown fields, bad CIDRs, overlapping subnets
// and unknown names are errors that name the file, line and field, and all
// defaults are applied here, in one place.
package config

import (
	"github.com/cnilab/cnilab/pkg/facts"
)

// Lab is one labs/*.yaml file: one CNI variant.
type Lab struct {
	// Name is the lab (variant) name, e.g. "flannel" or "calico-vxlan".
	Name string `yaml:"name"`
	// CNI is the CNI project the variant belongs to.
	CNI         string             `yaml:"cni"`
	Description string             `yaml:"description"`
	Version     string             `yaml:"version,omitempty"`
	Facts       facts.Capabilities `yaml:"facts,omitempty"`
	Netns       NetnsModel         `yaml:"netns"`
	// Kind is how the kind provider builds the lab with the real CNI; nil
	// means the lab has no kind recipe yet.
	Kind *KindLab `yaml:"kind,omitempty"`

	// File is where the definition came from (set by the loader).
	File string `yaml:"-"`
}

// NetnsModel is how the netns provider rebuilds the CNI's datapath.
type NetnsModel struct {
	// Model names the datapath builder: none (host baseline), flannel,
	// calico, kube-router, cilium, canal; empty with Unavailable set when
	// the design cannot be rebuilt on a plain kernel.
	Model string `yaml:"model"`
	// Mode selects the builder's forwarding mode (vxlan, host-gw, bgp,
	// tunnel, native, ...). Empty means the CNI's default.
	Mode string `yaml:"mode,omitempty"`
	// PodCIDR is the cluster pod network.
	PodCIDR string `yaml:"pod_cidr,omitempty"`
	// NodeMaskBits is the size of each node's pod range (/24, or /26
	// blocks for Calico).
	NodeMaskBits int `yaml:"node_mask_bits,omitempty"`
	// ServiceCIDR is where ClusterIPs come from.
	ServiceCIDR string `yaml:"service_cidr,omitempty"`
	// Services is the service proxy: iptables, nftables, ebpf, ipvs.
	Services string `yaml:"services,omitempty"`
	// ServicesFallback is used, and recorded, when the kernel lacks what
	// Services needs (kube-router: ipvs -> iptables).
	ServicesFallback string `yaml:"services_fallback,omitempty"`
	// Fidelity of the model on a kernel that has every feature it needs.
	Fidelity string `yaml:"fidelity,omitempty"`
	// Requires lists kernel capabilities the model needs (vxlan, bridge,
	// veth, ipip, ...). A missing one makes the lab unavailable with
	// "not reproducible here: CONFIG_X missing".
	Requires []string `yaml:"requires,omitempty"`
	// Unavailable, when set, says why this CNI is not modelled in netns at
	// all (OVS, Geneve, DPDK ...).
	Unavailable string `yaml:"unavailable,omitempty"`
	// Policy is how the model treats NetworkPolicy: "kube-router" enforces
	// it with kube-router's chains and ipsets (pkg/policymodel/kuberouter);
	// "none" is a CNI without a policy engine (policies are accepted and
	// nothing enforces them, as on a real cluster); empty: policy not
	// modelled, PolicyNote says why.
	Policy     string `yaml:"policy,omitempty"`
	PolicyNote string `yaml:"policy_note,omitempty"`
	// FidelityNote is the measured error behind the label, where the
	// kept fidelity run (reports/fidelity/summary.json) found the model
	// differing from the real CNI: recorded in the lab's notes.
	FidelityNote string `yaml:"fidelity_note,omitempty"`
}

// KindLab is a kind cluster running the real CNI: the cluster's networking
// (kind's v1alpha4 Networking) and the CNI's Helm chart.
type KindLab struct {
	// PodSubnet and ServiceSubnet are the cluster ranges (kind's defaults
	// 10.244.0.0/16 and 10.96.0.0/16).
	PodSubnet     string `yaml:"pod_subnet,omitempty"`
	ServiceSubnet string `yaml:"service_subnet,omitempty"`
	// KubeProxyMode is kind's kubeProxyMode: iptables (default), ipvs,
	// nftables, or none for kube-proxy-free CNIs.
	KubeProxyMode string `yaml:"kube_proxy_mode,omitempty"`
	// Proxy names the service proxy the CNI runs when KubeProxyMode is none
	// ("cilium ebpf").
	Proxy string `yaml:"proxy,omitempty"`
	// TunnelDevice is the overlay device the CNI creates on every node
	// (flannel.1); the provider reads its type, VNI and port from the nodes
	// and fails the lab when it is missing. Empty for routed datapaths.
	TunnelDevice string `yaml:"tunnel_device,omitempty"`
	// Datapath describes the forwarding mode for the labs table.
	Datapath string `yaml:"datapath,omitempty"`
	// BridgeDevice is the Linux bridge the CNI puts pods on (kube-bridge);
	// when set, the provider checks it exists on every worker and records it.
	BridgeDevice string `yaml:"bridge_device,omitempty"`
	// NodeRoutes says the CNI routes each node's podCIDR via that node's
	// address, with no overlay (kube-router's iBGP routes); the provider
	// checks every such route on every node and records the routes' proto.
	NodeRoutes bool `yaml:"node_routes,omitempty"`
	// Notes are recorded with the lab's results as they are (what this lab
	// leaves off here and why, advisories of the pinned version).
	Notes []string `yaml:"notes,omitempty"`
	CNI   KindCNI  `yaml:"cni"`
}

// KindCNI is how the CNI is installed, pinned: its upstream Helm chart
// (Chart, Repo, Version), a chart of cnilab's own (LocalChart) or upstream
// manifests (Manifests).
type KindCNI struct {
	// Chart is the chart's name in Repo.
	Chart   string `yaml:"chart"`
	Version string `yaml:"version"`
	// Repo is the chart repository used with --images upstream.
	Repo string `yaml:"repo"`
	// Module and ModuleDir locate the same chart inside the CNI's Go module
	// (module@Version, from the Go module proxy) for offline installs.
	Module    string `yaml:"module,omitempty"`
	ModuleDir string `yaml:"module_dir,omitempty"`
	// LocalChart names a chart embedded in cnilab (charts/<name>), used
	// with both image sources: for CNIs that publish no chart. Its values
	// carry the pinned upstream image; offline labs override it.
	LocalChart string `yaml:"local_chart,omitempty"`
	// Manifests are upstream manifest URLs (https, pinned by version in the
	// path), server-side applied in order, for CNIs installed that way.
	Manifests []string `yaml:"manifests,omitempty"`
	// NoOfflineSource says why the CNI has neither an offline chart nor an
	// offline image here ("sources not served"); required when the recipe
	// has no offline source (no module, no local_chart).
	NoOfflineSource string `yaml:"no_offline_source,omitempty"`
	// Release and Namespace of the Helm release; NamespaceLabels are set
	// when the namespace is created (pod-security for privileged agents).
	Release         string            `yaml:"release"`
	Namespace       string            `yaml:"namespace"`
	NamespaceLabels map[string]string `yaml:"namespace_labels,omitempty"`
	// Values are the chart values for the lab. A string value may name the
	// cluster it goes into with a Go template: {{ .Cluster }} (the kind
	// cluster name) or {{ .ControlPlane }} (its control-plane node, which is
	// also the API server's host name on kind's network).
	Values map[string]any `yaml:"values,omitempty"`
	// OfflineImageValues are the value paths (flannel.image) whose
	// repository and tag point at the offline CNI image.
	OfflineImageValues []string `yaml:"offline_image_values,omitempty"`
	// OfflineImages are whole image references set at value paths for
	// offline installs (value path → image), for charts that take one
	// string per image (Cilium's image.override). Each image is loaded into
	// the nodes; upstream, the chart's own images apply.
	OfflineImages map[string]string `yaml:"offline_images,omitempty"`
	// OfflineValues are merged over Values for offline installs only
	// (pull policies, digest switches that would break upstream pulls).
	OfflineValues map[string]any `yaml:"offline_values,omitempty"`
	// ReadyExec, when set, is asked in every pod of one of DaemonSets
	// before the CNI counts as ready: the agent's own status, not just its
	// readiness probe.
	ReadyExec *ReadyExec `yaml:"ready_exec,omitempty"`
	// DaemonSets are the CNI's agents, "name" in Namespace or
	// "namespace/name"; the first is the main agent; each must be fully
	// ready on every node before the lab counts as up.
	DaemonSets []string `yaml:"daemonsets"`
}

// ReadyExec is a command run in a container of every pod of a CNI
// DaemonSet; its output must pass Check (a parser cnilab knows, which also
// describes what it read) and match Expect when set.
type ReadyExec struct {
	DaemonSet string   `yaml:"daemonset"`
	Container string   `yaml:"container"`
	Command   []string `yaml:"command"`
	// Check names the output parser: one of ReadyChecks.
	Check string `yaml:"check,omitempty"`
	// Expect is a regular expression the output must match.
	Expect string `yaml:"expect,omitempty"`
}

// Scenario is one scenarios/*.yaml file.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Kind selects the scenario engine: throughput or services-scale.
	Kind string `yaml:"kind"`
	// Tests are the test ids, e.g. idle dts dtm dus dum sts stm sus sum.
	Tests []string `yaml:"tests"`
	// Placements: cross-node (default) and/or same-node.
	Placements []string `yaml:"placements,omitempty"`
	// Streams is the parallel stream count of the "m" tests.
	Streams  int                `yaml:"streams,omitempty"`
	Profiles map[string]Profile `yaml:"profiles"`
	// Scale parameters (services-scale only).
	Scale *ScaleParams `yaml:"scale,omitempty"`
	// Policy parameters (policy only).
	Policy *PolicyParams `yaml:"policy,omitempty"`

	File string `yaml:"-"`
}

// Profile is a named set of measurement settings (quick, full).
type Profile struct {
	DurationSeconds int `yaml:"duration_s"`
	OmitSeconds     int `yaml:"omit_s"`
	Repeats         int `yaml:"repeats"`
	// Placements overrides the scenario's placements for this profile.
	Placements []string `yaml:"placements,omitempty"`
	// Services overrides the scale sizes for this profile.
	Services []int `yaml:"services,omitempty"`
	// Transactions bounds each latency window (with duration_s).
	Transactions int `yaml:"transactions,omitempty"`
}

// ScaleParams parameterise the services-scale scenario.
type ScaleParams struct {
	Services         []int    `yaml:"services"`
	EndpointsPerSvc  int      `yaml:"endpoints_per_service"`
	Positions        []string `yaml:"positions"`
	Connects         int      `yaml:"connects"`
	Proxies          []string `yaml:"proxies"`
	RateSeconds      float64  `yaml:"rate_s,omitempty"`
	ConnectTimeoutMs int      `yaml:"connect_timeout_ms,omitempty"`
}

// PolicyParams parameterise the NetworkPolicy scenario: which matrix
// cases run, and the policy counts K of the cost curve.
type PolicyParams struct {
	Cases []string `yaml:"cases"`
	// Counts are the K of the cost part (0 = no policy at all).
	Counts []int `yaml:"counts"`
	// Connects bounds each first-packet latency window (with duration_s).
	Connects int `yaml:"connects,omitempty"`
	// ConvergeTimeoutSeconds bounds every wait for a verdict to hold.
	ConvergeTimeoutSeconds int `yaml:"converge_timeout_s,omitempty"`
}

// Known names, validated against.
var (
	Models  = []string{"none", "flannel", "calico", "kube-router", "cilium", "canal"}
	Proxies = []string{"iptables", "nftables", "ebpf", "ipvs"}
	// ReadyChecks are the agent status parsers a kind recipe's ready_exec
	// can name (package kind implements them).
	ReadyChecks = []string{"cilium-kube-proxy-replacement"}
	// KubeProxyModes are kind's kubeProxyMode values.
	KubeProxyModes = []string{"iptables", "ipvs", "nftables", "none"}
	Placements     = []string{"cross-node", "same-node"}
	Tests          = []string{"idle", "dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum", "drr", "dcrr", "srr", "scrr"}
	Kinds          = []string{"throughput", "services-scale", "latency", "policy"}
	// PolicyCases are the NetworkPolicy matrix cases cnilab knows
	// (package scenario/policy defines them).
	PolicyCases = []string{"baseline", "default-deny-ingress", "default-deny-egress", "allow-pod-selector", "allow-namespace-selector",
		"allow-port-tcp", "allow-port-udp", "ipblock-except", "policy-update", "established-under-deny"}
	// ModelModes lists the modes each builder accepts; the first is the
	// default.
	ModelModes = map[string][]string{
		"none":        {"underlay"},
		"flannel":     {"vxlan", "host-gw"},
		"calico":      {"bgp", "vxlan", "ipip"},
		"kube-router": {"routed"},
		"cilium":      {"tunnel", "native"},
		"canal":       {"vxlan"},
	}
	Capabilities = []string{"veth", "bridge", "vxlan", "ipip", "ipvs", "wireguard", "geneve", "openvswitch", "dummy", "nftables", "iptables", "bpf-cgroup", "bpf-tc", "br-netfilter"}
)
