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

// Known names, validated against.
var (
	Models     = []string{"none", "flannel", "calico", "kube-router", "cilium", "canal"}
	Proxies    = []string{"iptables", "nftables", "ebpf", "ipvs"}
	Placements = []string{"cross-node", "same-node"}
	Tests      = []string{"idle", "dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum", "drr", "dcrr", "srr", "scrr"}
	Kinds      = []string{"throughput", "services-scale", "latency"}
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
