package kind

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// HostRelease is the bench chart's release holding the host baseline's
// hostNetwork pods, beside the CNI lab's own bench release.
const HostRelease = "cnilab-host"

// hostPodPrefix names the host baseline's pods (host-cross-node-client).
const hostPodPrefix = "host-"

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
	restCfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", c.kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	var workers []string
	for _, n := range base.Nodes {
		if n.Role() == lab.RoleWorker {
			workers = append(workers, n.Name())
		}
	}
	slices.Sort(workers)
	l, values, err := hostValues(s.Workloads.Placements, workers, p.Images.Bench)
	if err != nil {
		return nil, err
	}
	ch, err := helm.LoadFS(charts.FS, charts.Bench)
	if err != nil {
		return nil, err
	}
	hc := helm.Client{Kubeconfig: c.kubeconfig, CacheDir: s.Dir}
	p.logf("kind host: hostNetwork bench pods in cluster %s (the %s lab's)", c.name, base.Name)
	start := time.Now()
	if err := hc.Install(ctx, ch, helm.Release{Name: HostRelease, Namespace: BenchNamespace, Values: values}, time.Minute); err != nil {
		return nil, err
	}
	if err := Poll(ctx, "host baseline pods", p.ReadyTimeout, time.Second, func(ctx context.Context) error {
		return PodsRunning(ctx, cs, BenchNamespace, l.podNames())
	}); err != nil {
		return nil, err
	}
	in := &lab.Instance{
		Name: s.Def.Name, CNI: s.Def.CNI, Provider: p.Name(), Fidelity: results.Real,
		Datapath: "node to node over the Docker network, no CNI (hostNetwork pods)",
		Owned:    &hostBaselineState{cluster: c.name}, Probe: &probe.Launcher{Path: ProbePath, Args: []string{"probe"}},
		NoFootprint: "the host baseline runs no CNI: its pods share the " + base.Name + " lab's cluster",
		Nodes:       base.Nodes,
	}
	byName := map[string]*pod{}
	for _, bp := range l.Pods {
		kp, err := cs.CoreV1().Pods(BenchNamespace).Get(ctx, bp.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if !kp.Spec.HostNetwork {
			return nil, fmt.Errorf("pod %s is not on the host network", bp.Name)
		}
		ip, err := netip.ParseAddr(kp.Status.PodIP)
		if err != nil {
			return nil, fmt.Errorf("pod %s address %q: %w", bp.Name, kp.Status.PodIP, err)
		}
		pd := newPod(restCfg, cs, BenchNamespace, bp.Name, kp.Spec.NodeName, ip)
		res, err := pd.Exec().Run(ctx, command.Cmd{Name: "cat", Args: []string{"/sys/class/net/eth0/mtu"}})
		if err != nil {
			return nil, fmt.Errorf("read the MTU in pod %s: %w", bp.Name, err)
		}
		if pd.mtu, err = parseMTU(string(res.Stdout)); err != nil {
			return nil, fmt.Errorf("pod %s: %w", bp.Name, err)
		}
		byName[bp.Name] = pd
		in.Pods = append(in.Pods, pd)
	}
	in.Pairs = map[lab.Placement]lab.PodPair{}
	for _, bp := range l.Pods {
		if bp.Role == "client" {
			in.Pairs[bp.Placement] = lab.PodPair{Client: byName[bp.Name], Server: byName[hostPodPrefix+podName(bp.Placement, "server")]}
		}
	}
	pair := in.Pairs[lab.CrossNode]
	in.PodMTU = pair.Client.MTU()
	// The pods' addresses must be the workers' own: that is what makes
	// this the host path.
	for _, n := range base.Nodes {
		if n.Name() == pair.Server.NodeName() && n.IP() != pair.Server.IP() {
			return nil, fmt.Errorf("host server pod has %s, its node %s has %s", pair.Server.IP(), n.Name(), n.IP())
		}
	}
	if err := Poll(ctx, "host network across nodes", p.ReadyTimeout, time.Second, func(ctx context.Context) error {
		return probeAcross(ctx, *in.Probe, pair.Client, pair.Server)
	}); err != nil {
		return nil, err
	}
	in.Notes = append(in.Notes, fmt.Sprintf("host baseline in kind cluster %s (the %s lab's): hostNetwork bench pods on %s, node to node over the Docker network; up in %.1f s",
		c.name, base.Name, strings.Join(workers, " and "), time.Since(start).Seconds()))
	return in, nil
}

// hostValues lays out the host baseline's pods (host-<placement>-<role>,
// hostNetwork, no Services: the host has no service proxy) and the bench
// chart's values for them.
func hostValues(placements []lab.Placement, workers []string, image string) (benchLayout, map[string]any, error) {
	l, err := layout(lab.Workloads{Placements: placements}, workers)
	if err != nil {
		return l, nil, err
	}
	for i := range l.Pods {
		l.Pods[i].Name = hostPodPrefix + l.Pods[i].Name
	}
	values, err := l.values(image)
	if err != nil {
		return l, nil, err
	}
	for _, v := range values["pods"].([]any) {
		v.(map[string]any)["hostNetwork"] = true
	}
	return l, values, nil
}

// downHostBaseline is Down for a host baseline: nothing to remove, its
// pods go with the base lab's cluster.
func downHostBaseline(in *lab.Instance) (bool, error) {
	if _, ok := in.Owned.(*hostBaselineState); ok {
		return true, nil
	}
	return false, nil
}
