// Package kind is the lab provider that runs the real CNIs: one kind
// cluster per lab (sigs.k8s.io/kind's Go API, Docker), the CNI installed
// from its upstream Helm chart, and cnilab's bench chart for the
// workloads. Programs run in pods through the API server's exec and on
// nodes through `docker exec`. Clusters are found by their cnl- names.
package kind

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/log"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// Provider builds labs as kind clusters.
type Provider struct {
	// Prefix selects the clusters List and DownAll act on: NamePrefix
	// (every cnilab cluster) unless narrowed, e.g. to one run's.
	Prefix string
	Images Images
	// Runner runs docker (images, node exec) and go (offline charts).
	Runner command.Runner
	// Kind is kind's cluster provider (Docker).
	Kind *cluster.Provider
	// ReadyTimeout bounds each readiness wait (nodes and CNI, bench pods,
	// the cross-node probe).
	ReadyTimeout time.Duration
	// Log, when set, gets one line per step of Up.
	Log func(format string, args ...any)
}

// New returns a provider on the local Docker engine. kindLog receives
// kind's own output (nil: none).
func New(images Images, r command.Runner, kindLog log.Logger) *Provider {
	if kindLog == nil {
		kindLog = log.NoopLogger{}
	}
	return &Provider{
		Prefix: NamePrefix, Images: images, Runner: r, ReadyTimeout: 4 * time.Minute,
		Kind: cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(kindLog)),
	}
}

var _ lab.Provider = (*Provider)(nil)

// Name implements lab.Provider.
func (*Provider) Name() string { return "kind" }

// ProbePath is where the bench image keeps the cnilab binary.
const ProbePath = "/usr/local/bin/cnilab"

// Timings are how long the steps of Up took.
type Timings struct {
	// Create is kind's cluster creation (nodes up, kubeadm init and join).
	Create time.Duration
	// LoadImages is `docker save` plus the import into every node.
	LoadImages time.Duration
	// CNIReady runs from the start of the CNI install until every node is
	// Ready, the CNI's DaemonSets are ready on all nodes and CoreDNS is
	// available.
	CNIReady time.Duration
	// Workloads covers the bench chart until its pods run and a pod on one
	// worker reached a pod on the other.
	Workloads time.Duration
}

// clusterState is what Down needs, kept in Instance.Owned.
type clusterState struct {
	name, kubeconfig string
	timings          Timings
}

// TimingsOf returns the step timings of a lab this provider brought up.
func TimingsOf(in *lab.Instance) (Timings, bool) {
	c, ok := in.Owned.(*clusterState)
	if !ok {
		return Timings{}, false
	}
	return c.timings, true
}

// KubeconfigOf returns the kubeconfig file of a lab this provider brought
// up (in the run directory).
func KubeconfigOf(in *lab.Instance) (string, bool) {
	c, ok := in.Owned.(*clusterState)
	if !ok {
		return "", false
	}
	return c.kubeconfig, true
}

func (p *Provider) logf(format string, args ...any) {
	if p.Log != nil {
		p.Log(format, args...)
	}
}

// Up implements lab.Provider: it creates the cluster, loads the images,
// installs the CNI and the bench workloads and waits until they work.
// Whatever fails or is cancelled midway, the cluster is deleted.
func (p *Provider) Up(ctx context.Context, s lab.Spec) (_ *lab.Instance, err error) {
	def := s.Def
	if def.Kind == nil {
		return nil, &lab.Unavailable{Reason: fmt.Sprintf("lab %s has no kind recipe (no kind: section in %s)", def.Name, def.File)}
	}
	if s.Dir == "" {
		return nil, errors.New("a kind lab needs a run directory for its kubeconfig")
	}
	name, err := ClusterName(s.RunID, def.Name)
	if err != nil {
		return nil, err
	}
	if why := p.noImageSource(def); why != "" {
		return nil, &lab.Unavailable{Reason: why}
	}
	want := p.Images.loaded(def)
	if p.Images.Source == SourceOffline {
		want = append([]string{p.Images.Node}, want...)
	}
	if miss := missingImages(ctx, p.Runner, want); len(miss) > 0 {
		return nil, &lab.Unavailable{Reason: fmt.Sprintf("kind images not built: run `cnilab images build` (missing %s)", strings.Join(miss, ", "))}
	}
	c := &clusterState{name: name, kubeconfig: filepath.Join(s.Dir, def.Name+".kubeconfig")}
	defer func() {
		if err != nil {
			if derr := p.delete(c); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete cluster %s: %w", name, derr))
			}
		}
	}()

	p.logf("kind %s: creating cluster %s", def.Name, name)
	start := time.Now()
	if err := p.create(ctx, c, def.Kind); err != nil {
		return nil, fmt.Errorf("create kind cluster %s: %w", name, err)
	}
	c.timings.Create = time.Since(start)
	kindNodes, err := p.Kind.ListInternalNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", name, err)
	}

	start = time.Now()
	nodeNames := make([]string, len(kindNodes))
	for i, kn := range kindNodes {
		nodeNames[i] = kn.String()
	}
	loadNotes, err := loadImages(ctx, p.Runner, defaultImportRetry, s.Dir, name, p.Images.loaded(def), nodeNames)
	if err != nil {
		return nil, err
	}
	c.timings.LoadImages = time.Since(start)

	restCfg, cs, err := labClients(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	hc := helm.Client{Kubeconfig: c.kubeconfig, CacheDir: s.Dir}

	p.logf("kind %s: installing %s %s", def.Name, def.CNI, def.Kind.CNI.Version)
	start = time.Now()
	if err := p.installCNI(ctx, cs, hc, restCfg, def, ValuesFor(name)); err != nil {
		return nil, err
	}
	if err := kube.Poll(ctx, "cluster", p.ReadyTimeout, time.Second, func(ctx context.Context) error {
		return clusterReady(ctx, cs, def.Kind, len(kindNodes))
	}); err != nil {
		return nil, err
	}
	var agents []AgentStatus
	if e := def.Kind.CNI.ReadyExec; e != nil {
		run := podAgentExec(restCfg, cs)
		// One check execs into every agent in turn; on two busy cores that
		// takes seconds, and Poll bounds each check by its interval. The
		// agents are usually ready at the first check (their readiness
		// probe already passed), so a long interval costs nothing.
		if err := kube.Poll(ctx, "CNI agent status", p.ReadyTimeout, 30*time.Second, func(ctx context.Context) error {
			agents, err = AgentsReady(ctx, cs, run, def.Kind.CNI.Namespace, e)
			return err
		}); err != nil {
			return nil, err
		}
	}
	if def.Kind.KubeProxyMode == "none" {
		// Not a readiness wait: kube-proxy appearing here is a broken lab.
		if err := NoKubeProxy(ctx, cs); err != nil {
			return nil, err
		}
	}
	c.timings.CNIReady = time.Since(start)
	p.logf("kind %s: CNI ready after %s", def.Name, c.timings.CNIReady.Round(100*time.Millisecond))

	in, err := p.instance(def, c, kindNodes)
	if err != nil {
		return nil, err
	}
	workers := lab.WorkerNames(in.Nodes)

	start = time.Now()
	if err := p.workloads(ctx, in, s.Workloads, s.RunID, workers, restCfg, cs, hc); err != nil {
		return nil, err
	}
	if err := p.peerPods(ctx, in, s.Workloads.Peers, restCfg, cs); err != nil {
		return nil, err
	}
	c.timings.Workloads = time.Since(start)
	agentNS, agentDS := daemonSetRef(def.Kind.CNI.Namespace, def.Kind.CNI.DaemonSets[0])
	in.Policy = &policyLab{cs: cs, cni: def.CNI, nodes: in.Nodes, run: podAgentExec(restCfg, cs), agentNS: agentNS, agentDS: agentDS}

	if err := p.observe(ctx, in, def, cs, podAgentExec(restCfg, cs)); err != nil {
		return nil, err
	}
	wl, err := findWorkloads(ctx, cs, def.Kind)
	if err != nil {
		return nil, fmt.Errorf("footprint components: %w", err)
	}
	in.Footprinter = &footprinter{cs: cs, nodes: in.Nodes, workloads: wl}
	in.UpSteps = &results.UpSteps{CreateSeconds: c.timings.Create.Seconds(), LoadImagesSeconds: c.timings.LoadImages.Seconds(),
		CNIReadySeconds: c.timings.CNIReady.Seconds(), WorkloadsReadySeconds: c.timings.Workloads.Seconds()}
	observeAgents(in, def.Kind, agents)
	in.Notes = append(in.Notes, loadNotes...)
	in.Notes = append(in.Notes, def.Kind.Notes...)
	in.Notes = append(in.Notes, p.Images.Notes[def.CNI]...)
	in.Notes = append(in.Notes, fmt.Sprintf("kind cluster %s (1 control plane, %d workers): created in %.1f s, images loaded in %.1f s, CNI ready %.1f s after install, workloads %.1f s",
		name, len(workers), c.timings.Create.Seconds(), c.timings.LoadImages.Seconds(), c.timings.CNIReady.Seconds(), c.timings.Workloads.Seconds()))
	return in, nil
}

// noImageSource says why the lab's CNI images cannot reach the nodes, or
// "" when they can. Upstream images are pulled by the nodes; offline, the
// CNI needs both an offline chart (its Go module or a chart of cnilab's
// own) and an image in the offline set. Nothing stands in for a CNI
// without them.
func (p *Provider) noImageSource(def *config.Lab) string {
	if p.Images.Source != SourceOffline {
		return ""
	}
	c := def.Kind.CNI
	why := ""
	switch _, ok := p.Images.CNIs[def.CNI]; {
	case c.Module == "" && c.LocalChart == "":
		why = c.NoOfflineSource
		if why == "" {
			why = "no offline chart"
		}
	case !ok:
		why = "no offline image for it in the image set"
	default:
		return ""
	}
	return fmt.Sprintf("not reproducible here: no image source for %s (no registry, %s)", def.CNI, why)
}

// create runs kind's Create. kind takes no context, so when ctx ends
// first the cluster is deleted at once (its remaining steps then fail
// fast) and Create is awaited, so no node container appears after the
// caller's final delete.
func (p *Provider) create(ctx context.Context, c *clusterState, k *config.KindLab) error {
	done := make(chan error, 1)
	go func() {
		done <- p.Kind.Create(c.name,
			cluster.CreateWithV1Alpha4Config(ClusterConfig(k, p.Images.Node)),
			cluster.CreateWithNodeImage(p.Images.Node),
			// Never ~/.kube/config or $KUBECONFIG: kind writes only here.
			cluster.CreateWithKubeconfigPath(c.kubeconfig),
			// kind's wait watches control planes only, and nothing is
			// Ready before the CNI: cnilab waits itself.
			cluster.CreateWithWaitForReady(0),
			cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false))
	}()
	select {
	case err := <-done:
		if err == nil {
			err = ctx.Err()
		}
		return err
	case <-ctx.Done():
		_ = p.Kind.Delete(c.name, c.kubeconfig)
		<-done
		return ctx.Err()
	}
}

// node wraps a kind node.
// instance is a kind lab as both Up and Attach start it: its identity and
// its nodes, sorted by name.
func (p *Provider) instance(def *config.Lab, c *clusterState, kindNodes []nodes.Node) (*lab.Instance, error) {
	in := &lab.Instance{
		Name: def.Name, CNI: def.CNI, Provider: p.Name(), Fidelity: results.Real,
		Owned: c, Probe: &probe.Launcher{Path: ProbePath, Args: []string{"probe"}},
	}
	for _, kn := range kindNodes {
		n, err := p.node(kn)
		if err != nil {
			return nil, err
		}
		in.Nodes = append(in.Nodes, n)
	}
	slices.SortFunc(in.Nodes, func(a, b lab.Node) int { return strings.Compare(a.Name(), b.Name()) })
	return in, nil
}

func (p *Provider) node(kn nodes.Node) (*node, error) {
	role, err := kn.Role()
	if err != nil {
		return nil, fmt.Errorf("role of %s: %w", kn, err)
	}
	v4, _, err := kn.IP()
	if err != nil {
		return nil, fmt.Errorf("address of %s: %w", kn, err)
	}
	ip, err := netip.ParseAddr(v4)
	if err != nil {
		return nil, fmt.Errorf("address of %s: %q: %w", kn, v4, err)
	}
	r := lab.RoleWorker
	if role == "control-plane" {
		r = lab.RoleControlPlane
	}
	return newNode(p.Runner, kn.String(), ip, r), nil
}

// installCNI installs the lab's CNI: a chart (offline from the chart inside
// the CNI's Go module, or cnilab's own chart, with the offline images and
// pull policy Never; upstream from the chart repository, or cnilab's own
// chart, with the chart's pinned images) or, upstream only, the CNI's
// pinned manifests.
func (p *Provider) installCNI(ctx context.Context, cs kubernetes.Interface, hc helm.Client, restCfg *rest.Config, def *config.Lab, d ValuesData) error {
	c := def.Kind.CNI
	if err := kube.EnsureNamespace(ctx, cs, c.Namespace, c.NamespaceLabels); err != nil {
		return err
	}
	offline := p.Images.Source == SourceOffline
	if len(c.Manifests) > 0 {
		if offline {
			return fmt.Errorf("%s is installed from manifests, which have no offline source", def.CNI)
		}
		return applyManifests(ctx, restCfg, c.Manifests)
	}
	values, err := ChartValues(def.Kind, d, offline, p.Images.CNIs[def.CNI])
	if err != nil {
		return err
	}
	ch, err := func() (*helm.Chart, error) {
		switch {
		case c.LocalChart != "":
			return helm.LoadFS(charts.FS, c.LocalChart)
		case !offline:
			return hc.PullRepo(c.Repo, c.Chart, c.Version)
		case c.Module == "":
			return nil, fmt.Errorf("chart %s has no offline source (kind.cni.module)", c.Chart)
		}
		dir, err := helm.ModuleChartDir(ctx, p.Runner, c.Module, c.Version, c.ModuleDir)
		if err != nil {
			return nil, err
		}
		return helm.LoadDir(dir)
	}()
	if err != nil {
		return err
	}
	return hc.Install(ctx, ch, helm.Release{Name: c.Release, Namespace: c.Namespace, Values: values, PullNever: offline}, 2*time.Minute)
}

// clusterReady is one readiness check of the whole cluster: nodes, the
// CNI's DaemonSets, kube-proxy, CoreDNS; the first thing not ready says why.
func clusterReady(ctx context.Context, cs kubernetes.Interface, k *config.KindLab, nodes int) error {
	if err := kube.NodesReady(ctx, cs, nodes); err != nil {
		return err
	}
	for _, ds := range k.CNI.DaemonSets {
		ns, name := daemonSetRef(k.CNI.Namespace, ds)
		if err := kube.DaemonSetReady(ctx, cs, ns, name, nodes); err != nil {
			return err
		}
	}
	if k.KubeProxyMode != "none" {
		if err := kube.DaemonSetReady(ctx, cs, "kube-system", "kube-proxy", nodes); err != nil {
			return err
		}
	}
	return kube.DeploymentReady(ctx, cs, "kube-system", "coredns")
}

// workloads installs the bench chart on the two workers (cross-node from
// the first to the second) and waits until it works (kube.Bench).
func (p *Provider) workloads(ctx context.Context, in *lab.Instance, w lab.Workloads, runID string, workers []string, restCfg *rest.Config, cs kubernetes.Interface, hc helm.Client) error {
	if len(workers) < 2 {
		return fmt.Errorf("%d workers; cross-node pairs need 2", len(workers))
	}
	l, err := kube.NewLayout(w, workers[0], workers[1])
	if err != nil {
		return err
	}
	// The bench image is always local (kind loads it into the nodes), so
	// its pods never pull, whatever the image source.
	b := kube.Bench{Namespace: BenchNamespace, Layout: l, ReadyTimeout: p.ReadyTimeout, Probe: *in.Probe,
		Chart: kube.ChartOptions{Image: p.Images.Bench, PullPolicy: "Never", Labels: map[string]string{kube.RunLabel: runID}}}
	wl, err := b.Install(ctx, restCfg, cs, hc)
	if err != nil {
		return err
	}
	for _, pd := range wl.Pods {
		in.Pods = append(in.Pods, pd)
	}
	in.Pairs, in.ServiceAddrs = wl.Pairs, wl.ServiceAddrs
	in.PodMTU = in.Pairs[lab.CrossNode].Client.MTU()
	return nil
}

// observe records what the lab runs, as seen in it: the tunnel device on
// every node, the service proxy, the software versions and image IDs.
func (p *Provider) observe(ctx context.Context, in *lab.Instance, def *config.Lab, cs kubernetes.Interface, run agentExec) error {
	k := def.Kind
	in.Datapath = k.Datapath
	if dev := k.TunnelDevice; dev != "" {
		var seen tunnel
		for _, n := range in.Nodes {
			res, err := n.Exec().Run(ctx, command.Cmd{Name: "ip", Args: []string{"-d", "link", "show", dev}})
			if err != nil {
				return fmt.Errorf("tunnel device %s on node %s: %w", dev, n.Name(), err)
			}
			t, err := parseTunnel(dev, string(res.Stdout))
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name(), err)
			}
			if seen.Kind != "" && (t.Kind != seen.Kind || t.ID != seen.ID || t.Port != seen.Port) {
				return fmt.Errorf("node %s has %s, another node %s", n.Name(), t, seen)
			}
			seen = t
		}
		in.Encap = seen.Kind
		in.Datapath = strings.TrimSpace(k.Datapath + " (" + seen.String() + ")")
	}
	if k.BridgeDevice != "" || k.NodeRoutes {
		seen, err := p.observeRouted(ctx, in, k.BridgeDevice, k.NodeRoutes, cs)
		if err != nil {
			return err
		}
		in.Datapath = strings.TrimSpace(k.Datapath + " (" + seen + ")")
	}
	proxy, how, err := observeProxy(ctx, k, cs, run)
	if err != nil {
		return err
	}
	in.Proxy = proxy
	if how != "" {
		in.Notes = append(in.Notes, how)
	}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	sw := results.Software{Kubernetes: sv.GitVersion, CNIVersion: k.CNI.Version, ImageSource: p.Images.Source}
	if id, err := imageID(ctx, p.Runner, p.Images.Node); err == nil {
		sw.NodeImage = fmt.Sprintf("%s (%s)", p.Images.Node, p.describeID(id))
	} else {
		sw.NodeImage = p.Images.Node
	}
	agentNS, agent := daemonSetRef(k.CNI.Namespace, k.CNI.DaemonSets[0])
	cniImage, cniID, err := daemonSetImage(ctx, cs, agentNS, agent)
	if err != nil {
		return err
	}
	if p.Images.Source == SourceOffline {
		// containerd names an imported archive's images by digest under a
		// made-up import-<date> repository; Docker's ID is the one
		// `docker images` shows.
		if id, err := imageID(ctx, p.Runner, cniImage); err == nil {
			cniID = id
		}
	}
	sw.CNIImage = fmt.Sprintf("%s (%s)", cniImage, p.describeID(cniID))
	in.Software = sw
	return nil
}

func (p *Provider) describeID(id string) string {
	if p.Images.Source == SourceOffline {
		return "built locally, " + id
	}
	return id
}

// daemonSetRef splits a recipe's DaemonSet entry, "name" in the release
// namespace or "namespace/name".
func daemonSetRef(releaseNS, entry string) (namespace, name string) {
	if ns, n, ok := strings.Cut(entry, "/"); ok {
		return ns, n
	}
	return releaseNS, entry
}

// daemonSetImage is the image of a DaemonSet's main container and the
// image ID the node's runtime reports for it.
func daemonSetImage(ctx context.Context, cs kubernetes.Interface, namespace, name string) (image, id string, err error) {
	ds, err := cs.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	main := ds.Spec.Template.Spec.Containers[0].Name
	sel := metav1.FormatLabelSelector(ds.Spec.Selector)
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return "", "", err
	}
	for _, pd := range pods.Items {
		for _, st := range pd.Status.ContainerStatuses {
			if st.Name == main && st.ImageID != "" {
				return ds.Spec.Template.Spec.Containers[0].Image, st.ImageID, nil
			}
		}
	}
	return "", "", fmt.Errorf("no running %s pod reports its image", name)
}

// delete removes a lab's cluster and its kubeconfig. It needs no context:
// it must work after the run's context was cancelled.
func (p *Provider) delete(c *clusterState) error {
	err := p.Kind.Delete(c.name, c.kubeconfig)
	for _, f := range []string{c.kubeconfig, c.kubeconfig + ".lock"} {
		if rerr := os.Remove(f); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}

// Down implements lab.Provider.
func (p *Provider) Down(_ context.Context, in *lab.Instance) error {
	if host, err := downHostBaseline(in); host {
		return err
	}
	c, ok := in.Owned.(*clusterState)
	if !ok {
		return fmt.Errorf("lab %s was not brought up by the kind provider", in.Name)
	}
	return p.delete(c)
}

// List implements lab.Provider: every kind cluster whose name starts with
// Prefix (cnl-).
func (p *Provider) List(context.Context) ([]string, error) {
	prefix := p.Prefix
	if !strings.HasPrefix(prefix, NamePrefix) {
		// Never act on clusters cnilab did not name.
		prefix = NamePrefix
	}
	all, err := p.Kind.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	var mine []string
	for _, n := range all {
		if strings.HasPrefix(n, prefix) {
			mine = append(mine, n)
		}
	}
	slices.Sort(mine)
	return mine, nil
}

// DownAll implements lab.Provider. The run directories are unknown here,
// so kind is given a throwaway kubeconfig path: it must not edit the
// user's.
func (p *Provider) DownAll(ctx context.Context) ([]string, error) {
	names, err := p.List(ctx)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "cnl-kind-down-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var errs []error
	var removed []string
	for _, n := range names {
		if err := p.Kind.Delete(n, filepath.Join(tmp, "kubeconfig")); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", n, err))
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}
