// Package netns is the embedded lab provider: each CNI's datapath rebuilt in
// network namespaces (design §4.1). Labs are found by their cnl- names, not
// by a state file.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
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
	Caps    kernelcap.Set
	Runner  command.Runner
	Applier netplan.Applier
}

// New returns a provider for this kernel.
func New(caps kernelcap.Set, runner command.Runner) *Provider {
	return &Provider{Caps: caps, Runner: runner, Applier: netplan.Kernel{}}
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
	if err := p.Applier.Apply(ctx, &planned.Plan); err != nil {
		return nil, fmt.Errorf("build %s: %w", def.Name, err)
	}
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
	return in, nil
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
	return netplan.ListNamespaces(NamePrefix)
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
