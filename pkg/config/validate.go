package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FabricCIDR is the underlay subnet every netns lab uses for its nodes (the
// same range kind's docker network uses). Pod and service ranges must not
// overlap it.
var FabricCIDR = netip.MustParsePrefix("172.18.0.0/16")

// CNIs lists the CNI projects cnilab knows; "host" is the no-CNI baseline.
var CNIs = []string{"host", "flannel", "calico", "kube-router", "cilium", "canal", "antrea", "weave", "calico-vpp"}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// Default pod networks per builder: the CNI's documented defaults, except
// Cilium, whose 10.0.0.0/8 cluster pool would swallow the service range; a
// /16 of it behaves the same on the datapath.
var defaultPodCIDR = map[string]struct {
	cidr string
	bits int
}{
	"none":        {"", 0},
	"flannel":     {"10.244.0.0/16", 24},
	"canal":       {"10.244.0.0/16", 24},
	"kube-router": {"10.244.0.0/16", 24},
	"calico":      {"192.168.0.0/16", 26},
	"cilium":      {"10.0.0.0/16", 24},
}

const defaultServiceCIDR = "10.96.0.0/16"

// ParseLab decodes and validates one lab definition.
func ParseLab(file string, data []byte) (*Lab, error) {
	var l Lab
	d, err := decodeStrict(file, data, &l)
	if err != nil {
		return nil, err
	}
	l.File = file
	var errs Errors
	bad := func(msg string, keys ...string) {
		errs = append(errs, Error{File: file, Line: d.line(keys...), Field: strings.Join(keys, "."), Msg: msg})
	}
	if !nameRE.MatchString(l.Name) {
		bad(fmt.Sprintf("%q is not a valid lab name (lower case letters, digits and '-', at most 20, starting with a letter)", l.Name), "name")
	}
	if !slices.Contains(CNIs, l.CNI) {
		bad(fmt.Sprintf("unknown CNI %q (known: %s)", l.CNI, strings.Join(CNIs, ", ")), "cni")
	}
	validateKind(&l, bad)
	n := &l.Netns
	if n.Unavailable != "" {
		if n.Model != "" {
			bad("a lab that is unavailable in netns has no model", "netns", "model")
		}
		return finish(&l, errs)
	}
	if !slices.Contains(Models, n.Model) {
		bad(fmt.Sprintf("unknown model %q (known: %s)", n.Model, strings.Join(Models, ", ")), "netns", "model")
		return finish(&l, errs)
	}
	modes := ModelModes[n.Model]
	if n.Mode == "" {
		n.Mode = modes[0]
	} else if !slices.Contains(modes, n.Mode) {
		bad(fmt.Sprintf("unknown mode %q for model %s (known: %s)", n.Mode, n.Model, strings.Join(modes, ", ")), "netns", "mode")
	}
	def := defaultPodCIDR[n.Model]
	if n.PodCIDR == "" {
		n.PodCIDR = def.cidr
	}
	if n.NodeMaskBits == 0 {
		n.NodeMaskBits = def.bits
	}
	if n.ServiceCIDR == "" && n.Model != "none" {
		n.ServiceCIDR = defaultServiceCIDR
	}
	if n.Fidelity == "" {
		n.Fidelity = "faithful"
	} else if n.Fidelity != "faithful" && n.Fidelity != "approximate" {
		bad(fmt.Sprintf("unknown fidelity %q (faithful or approximate)", n.Fidelity), "netns", "fidelity")
	}
	var pod, svc netip.Prefix
	if n.PodCIDR != "" {
		p, err := parseV4Prefix(n.PodCIDR)
		if err != nil {
			bad(err.Error(), "netns", "pod_cidr")
		} else {
			pod = p
			if p.Overlaps(FabricCIDR) {
				bad(fmt.Sprintf("%s overlaps the lab fabric %s", p, FabricCIDR), "netns", "pod_cidr")
			}
			if n.NodeMaskBits <= p.Bits() || n.NodeMaskBits > 30 {
				bad(fmt.Sprintf("/%d must be longer than the pod network /%d and at most /30", n.NodeMaskBits, p.Bits()), "netns", "node_mask_bits")
			}
		}
	}
	if n.ServiceCIDR != "" {
		s, err := parseV4Prefix(n.ServiceCIDR)
		if err != nil {
			bad(err.Error(), "netns", "service_cidr")
		} else {
			svc = s
			if s.Overlaps(FabricCIDR) {
				bad(fmt.Sprintf("%s overlaps the lab fabric %s", s, FabricCIDR), "netns", "service_cidr")
			}
			if pod.IsValid() && s.Overlaps(pod) {
				bad(fmt.Sprintf("%s overlaps pod_cidr %s", s, pod), "netns", "service_cidr")
			}
		}
	}
	_ = svc
	if n.Services != "" && !slices.Contains(Proxies, n.Services) {
		bad(fmt.Sprintf("unknown service proxy %q (known: %s)", n.Services, strings.Join(Proxies, ", ")), "netns", "services")
	}
	if n.ServicesFallback != "" && !slices.Contains(Proxies, n.ServicesFallback) {
		bad(fmt.Sprintf("unknown service proxy %q (known: %s)", n.ServicesFallback, strings.Join(Proxies, ", ")), "netns", "services_fallback")
	}
	if n.Policy != "" && n.Policy != "kube-router" && n.Policy != "none" {
		bad(fmt.Sprintf("unknown policy engine %q (kube-router, none, or empty: not modelled)", n.Policy), "netns", "policy")
	}
	for i, r := range n.Requires {
		if !slices.Contains(Capabilities, r) {
			bad(fmt.Sprintf("unknown capability %q (known: %s)", r, strings.Join(Capabilities, ", ")), "netns", "requires", fmt.Sprint(i))
		}
	}
	return finish(&l, errs)
}

// Kind defaults: kind's own cluster ranges.
const (
	defaultKindPodSubnet     = "10.244.0.0/16"
	defaultKindServiceSubnet = "10.96.0.0/16"
)

// k8sNameRE is a Kubernetes object name (DNS-1123 label).
var k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// deviceNameRE is what Linux accepts as an interface name (IFNAMSIZ 16,
// no '/', no whitespace), narrowed to the usual characters.
var deviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)

// validateKindSource checks that the CNI comes from exactly one place (an
// upstream chart, a chart of cnilab's own, or upstream manifests) and that
// a recipe with no offline source says why.
func validateKindSource(c *KindCNI, bad func(string, ...string)) {
	if c.Version == "" {
		bad("required", "kind", "cni", "version")
	}
	switch {
	case c.LocalChart != "":
		for _, f := range []struct{ val, key string }{{c.Repo, "repo"}, {c.Module, "module"}, {strings.Join(c.Manifests, ""), "manifests"}} {
			if f.val != "" {
				bad("a local_chart install takes no "+f.key, "kind", "cni", f.key)
			}
		}
		if c.Chart != "" && c.Chart != c.LocalChart {
			bad(fmt.Sprintf("chart %q differs from local_chart %q", c.Chart, c.LocalChart), "kind", "cni", "chart")
		}
		if !k8sNameRE.MatchString(c.LocalChart) {
			bad(fmt.Sprintf("%q is not a chart name", c.LocalChart), "kind", "cni", "local_chart")
		}
		c.Chart = c.LocalChart
	case len(c.Manifests) > 0:
		for _, f := range []struct{ val, key string }{{c.Chart, "chart"}, {c.Repo, "repo"}, {c.Module, "module"}} {
			if f.val != "" {
				bad("a manifests install takes no "+f.key, "kind", "cni", f.key)
			}
		}
		for i, m := range c.Manifests {
			if !strings.HasPrefix(m, "https://") {
				bad(fmt.Sprintf("%q is not an https URL", m), "kind", "cni", "manifests", fmt.Sprint(i))
			}
		}
		if len(c.Values) > 0 || len(c.OfflineImageValues) > 0 {
			bad("manifests take no chart values", "kind", "cni", "values")
		}
	default:
		for _, f := range []struct{ val, key string }{{c.Chart, "chart"}, {c.Repo, "repo"}} {
			if f.val == "" {
				bad("required", "kind", "cni", f.key)
			}
		}
		if c.Repo != "" && !strings.HasPrefix(c.Repo, "https://") {
			bad(fmt.Sprintf("%q is not an https chart repository", c.Repo), "kind", "cni", "repo")
		}
		if (c.Module == "") != (c.ModuleDir == "") {
			bad("module and module_dir go together (the chart's directory inside the module)", "kind", "cni", "module")
		}
	}
	offline := c.Module != "" || c.LocalChart != ""
	if !offline && strings.TrimSpace(c.NoOfflineSource) == "" {
		bad("a recipe with no offline chart (module or local_chart) says why in no_offline_source", "kind", "cni", "no_offline_source")
	}
	if offline && c.NoOfflineSource != "" {
		bad("no_offline_source goes only with recipes that have no offline chart", "kind", "cni", "no_offline_source")
	}
}

// validateKind checks the kind section and applies its defaults.
func validateKind(l *Lab, bad func(string, ...string)) {
	k := l.Kind
	if k == nil {
		return
	}
	if k.PodSubnet == "" {
		k.PodSubnet = defaultKindPodSubnet
	}
	if k.ServiceSubnet == "" {
		k.ServiceSubnet = defaultKindServiceSubnet
	}
	if k.KubeProxyMode == "" {
		k.KubeProxyMode = "iptables"
	}
	pod, err := parseV4Prefix(k.PodSubnet)
	if err != nil {
		bad(err.Error(), "kind", "pod_subnet")
	} else if pod.Overlaps(FabricCIDR) {
		bad(fmt.Sprintf("%s overlaps the node network %s", pod, FabricCIDR), "kind", "pod_subnet")
	}
	svc, err := parseV4Prefix(k.ServiceSubnet)
	if err != nil {
		bad(err.Error(), "kind", "service_subnet")
	} else if svc.Overlaps(FabricCIDR) {
		bad(fmt.Sprintf("%s overlaps the node network %s", svc, FabricCIDR), "kind", "service_subnet")
	} else if pod.IsValid() && svc.Overlaps(pod) {
		bad(fmt.Sprintf("%s overlaps pod_subnet %s", svc, pod), "kind", "service_subnet")
	}
	if !slices.Contains(KubeProxyModes, k.KubeProxyMode) {
		bad(fmt.Sprintf("unknown kube-proxy mode %q (known: %s)", k.KubeProxyMode, strings.Join(KubeProxyModes, ", ")), "kind", "kube_proxy_mode")
	}
	if k.KubeProxyMode == "none" && k.Proxy == "" {
		bad("a lab without kube-proxy names the service proxy its CNI runs", "kind", "proxy")
	}
	if k.KubeProxyMode != "none" && k.Proxy != "" {
		bad("kube-proxy is the service proxy unless kube_proxy_mode is none", "kind", "proxy")
	}
	c := &k.CNI
	validateKindSource(c, bad)
	if c.Release == "" {
		c.Release = c.Chart
	}
	if len(c.Manifests) == 0 && !k8sNameRE.MatchString(c.Release) {
		bad(fmt.Sprintf("%q is not a release name", c.Release), "kind", "cni", "release")
	}
	if c.Namespace == "" {
		c.Namespace = "kube-system"
	}
	if !k8sNameRE.MatchString(c.Namespace) {
		bad(fmt.Sprintf("%q is not a namespace name", c.Namespace), "kind", "cni", "namespace")
	}
	if len(c.DaemonSets) == 0 {
		bad("name the CNI's agent DaemonSets: readiness waits for them on every node", "kind", "cni", "daemonsets")
	}
	for i, n := range k.Notes {
		if strings.TrimSpace(n) == "" {
			bad("empty note", "kind", "notes", fmt.Sprint(i))
		}
	}
	if k.BridgeDevice != "" && !deviceNameRE.MatchString(k.BridgeDevice) {
		bad(fmt.Sprintf("%q is not a network device name", k.BridgeDevice), "kind", "bridge_device")
	}
	if k.NodeRoutes && k.TunnelDevice != "" {
		bad("routes via node addresses and a tunnel device exclude each other", "kind", "node_routes")
	}
	for i, d := range c.DaemonSets {
		// "name" (in Namespace) or "namespace/name", for agents an operator
		// creates elsewhere (Calico's calico-system/calico-node).
		ns, name, scoped := strings.Cut(d, "/")
		if !scoped {
			ns, name = c.Namespace, d
		}
		if !k8sNameRE.MatchString(ns) || !k8sNameRE.MatchString(name) {
			bad(fmt.Sprintf("%q is not a DaemonSet name (name or namespace/name)", d), "kind", "cni", "daemonsets", fmt.Sprint(i))
		}
	}

	for i, p := range c.OfflineImageValues {
		if !valuePathRE.MatchString(p) {
			bad(fmt.Sprintf("%q is not a values path (a.b.c)", p), "kind", "cni", "offline_image_values", fmt.Sprint(i))
		}
	}
	for p, im := range c.OfflineImages {
		if !valuePathRE.MatchString(p) {
			bad(fmt.Sprintf("%q is not a values path (a.b.c)", p), "kind", "cni", "offline_images", p)
		}
		if _, tag, ok := strings.Cut(im, ":"); !ok || tag == "" || tag == "latest" || strings.Contains(im, "@") {
			bad(fmt.Sprintf("%q: an offline image is named repository:tag, tag pinned (not latest)", im), "kind", "cni", "offline_images", p)
		}
	}
	if e := c.ReadyExec; e != nil {
		if !slices.Contains(c.DaemonSets, e.DaemonSet) {
			bad(fmt.Sprintf("%q is not one of daemonsets", e.DaemonSet), "kind", "cni", "ready_exec", "daemonset")
		}
		if !k8sNameRE.MatchString(e.Container) {
			bad(fmt.Sprintf("%q is not a container name", e.Container), "kind", "cni", "ready_exec", "container")
		}
		if len(e.Command) == 0 || e.Command[0] == "" {
			bad("required", "kind", "cni", "ready_exec", "command")
		}
		if e.Check == "" && e.Expect == "" {
			bad("name a check or an expect pattern: a command that only has to run proves little", "kind", "cni", "ready_exec")
		}
		if e.Check != "" && !slices.Contains(ReadyChecks, e.Check) {
			bad(fmt.Sprintf("unknown check %q (known: %s)", e.Check, strings.Join(ReadyChecks, ", ")), "kind", "cni", "ready_exec", "check")
		}
		if _, err := regexp.Compile(e.Expect); err != nil {
			bad(fmt.Sprintf("expect: %v", err), "kind", "cni", "ready_exec", "expect")
		}
	}
}

var valuePathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

func finish[T any](v *T, errs Errors) (*T, error) {
	if len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

func parseV4Prefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR", s)
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%q: only IPv4 is modelled", s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// ParseScenario decodes and validates one scenario definition.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	var s Scenario
	d, err := decodeStrict(file, data, &s)
	if err != nil {
		return nil, err
	}
	s.File = file
	var errs Errors
	bad := func(msg string, keys ...string) {
		errs = append(errs, Error{File: file, Line: d.line(keys...), Field: strings.Join(keys, "."), Msg: msg})
	}
	if !nameRE.MatchString(s.Name) {
		bad(fmt.Sprintf("%q is not a valid scenario name", s.Name), "name")
	}
	if !slices.Contains(Kinds, s.Kind) {
		bad(fmt.Sprintf("unknown kind %q (known: %s)", s.Kind, strings.Join(Kinds, ", ")), "kind")
	}
	if (s.Kind == "throughput" || s.Kind == "latency") && len(s.Tests) == 0 {
		bad("a "+s.Kind+" scenario needs at least one test", "tests")
	}
	for i, t := range s.Tests {
		latencyTest := strings.HasSuffix(t, "rr")
		if slices.Contains(Tests, t) && ((s.Kind == "latency") != latencyTest) {
			bad(fmt.Sprintf("test %q does not belong in a %s scenario", t, s.Kind), "tests", fmt.Sprint(i))
		}
	}
	for i, t := range s.Tests {
		if !slices.Contains(Tests, t) {
			bad(fmt.Sprintf("unknown test %q (known: %s)", t, strings.Join(Tests, ", ")), "tests", fmt.Sprint(i))
		}
	}
	if len(s.Placements) == 0 {
		s.Placements = []string{"cross-node"}
	}
	checkPlacements := func(ps []string, keys ...string) {
		for i, p := range ps {
			if !slices.Contains(Placements, p) {
				bad(fmt.Sprintf("unknown placement %q (known: %s)", p, strings.Join(Placements, ", ")), append(keys, fmt.Sprint(i))...)
			}
		}
	}
	checkPlacements(s.Placements, "placements")
	if s.Streams == 0 {
		s.Streams = 8
	} else if s.Streams < 1 || s.Streams > 128 {
		bad(fmt.Sprintf("%d streams: must be 1..128", s.Streams), "streams")
	}
	if len(s.Profiles) == 0 {
		bad("at least one profile (quick, full) is needed", "profiles")
	}
	for name, p := range s.Profiles {
		if p.Repeats < 1 || p.Repeats > 100 {
			bad(fmt.Sprintf("%d repeats: must be 1..100", p.Repeats), "profiles", name, "repeats")
		}
		if p.Transactions < 0 || p.Transactions > 1_000_000 {
			bad(fmt.Sprintf("%d transactions: must be 0..1000000", p.Transactions), "profiles", name, "transactions")
		}
		if (s.Kind == "throughput" || s.Kind == "latency" || s.Kind == "policy") && (p.DurationSeconds < 1 || p.DurationSeconds > 3600) {
			bad(fmt.Sprintf("%d s: must be 1..3600", p.DurationSeconds), "profiles", name, "duration_s")
		}
		if p.OmitSeconds < 0 || p.OmitSeconds > 60 {
			bad(fmt.Sprintf("%d s: must be 0..60", p.OmitSeconds), "profiles", name, "omit_s")
		}
		checkPlacements(p.Placements, "profiles", name, "placements")
		for i, n := range p.Services {
			if n < 1 || n > 100000 {
				bad(fmt.Sprintf("%d services: must be 1..100000", n), "profiles", name, "services", fmt.Sprint(i))
			}
		}
	}
	if s.Scale != nil {
		for i, n := range s.Scale.Services {
			if n < 1 || n > 100000 {
				bad(fmt.Sprintf("%d services: must be 1..100000", n), "scale", "services", fmt.Sprint(i))
			}
		}
		for i, p := range s.Scale.Proxies {
			if !slices.Contains(Proxies, p) {
				bad(fmt.Sprintf("unknown service proxy %q", p), "scale", "proxies", fmt.Sprint(i))
			}
		}
		for i, p := range s.Scale.Positions {
			if p != "first" && p != "middle" && p != "last" {
				bad(fmt.Sprintf("unknown position %q (first, middle, last)", p), "scale", "positions", fmt.Sprint(i))
			}
		}
	} else if s.Kind == "services-scale" {
		bad("a services-scale scenario needs a scale section", "scale")
	}
	validatePolicy(&s, bad)
	return finish(&s, errs)
}

// validatePolicy checks the policy section and applies its defaults.
func validatePolicy(s *Scenario, bad func(string, ...string)) {
	p := s.Policy
	if p == nil {
		if s.Kind == "policy" {
			bad("a policy scenario needs a policy section", "policy")
		}
		return
	}
	if s.Kind != "policy" {
		bad("only a policy scenario has a policy section", "policy")
		return
	}
	if len(p.Cases) == 0 {
		bad("at least one case", "policy", "cases")
	}
	for i, c := range p.Cases {
		if !slices.Contains(PolicyCases, c) {
			bad(fmt.Sprintf("unknown case %q (known: %s)", c, strings.Join(PolicyCases, ", ")), "policy", "cases", fmt.Sprint(i))
		}
	}
	for i, k := range p.Counts {
		if k < 0 || k > 5000 {
			bad(fmt.Sprintf("%d policies: must be 0..5000", k), "policy", "counts", fmt.Sprint(i))
		}
	}
	if p.Connects == 0 {
		p.Connects = 500
	} else if p.Connects < 1 || p.Connects > 100000 {
		bad(fmt.Sprintf("%d connects: must be 1..100000", p.Connects), "policy", "connects")
	}
	if p.ConvergeTimeoutSeconds == 0 {
		p.ConvergeTimeoutSeconds = 30
	} else if p.ConvergeTimeoutSeconds < 1 || p.ConvergeTimeoutSeconds > 600 {
		bad(fmt.Sprintf("%d s: must be 1..600", p.ConvergeTimeoutSeconds), "policy", "converge_timeout_s")
	}
}

// IsPolicyTest reports whether id is a test the policy scenario records
// figures under: matrix (the lab's matrix) or k<K>-connect, k<K>-dts,
// k<K>-sts (the cost of K policies).
func IsPolicyTest(id string) bool {
	if id == "matrix" {
		return true
	}
	k, kind, ok := strings.Cut(strings.TrimPrefix(id, "k"), "-")
	if !ok || !strings.HasPrefix(id, "k") || (kind != "connect" && kind != "dts" && kind != "sts") {
		return false
	}
	n, err := strconv.Atoi(k)
	return err == nil && n >= 0 && n <= 5000
}
