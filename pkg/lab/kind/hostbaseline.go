package kind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// HostNamespace holds the host baseline's hostNetwork bench pods, beside
// the CNI lab's own bench namespace in the same cluster.
const HostNamespace = "cnilab-host"

// hostBaselineState is a host baseline's handle: it lives in another lab's
// cluster and goes with it.
type hostBaselineState struct{ cluster string }

// HostBasePreference is the order in which a run's kind labs are chosen
// to carry the host baseline: the one whose node stack the CNI touches
// least. Flannel and kube-router leave the nodes' own traffic to kube-proxy's
// iptables rules (which match nothing node to node); Cilium attaches its
// BPF programs to the nodes' devices, which node-to-node traffic would
// cross.
var HostBasePreference = []string{"flannel", "kube-router"}

// ChooseHostBase picks the lab whose cluster carries the host baseline:
// the first of HostBasePreference that is up, else the first lab up.
func ChooseHostBase(up []*lab.Instance) *lab.Instance {
	var mine []*lab.Instance
	for _, in := range up {
		if _, ok := in.Owned.(*clusterState); ok {
			mine = append(mine, in)
		}
	}
	for _, cni := range HostBasePreference {
		for _, in := range mine {
			if in.CNI == cni {
				return in
			}
		}
	}
	if len(mine) > 0 {
		return mine[0]
	}
	return nil
}

// HostBaseline realises the host lab (no CNI: the physical limit) inside
// the cluster of one of the run's kind labs that are up (ChooseHostBase), so it costs no cluster of its own: a
// client/server pair of hostNetwork bench pods per placement on the same
// two workers the CNI's pods use (cross-node: first worker to second;
// same-node: both on the first). Their traffic leaves each node
// container's own stack onto the Docker network the pods' traffic
// crosses, with no CNI device, tunnel or BPF program in between; what
// remains of the base lab on that path is kube-proxy's iptables rules and
// conntrack, which every kind node has. Removing the base lab removes it.
func (p *Provider) HostBaseline(ctx context.Context, s lab.Spec, up []*lab.Instance) (*lab.Instance, error) {
	base := ChooseHostBase(up)
	if base == nil {
		return nil, errors.New("no kind lab of the run is up to carry the host baseline")
	}
	c := base.Owned.(*clusterState)
	restCfg, cs, err := labClients(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	workers := lab.WorkerNames(base.Nodes)
	b, err := hostBench(s, workers, p.Images.Bench, p.ReadyTimeout, *base.Probe)
	if err != nil {
		return nil, err
	}
	hc := helm.Client{Kubeconfig: c.kubeconfig, CacheDir: s.Dir}
	p.logf("kind host: hostNetwork bench pods in cluster %s (the %s lab's)", c.name, base.Name)
	start := time.Now()
	wl, err := b.Install(ctx, restCfg, cs, hc)
	if err != nil {
		return nil, err
	}
	in := &lab.Instance{
		Name: s.Def.Name, CNI: s.Def.CNI, Provider: p.Name(), Fidelity: results.Real,
		Datapath: "node to node over the Docker network, no CNI (hostNetwork pods)",
		Owned:    &hostBaselineState{cluster: c.name}, Probe: base.Probe,
		NoFootprint: "the host baseline runs no CNI: its pods share the " + base.Name + " lab's cluster",
		Nodes:       base.Nodes, Pairs: wl.Pairs,
	}
	for _, pd := range wl.Pods {
		in.Pods = append(in.Pods, pd)
	}
	pair := in.Pairs[lab.CrossNode]
	// The pods' addresses must be the workers' own: that is what makes
	// this the host path.
	for _, pd := range in.Pods {
		for _, n := range base.Nodes {
			if n.Name() == pd.NodeName() && n.IP() != pd.IP() {
				return nil, fmt.Errorf("host pod %s has %s, its node %s has %s: not on the host network", pd.Name(), pd.IP(), n.Name(), n.IP())
			}
		}
	}
	// A kind node's first NIC is eth0 on the Docker network.
	if res, err := pair.Client.Exec().Run(ctx, command.Cmd{Name: "cat", Args: []string{"/sys/class/net/eth0/mtu"}}); err == nil {
		if mtu, err := kube.ParseMTU(string(res.Stdout)); err == nil {
			in.PodMTU = mtu
		}
	}
	in.Notes = append(in.Notes, fmt.Sprintf("host baseline in kind cluster %s (the %s lab's): hostNetwork bench pods on %s, node to node over the Docker network; up in %.1f s",
		c.name, base.Name, strings.Join(workers, " and "), time.Since(start).Seconds()))
	return in, nil
}

// hostBench is the host baseline's bench install: the placements the run
// asks for (the host has no service proxy: no Services) on the two
// workers, hostNetwork, in its own namespace.
func hostBench(s lab.Spec, workers []string, image string, timeout time.Duration, pl probe.Launcher) (kube.Bench, error) {
	if len(workers) < 2 {
		return kube.Bench{}, fmt.Errorf("%d workers; cross-node pairs need 2", len(workers))
	}
	l, err := kube.NewLayout(lab.Workloads{Placements: s.Workloads.Placements}, workers[0], workers[1])
	if err != nil {
		return kube.Bench{}, err
	}
	return kube.Bench{Namespace: HostNamespace, Layout: l, ReadyTimeout: timeout, Probe: pl,
		Chart: kube.ChartOptions{Image: image, PullPolicy: "Never", HostNetwork: true, Labels: map[string]string{kube.RunLabel: s.RunID}}}, nil
}

// downHostBaseline is Down for a host baseline: nothing to remove, its
// pods go with the base lab's cluster.
func downHostBaseline(in *lab.Instance) (bool, error) {
	if _, ok := in.Owned.(*hostBaselineState); ok {
		return true, nil
	}
	return false, nil
}
