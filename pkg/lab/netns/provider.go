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
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/cgroup2"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/datapath"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
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
	return &Provider{Prefix: NamePrefix, Caps: caps, Runner: runner, Applier: netplan.Kernel{}}
}

var _ lab.Provider = (*Provider)(nil)

// Name implements lab.Provider.
func (*Provider) Name() string { return "netns" }

// owned is what Down needs.
type owned struct {
	plan   *netplan.Plan
	proxy  proxy.Proxy
	cgroup *cgroup2.Group
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
	in := p.instance(s.Def, planned)
	if err := p.setupServices(ctx, in, s.Def, planned); err != nil {
		_ = p.Down(context.Background(), in)
		return nil, fmt.Errorf("services %s: %w", s.Def.Name, err)
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
// one Service per iperf3 server pod (cross-node and same-node), TCP and UDP
// on lab.ServicePort, so s-tests reach the server through the proxy.
func (p *Provider) setupServices(ctx context.Context, in *lab.Instance, def *config.Lab, planned *datapath.Lab) error {
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
	for _, n := range in.Nodes {
		t.Netns = append(t.Netns, n.Netns)
	}
	if name == "ebpf" || def.Netns.ServicesFallback == "ebpf" {
		root, _, err := cgroup2.Root()
		if err != nil {
			return err
		}
		o.cgroup, err = cgroup2.Create(root, datapath.Prefix(planned.Spec.RunID, def.Name)+"-clients")
		if err != nil {
			return err
		}
		in.Owned = o
		t.CgroupDir = o.cgroup.Path
		in.ClientCgroupFD = o.cgroup.FD()
		// Traffic from outside the cgroup takes Cilium's per-packet path:
		// TC programs on every pod's host-side interface.
		for _, pod := range planned.Pods {
			t.PodHostIfaces = append(t.PodHostIfaces, proxy.HostIface{Netns: in.Nodes[pod.Node].Netns, Name: pod.HostIf})
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
	var svcs []proxy.Service
	in.ServiceAddrs = map[string]netip.AddrPort{}
	client := in.Pods[0]
	i := 0
	for _, pod := range in.Pods[1:] {
		placement := "same"
		if pod.Node != client.Node {
			placement = "cross"
		}
		if _, done := in.ServiceAddrs[lab.ServiceKey(placement, "tcp")]; done {
			continue
		}
		vip := serviceVIP(svcCIDR, i)
		i++
		for _, proto := range []proxy.Protocol{proxy.TCP, proxy.UDP} {
			svcs = append(svcs, proxy.Service{Namespace: "cnilab", Name: "iperf3-" + placement, PortName: string(proto), ClusterIP: vip,
				Port: lab.ServicePort, Protocol: proto, Endpoints: []proxy.Endpoint{{IP: pod.IP, Port: lab.ServicePort}}})
			addr := netip.AddrPortFrom(vip, lab.ServicePort)
			in.ServiceAddrs[lab.ServiceKey(placement, string(proto))] = addr
			in.ServiceAddrs[lab.ServiceKey(pod.Name, string(proto))] = addr
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

func (p *Provider) instance(def *config.Lab, planned *datapath.Lab) *lab.Instance {
	in := &lab.Instance{
		Name: def.Name, CNI: def.CNI, Provider: p.Name(), Fidelity: results.Fidelity(def.Netns.Fidelity),
		Datapath: def.Netns.Model + "/" + def.Netns.Mode, Encap: planned.Encap, PodMTU: planned.PodMTU, RouteMTU: planned.RouteMTU,
		Notes: planned.Notes, Runner: p.Runner, Owned: owned{plan: &planned.Plan},
		NoFootprint: "no CNI agent runs in the netns datapath model: idle CPU and memory are the machine's",
	}
	for _, n := range planned.Nodes {
		in.Nodes = append(in.Nodes, lab.Node{Name: n.Name, IP: n.IP, Netns: netplan.NetnsPath(n.NS)})
	}
	for _, pd := range planned.Pods {
		in.Pods = append(in.Pods, lab.Pod{Name: pd.Name, Node: pd.Node, IP: pd.IP, Netns: netplan.NetnsPath(pd.NS), MTU: planned.PodMTU})
	}
	return in
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
	in := p.instance(s.Def, planned)
	// The proxy's kernel state outlives `cnilab up` (rules live in the
	// namespaces) but a BPF program does not outlive its loader; either way
	// a fresh sync makes the lab's services what this definition says.
	if s.Def.Netns.Services == "ebpf" || s.Def.Netns.ServicesFallback == "ebpf" {
		if root, _, err := cgroup2.Root(); err == nil {
			_ = os.Remove(filepath.Join(root, datapath.Prefix(s.RunID, s.Def.Name)+"-clients"))
		}
	}
	if err := p.setupServices(ctx, in, s.Def, planned); err != nil {
		return nil, fmt.Errorf("services %s: %w", s.Def.Name, err)
	}
	return in, nil
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
