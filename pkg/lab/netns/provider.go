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
	"regexp"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/datapath"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
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
	plan *netplan.Plan
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
	return p.instance(s.Def, planned), nil
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
	return p.instance(s.Def, planned), nil
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
	return p.Applier.Destroy(ctx, o.plan)
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
	return names, errors.Join(errs...)
}
