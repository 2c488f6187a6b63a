package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/results"
)

// running reports whether kind knows a cluster of that name.
func (p *Provider) running(name string) (bool, error) {
	all, err := p.Kind.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(all, name), nil
}

// clients writes the cluster's kubeconfig into the run directory (kind
// holds it: nothing of a lab's state is kept in a file of cnilab's) and
// returns clients for it.
func (p *Provider) clients(c *clusterState) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := p.Kind.KubeConfig(c.name, false)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig of %s: %w", c.name, err)
	}
	if err := os.WriteFile(c.kubeconfig, []byte(cfg), 0o600); err != nil {
		return nil, nil, err
	}
	return labClients(c.kubeconfig)
}

// The lab's own API server is cnilab's alone, so its client is not held to
// client-go's default 5 requests/s: at that rate creating the policy
// scenario's 1000 NetworkPolicies took 200 s of client-side throttling
// (runs 626dfe, 2e5aec), and "time to program" measured the client, not
// the CNI.
const (
	labClientQPS   = 200
	labClientBurst = 400
)

// labClients opens a kubeconfig the provider wrote for one of its clusters.
func labClients(kubeconfig string) (*rest.Config, kubernetes.Interface, error) {
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	restCfg.QPS, restCfg.Burst = labClientQPS, labClientBurst
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, err
	}
	return restCfg, cs, nil
}

// Attach implements lab.Attacher: it finds the lab's cluster (cnl-<run>-<lab>)
// that `cnilab up`, a kept run or a killed one left running, and its bench
// pods by their names; the CNI must be ready and the pods must reach each
// other across nodes, as after Up. Nothing is installed: a cluster without
// the bench pods the spec's workloads need is an error.
func (p *Provider) Attach(ctx context.Context, s lab.Spec) (*lab.Instance, error) {
	def := s.Def
	if def.Kind == nil {
		return nil, &lab.Unavailable{Reason: fmt.Sprintf("lab %s has no kind recipe (no kind: section in %s)", def.Name, def.File)}
	}
	if s.Dir == "" {
		return nil, errors.New("a kind lab needs a run directory for its kubeconfig")
	}
	if len(s.Workloads.Peers) > 0 {
		return nil, fmt.Errorf("lab %s: the policy scenario's peer pods are not re-attached; build the lab again", def.Name)
	}
	name, err := ClusterName(s.RunID, def.Name)
	if err != nil {
		return nil, err
	}
	if ok, err := p.running(name); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("no running lab %s in run %s (no kind cluster %s)", def.Name, s.RunID, name)
	}
	c := &clusterState{name: name, kubeconfig: filepath.Join(s.Dir, def.Name+".kubeconfig")}
	restCfg, cs, err := p.clients(c)
	if err != nil {
		return nil, err
	}
	kindNodes, err := p.Kind.ListInternalNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", name, err)
	}
	if err := clusterReady(ctx, cs, def.Kind, len(kindNodes)); err != nil {
		return nil, fmt.Errorf("cluster %s is not ready: %w", name, err)
	}
	var agents []AgentStatus
	if e := def.Kind.CNI.ReadyExec; e != nil {
		if agents, err = AgentsReady(ctx, cs, podAgentExec(restCfg, cs), def.Kind.CNI.Namespace, e); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
	}
	in, err := p.instance(def, c, kindNodes)
	if err != nil {
		return nil, err
	}
	workers := lab.WorkerNames(in.Nodes)
	if len(workers) < 2 {
		return nil, fmt.Errorf("cluster %s: %d workers; cross-node pairs need 2", name, len(workers))
	}
	l, err := kube.NewLayout(s.Workloads, workers[0], workers[1])
	if err != nil {
		return nil, err
	}
	b := kube.Bench{Namespace: BenchNamespace, Layout: l, ReadyTimeout: p.ReadyTimeout, Probe: *in.Probe}
	wl, err := b.Attach(ctx, restCfg, cs)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	for _, pd := range wl.Pods {
		in.Pods = append(in.Pods, pd)
	}
	in.Pairs, in.ServiceAddrs = wl.Pairs, wl.ServiceAddrs
	in.PodMTU = in.Pairs[lab.CrossNode].Client.MTU()
	agentNS, agentDS := daemonSetRef(def.Kind.CNI.Namespace, def.Kind.CNI.DaemonSets[0])
	in.Policy = &policyLab{cs: cs, cni: def.CNI, nodes: in.Nodes, run: podAgentExec(restCfg, cs), agentNS: agentNS, agentDS: agentDS}
	if err := p.observe(ctx, in, def, cs, podAgentExec(restCfg, cs)); err != nil {
		return nil, err
	}
	wls, err := findWorkloads(ctx, cs, def.Kind)
	if err != nil {
		return nil, fmt.Errorf("footprint components: %w", err)
	}
	in.Footprinter = &footprinter{cs: cs, nodes: in.Nodes, workloads: wls}
	observeAgents(in, def.Kind, agents)
	in.Notes = append(in.Notes, def.Kind.Notes...)
	in.Notes = append(in.Notes, p.Images.Notes[def.CNI]...)
	in.Notes = append(in.Notes, fmt.Sprintf("kind cluster %s (1 control plane, %d workers) found running and re-attached: its provisioning was not timed by this run", name, len(workers)))
	return in, nil
}

// AttachHostBaseline finds the host baseline's hostNetwork bench pods in
// the cluster of one of up that carries them (HostBaseline put them there).
func (p *Provider) AttachHostBaseline(ctx context.Context, s lab.Spec, up []*lab.Instance) (*lab.Instance, error) {
	var errs []error
	for _, base := range up {
		c, ok := base.Owned.(*clusterState)
		if !ok {
			continue
		}
		restCfg, cs, err := p.clients(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, HostNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.name, err))
			continue
		}
		workers := lab.WorkerNames(base.Nodes)
		b, err := hostBench(s, workers, p.Images.Bench, p.ReadyTimeout, *base.Probe)
		if err != nil {
			return nil, err
		}
		wl, err := b.Attach(ctx, restCfg, cs)
		if err != nil {
			return nil, fmt.Errorf("host baseline in cluster %s: %w", c.name, err)
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
		in.Notes = append(in.Notes, fmt.Sprintf("host baseline in kind cluster %s (the %s lab's): hostNetwork bench pods found running and re-attached", c.name, base.Name))
		return in, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("no cluster of run %s carries the host baseline (namespace %s)", s.RunID, HostNamespace)
}

// Remove deletes the lab's cluster if it exists (one a killed run left
// half built), so Up can build it again. The host baseline has nothing
// of its own to remove.
func (p *Provider) Remove(_ context.Context, s lab.Spec) error {
	if s.Def.Kind == nil {
		return nil
	}
	name, err := ClusterName(s.RunID, s.Def.Name)
	if err != nil {
		return err
	}
	if ok, err := p.running(name); err != nil || !ok {
		return err
	}
	p.logf("kind %s: removing what is left of cluster %s", s.Def.Name, name)
	return p.delete(&clusterState{name: name, kubeconfig: filepath.Join(s.Dir, s.Def.Name+".kubeconfig")})
}

// RunLabs names the labs of run id that have a kind cluster, from the
// cluster names, and whether one of them carries the host baseline.
func (p *Provider) RunLabs(ctx context.Context, id string) (labs []string, err error) {
	prefix := NamePrefix + id + "-"
	all, err := p.Kind.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	for _, n := range all {
		if name, ok := strings.CutPrefix(n, prefix); ok {
			labs = append(labs, name)
		}
	}
	slices.Sort(labs)
	for _, l := range labs {
		c := &clusterState{name: prefix + l}
		tmp, err := os.MkdirTemp("", "cnl-kind-find-")
		if err != nil {
			return nil, err
		}
		c.kubeconfig = filepath.Join(tmp, "kubeconfig")
		_, cs, err := p.clients(c)
		if err == nil {
			_, err = cs.CoreV1().Namespaces().Get(ctx, HostNamespace, metav1.GetOptions{})
		}
		os.RemoveAll(tmp)
		if err == nil {
			return append([]string{"host"}, labs...), nil
		}
	}
	return labs, nil
}
