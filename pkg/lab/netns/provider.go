// Package netns is the embedded lab provider: each CNI's datapath rebuilt in
// network namespaces (design §4.1). Labs are found by their cnl- names, not
// by a state file.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/cgroup2"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/datapath"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/policymodel/kuberouter"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/proxies"
	"github.com/cnilab/cnilab/pkg/results"
)

// NamePrefix starts every namespace cnilab creates.
const NamePrefix = "cnl-"

// Provider builds labs in network namespaces.
type Provider struct {
	// Prefix selects the namespaces List and DownAll act on: NamePrefix
	// (every cnilab namespace) unless narrowed, e.g. to one run's.
	Prefix  string
	Caps    kernelcap.Set
	Runner  command.Runner
	Applier netplan.Applier
}

// New returns a provider for this kernel.
func New(caps kernelcap.Set, runner command.Runner) *Provider {
	return &Provider{Prefix: NamePrefix, Caps: caps, Runner: runner, Applier: netplan.Kernel{Log: func(format string, args ...any) {
		// Rare and worth seeing: why /run/netns was left as it is.
		fmt.Fprintf(os.Stderr, "cnilab: "+format+"\n", args...)
	}}}
}

var _ lab.Provider = (*Provider)(nil)

// Name implements lab.Provider.
func (*Provider) Name() string { return "netns" }

// owned is what Down needs.
type owned struct {
	plan   *netplan.Plan
	proxy  proxy.Proxy
	cgroup *cgroup2.Group
	shared *shared
	// policy is the kube-router policy model's controller, if installed.
	policy *kuberouter.Controller
}

// Up implements lab.Provider.
func (p *Provider) Up(ctx context.Context, s lab.Spec) (*lab.Instance, error) {
	planned, err := p.plan(s)
	if err != nil {
		return nil, err
	}
	if err := p.Applier.Apply(ctx, &planned.Plan); err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Def.Name, err)
	}
	in := p.instance(s.Def, planned, s.Workloads.Peers)
	if err := p.setupServices(ctx, in, s.Def, planned, s.Workloads); err != nil {
		_ = p.Down(context.Background(), in)
		return nil, fmt.Errorf("services %s: %w", s.Def.Name, err)
	}
	// After the service proxy: kube-router's jumps go first in the
	// built-in chains, ahead of the proxy's.
	if err := p.setupPolicy(ctx, in, s.Def, planned, s.Workloads); err != nil {
		_ = p.Down(context.Background(), in)
		return nil, fmt.Errorf("policy %s: %w", s.Def.Name, err)
	}
	return in, nil
}

// serviceVIP returns the i-th ClusterIP the lab hands out: .10, .11, ...
// of the service range, as a cluster's first Services get low addresses.
func serviceVIP(cidr netip.Prefix, i int) netip.Addr {
	a := cidr.Addr().As4()
	a[3] += byte(10 + i)
	return netip.AddrFrom4(a)
}

// setupServices starts the lab's service proxy on every node and programs
// one Service per server pod of the workloads' pairs (cross-node and
// same-node), per protocol on lab.ServicePort, so s-tests reach the server
// through the proxy.
func (p *Provider) setupServices(ctx context.Context, in *lab.Instance, def *config.Lab, planned *datapath.Lab, w lab.Workloads) error {
	name := def.Netns.Services
	if name == "" {
		return nil
	}
	svcCIDR, err := netip.ParsePrefix(def.Netns.ServiceCIDR)
	if err != nil {
		return err
	}
	o := in.Owned.(owned)
	t := proxy.Target{Runner: p.Runner, ClusterCIDR: planned.Spec.PodCIDR}
	for _, n := range planned.Nodes {
		t.Netns = append(t.Netns, netplan.NetnsPath(n.NS))
	}
	if name == "ebpf" || def.Netns.ServicesFallback == "ebpf" {
		root, _, err := cgroup2.Root()
		if err != nil {
			return err
		}
		cg, err := cgroup2.Create(root, datapath.Prefix(planned.Spec.RunID, def.Name)+"-clients")
		if err != nil {
			return err
		}
		o.cgroup = cg
		o.shared.cgroupFD = cg.FD()
		in.Owned = o
		t.CgroupDir = cg.Path
		// Traffic from outside the cgroup takes Cilium's per-packet path:
		// TC programs on every pod's host-side interface.
		for _, pod := range planned.Pods {
			t.PodHostIfaces = append(t.PodHostIfaces, proxy.HostIface{Netns: netplan.NetnsPath(planned.Nodes[pod.Node].NS), Name: pod.HostIf})
		}
	}
	px, note, err := proxies.New(name, t, def.Netns.ServicesFallback)
	if err != nil {
		return err
	}
	o.proxy = px
	in.Owned = o
	in.Proxy = px.Name()
	if note != "" {
		in.Notes = append(in.Notes, note)
	}
	if n, ok := px.(interface{ Notes() []string }); ok {
		in.Notes = append(in.Notes, n.Notes()...)
	}
	protos := w.ServiceProtocols
	if len(protos) == 0 {
		protos = []string{string(proxy.TCP), string(proxy.UDP)}
	}
	var svcs []proxy.Service
	in.ServiceAddrs = map[string]netip.AddrPort{}
	i := 0
	for _, pl := range []lab.Placement{lab.CrossNode, lab.SameNode} {
		pair, ok := in.Pairs[pl]
		if !ok || pair.Server == pair.Client {
			continue
		}
		short := strings.TrimSuffix(string(pl), "-node")
		vip := serviceVIP(svcCIDR, i)
		i++
		for _, proto := range protos {
			svcs = append(svcs, proxy.Service{Namespace: "cnilab", Name: "iperf3-" + short, PortName: proto, ClusterIP: vip,
				Port: lab.ServicePort, Protocol: proxy.Protocol(proto), Endpoints: []proxy.Endpoint{{IP: pair.Server.IP(), Port: lab.ServicePort}}})
			in.ServiceAddrs[lab.ServiceKey(pair.Server.Name(), proto)] = netip.AddrPortFrom(vip, lab.ServicePort)
		}
	}
	return px.Sync(ctx, svcs)
}

func (p *Provider) plan(s lab.Spec) (*datapath.Lab, error) {
	def := s.Def
	if def.Netns.Unavailable != "" {
		return nil, &lab.Unavailable{Reason: strings.TrimSpace(def.Netns.Unavailable)}
	}
	if why := p.Caps.Missing(def.Netns.Requires); why != "" {
		return nil, &lab.Unavailable{Reason: why}
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the netns provider needs root (it creates network namespaces)")
	}
	if s.Nodes == 0 {
		s.Nodes = 2
	}
	for _, pr := range s.Workloads.Peers {
		// Every peer sits beside the client: the one client pod serves
		// both placements here.
		if pr.Beside != benchPodName(lab.CrossNode, "client") && pr.Beside != benchPodName(lab.SameNode, "client") {
			return nil, fmt.Errorf("peer %s: the netns provider places peers beside the client only, not %q", pr.Key(), pr.Beside)
		}
	}
	if s.PodsPerNode == 0 {
		// A same-node pair needs a second pod on the client's node.
		s.PodsPerNode = 1
		if len(s.Workloads.Placements) == 0 || slices.Contains(s.Workloads.Placements, lab.SameNode) {
			s.PodsPerNode = 2
		}
	}
	// Peers are the last pods of the client's node (the plan is uniform,
	// so the other nodes get as many spare pods).
	s.PodsPerNode += len(s.Workloads.Peers)
	spec := datapath.Spec{RunID: s.RunID, Lab: def.Name, Model: def.Netns.Model, Mode: def.Netns.Mode,
		NodeMaskBits: def.Netns.NodeMaskBits, UnderlayMTU: s.UnderlayMTU, Nodes: s.Nodes, PodsPerNode: s.PodsPerNode}
	if def.Netns.PodCIDR != "" {
		pc, err := netip.ParsePrefix(def.Netns.PodCIDR)
		if err != nil {
			return nil, err
		}
		spec.PodCIDR = pc
	}
	planned, err := datapath.Plan(spec)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", def.Name, err)
	}
	return planned, nil
}

// instance is the planned lab as a lab.Instance. The last len(peers) pods
// of the client's node are the peers (in.Peers), outside in.Pods and the
// pairs.
func (p *Provider) instance(def *config.Lab, planned *datapath.Lab, peers []lab.Peer) *lab.Instance {
	sh := &shared{}
	o := owned{plan: &planned.Plan, shared: sh}
	in := &lab.Instance{
		Name: def.Name, CNI: def.CNI, Provider: p.Name(), Fidelity: results.Fidelity(def.Netns.Fidelity),
		Datapath: def.Netns.Model + "/" + def.Netns.Mode, Encap: planned.Encap, PodMTU: planned.PodMTU, RouteMTU: planned.RouteMTU,
		Notes: planned.Notes, Owned: o,
		NoFootprint: "no CNI agent runs in the netns datapath model: idle CPU and memory are the machine's",
	}
	if def.Netns.FidelityNote != "" {
		in.Notes = append(slices.Clone(in.Notes), "fidelity: "+def.Netns.FidelityNote)
	}
	for _, n := range planned.Nodes {
		ns := netplan.NetnsPath(n.NS)
		in.Nodes = append(in.Nodes, &Node{name: n.Name, ip: n.IP, netns: ns, exec: nsRunner{inner: p.Runner, netns: ns}})
	}
	cg := func() int { return sh.cgroupFD }
	var pods, onClientNode []*Pod
	for _, pd := range planned.Pods {
		ns := netplan.NetnsPath(pd.NS)
		pod := &Pod{name: pd.Name, ip: pd.IP, node: planned.Nodes[pd.Node].Name, index: pd.Node, mtu: planned.PodMTU, netns: ns,
			exec: nsRunner{inner: p.Runner, netns: ns, cgroupFD: cg}}
		pods = append(pods, pod)
		if pd.Node == 0 {
			onClientNode = append(onClientNode, pod)
		}
	}
	peerOf := map[*Pod]bool{}
	if len(peers) > 0 && len(onClientNode) > len(peers) {
		in.Peers = map[string]lab.Pod{}
		first := len(onClientNode) - len(peers)
		for i, pr := range peers {
			pd := onClientNode[first+i]
			in.Peers[pr.Key()] = pd
			peerOf[pd] = true
		}
	}
	var bench []*Pod
	for _, pod := range pods {
		if !peerOf[pod] {
			bench = append(bench, pod)
			in.Pods = append(in.Pods, pod)
		}
	}
	in.Pairs = pairs(bench)
	return in
}

// shared is state the lab's runners read after Up sets it.
type shared struct {
	// cgroupFD, when > 0, is the cgroup v2 pod processes start in so the
	// lab's socket-level service proxy sees them (eBPF socket-LB).
	cgroupFD int
}

// pairs picks client and servers: the client is the first pod of the first
// node; the cross-node server the first pod on another node, the same-node
// server another pod on the client's node (in the host baseline, the
// namespace one veth away from node 1). A lab without a second pod on the
// client's node has no same-node pair: client and server are never one
// namespace, whose loopback path no pod-to-pod path has.
func pairs(pods []*Pod) map[lab.Placement]lab.PodPair {
	out := map[lab.Placement]lab.PodPair{}
	if len(pods) == 0 {
		return out
	}
	client := pods[0]
	for _, p := range pods[1:] {
		pl := lab.SameNode
		if p.index != client.index {
			pl = lab.CrossNode
		}
		if _, done := out[pl]; !done {
			out[pl] = lab.PodPair{Client: client, Server: p}
		}
	}
	return out
}

// Attach finds a lab that `cnilab up` left running, from its namespace
// names alone: the node and pod counts come from the names, the underlay
// MTU from the first node's eth0, and the rest from the same deterministic
// plan, which must match what exists.
func (p *Provider) Attach(ctx context.Context, s lab.Spec) (*lab.Instance, error) {
	prefix := datapath.Prefix(s.RunID, s.Def.Name)
	names, err := netplan.ListNamespaces(prefix + "-")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no running lab %s in run %s", s.Def.Name, s.RunID)
	}
	nodeRE := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `-n(\d+)$`)
	podRE := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `-n1-p(\d+)$`)
	for _, n := range names {
		if m := nodeRE.FindStringSubmatch(n); m != nil {
			k, _ := strconv.Atoi(m[1])
			s.Nodes = max(s.Nodes, k)
		}
		if m := podRE.FindStringSubmatch(n); m != nil {
			k, _ := strconv.Atoi(m[1])
			s.PodsPerNode = max(s.PodsPerNode, k)
		}
	}
	// plan adds the peers' pods again.
	s.PodsPerNode -= len(s.Workloads.Peers)
	if s.PodsPerNode < 1 {
		return nil, fmt.Errorf("lab %s was built without the %d peer pods the scenarios ask for: bring it up again", s.Def.Name, len(s.Workloads.Peers))
	}
	mtu, err := linkMTU(prefix+"-n1", "eth0")
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", s.Def.Name, err)
	}
	s.UnderlayMTU = mtu
	planned, err := p.plan(s)
	if err != nil {
		return nil, err
	}
	for _, ns := range planned.Plan.Namespaces {
		if _, err := os.Stat(netplan.NetnsPath(ns)); err != nil {
			return nil, fmt.Errorf("lab %s is incomplete: %w", s.Def.Name, err)
		}
	}
	in := p.instance(s.Def, planned, s.Workloads.Peers)
	// The proxy's kernel state outlives `cnilab up` (rules live in the
	// namespaces) but a BPF program does not outlive its loader; either way
	// a fresh sync makes the lab's services what this definition says.
	if s.Def.Netns.Services == "ebpf" || s.Def.Netns.ServicesFallback == "ebpf" {
		if root, _, err := cgroup2.Root(); err == nil {
			_ = os.Remove(filepath.Join(root, datapath.Prefix(s.RunID, s.Def.Name)+"-clients"))
		}
	}
	if err := p.setupServices(ctx, in, s.Def, planned, s.Workloads); err != nil {
		return nil, fmt.Errorf("services %s: %w", s.Def.Name, err)
	}
	// Policies lived in the process that made them; the controller starts
	// from none and removes what an earlier one left.
	if err := p.setupPolicy(ctx, in, s.Def, planned, s.Workloads); err != nil {
		return nil, fmt.Errorf("policy %s: %w", s.Def.Name, err)
	}
	return in, nil
}

// Remove deletes whatever exists of the lab s plans, by the names Up
// would give it (a lab a killed run left half built), so Up can build it
// again. Nothing else is touched; a lab that does not exist is no error.
func (p *Provider) Remove(ctx context.Context, s lab.Spec) error {
	planned, err := p.plan(s)
	if lab.IsUnavailable(err) {
		return nil // never built here
	}
	if err != nil {
		return err
	}
	errs := []error{p.Applier.Destroy(ctx, &planned.Plan)}
	if root, _, err := cgroup2.Root(); err == nil {
		g := filepath.Join(root, datapath.Prefix(s.RunID, s.Def.Name)+"-clients")
		if _, err := os.Stat(g); err == nil {
			errs = append(errs, (&cgroup2.Group{Path: g}).Remove())
		}
	}
	return errors.Join(errs...)
}

func linkMTU(ns, dev string) (int, error) {
	var mtu int
	err := netplan.InNamespace(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mtu = ifi.MTU
		return nil
	})
	return mtu, err
}

// Down implements lab.Provider.
func (p *Provider) Down(ctx context.Context, in *lab.Instance) error {
	o, ok := in.Owned.(owned)
	if !ok {
		return fmt.Errorf("lab %s was not built by the netns provider", in.Name)
	}
	var errs []error
	if o.policy != nil {
		errs = append(errs, o.policy.Close(ctx))
	}
	// Netfilter proxies' state goes with the namespaces deleted below;
	// only a proxy holding programs or maps in this process needs Close.
	if ns, ok := o.proxy.(proxy.NamespaceScoped); o.proxy != nil && !(ok && ns.NamespaceScoped()) {
		errs = append(errs, o.proxy.Close(ctx))
	}
	if o.cgroup != nil {
		errs = append(errs, o.cgroup.Remove())
	}
	errs = append(errs, p.Applier.Destroy(ctx, o.plan))
	return errors.Join(errs...)
}

// List implements lab.Provider.
func (p *Provider) List(context.Context) ([]string, error) {
	if !strings.HasPrefix(p.Prefix, NamePrefix) {
		return nil, fmt.Errorf("prefix %q does not start with %q: refusing to touch namespaces cnilab did not make", p.Prefix, NamePrefix)
	}
	return netplan.ListNamespaces(p.Prefix)
}

// DownAll implements lab.Provider: every cnl- namespace goes, whoever made
// it. Deleting a namespace takes its devices, routes and rules with it, so
// nothing else can be left.
func (p *Provider) DownAll(ctx context.Context) ([]string, error) {
	names, err := p.List(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		if err := netplan.DeleteNamespace(n); err != nil {
			errs = append(errs, err)
		}
	}
	// Client cgroups of eBPF labs go too (their programs died with cnilab).
	if root, _, err := cgroup2.Root(); err == nil {
		groups, _ := filepath.Glob(filepath.Join(root, p.Prefix+"*"))
		for _, g := range groups {
			grp := &cgroup2.Group{Path: g}
			if err := grp.Remove(); err != nil {
				errs = append(errs, err)
			} else {
				names = append(names, "cgroup "+filepath.Base(g))
			}
		}
	}
	return names, errors.Join(errs...)
}

// Fidelity is what the lab definition claims for its model.
func (*Provider) Fidelity(def *config.Lab) results.Fidelity {
	return results.Fidelity(def.Netns.Fidelity)
}
