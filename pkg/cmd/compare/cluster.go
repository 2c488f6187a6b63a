package compare

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/cluster"
)

// clusterFlags select an existing cluster and what cnilab may do there.
type clusterFlags struct {
	kubeconfig, context string
	benchImage, pull    string
	nodes, selector     string
	dryRun              bool
}

func (c *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.kubeconfig, "kubeconfig", "", "--provider cluster: the cluster's kubeconfig file (never read from $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&c.context, "context", "", "--provider cluster: kubeconfig context (default: its current one)")
	cmd.Flags().StringVar(&c.benchImage, "bench-image", "", "--provider cluster: the bench image in a registry the nodes pull from (README: cnilab images build, then push)")
	cmd.Flags().StringVar(&c.pull, "bench-pull-policy", "IfNotPresent", "--provider cluster: imagePullPolicy of the bench pods (IfNotPresent, Always, Never)")
	cmd.Flags().StringVar(&c.nodes, "nodes", "", "--provider cluster: client and server node, a,b (default: the first two schedulable workers)")
	cmd.Flags().StringVar(&c.selector, "node-selector", "", "--provider cluster: label selector for the candidate nodes, e.g. cnilab=bench")
	cmd.Flags().BoolVar(&c.dryRun, "dry-run", false, "--provider cluster: print every object the run would create and create nothing")
}

// set reports whether any cluster flag was given.
func (c *clusterFlags) set(cmd *cobra.Command) bool {
	for _, n := range []string{"kubeconfig", "context", "bench-image", "bench-pull-policy", "nodes", "node-selector", "dry-run"} {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// prepare connects to the cluster, checks the credentials' rights,
// detects the CNI and settles the labs: the ones given (each must match
// what runs) or, without --cni, the host baseline and the detected CNI's
// lab. Nothing is created.
func (c *clusterFlags) prepare(cmd *cobra.Command, s cli.Streams, set *config.Set, labs []string, cniGiven bool) (*cluster.Provider, []string, error) {
	if c.kubeconfig == "" {
		return nil, nil, cli.WithCode(cli.ExitInvalid, errors.New("--provider cluster needs --kubeconfig FILE"))
	}
	if _, err := os.Stat(c.kubeconfig); err != nil {
		return nil, nil, cli.WithCode(cli.ExitInvalid, fmt.Errorf("--kubeconfig: %w", err))
	}
	if !slices.Contains([]string{"IfNotPresent", "Always", "Never"}, c.pull) {
		return nil, nil, cli.WithCode(cli.ExitInvalid, fmt.Errorf("--bench-pull-policy %q: IfNotPresent, Always or Never", c.pull))
	}
	var defs []*config.Lab
	if cniGiven {
		for _, n := range labs {
			def, ok := set.Labs[n]
			if !ok {
				return nil, nil, cli.WithCode(cli.ExitInvalid, fmt.Errorf("--cni: unknown lab %q (known: %s)", n, strings.Join(set.LabNames(), ", ")))
			}
			defs = append(defs, def)
		}
	}
	p, err := cluster.New(c.kubeconfig, c.context)
	if err != nil {
		return nil, nil, cli.WithCode(cli.ExitInvalid, err)
	}
	p.BenchImage, p.PullPolicy, p.NodeSelector = c.benchImage, c.pull, c.selector
	if c.nodes != "" {
		p.Nodes = cli.SplitList(c.nodes)
	}
	p.Log = func(format string, args ...any) { fmt.Fprintf(s.Err, "  "+format+"\n", args...) }
	pre, err := p.Preflight(cmd.Context(), defs)
	if err != nil {
		// A missing right, an unknown CNI, too few nodes, or a lab
		// pinning a CNI the cluster does not run: the cluster lacks
		// what the run needs.
		return nil, nil, cli.WithCode(cli.ExitPrerequisite, err)
	}
	d := pre.Detection
	fmt.Fprintf(s.Err, "cluster: %s %s detected (%s); proxy %s; bench nodes %s → %s (%s)\n", d.CNI, d.Version, strings.Join(d.How, "; "), d.Proxy, pre.Client.Name, pre.Server.Name, pre.NodesHow)
	if pre.NoMetrics != "" {
		fmt.Fprintf(s.Err, "cluster: CNI footprint %s\n", pre.NoMetrics)
	}
	if !cniGiven {
		name, err := d.LabFor(set)
		if err != nil {
			return nil, nil, cli.WithCode(cli.ExitPrerequisite, err)
		}
		labs = []string{"host", name}
		fmt.Fprintf(s.Err, "cluster: labs %s (the host-network baseline and the detected CNI; --cni pins them)\n", strings.Join(labs, ", "))
	}
	return p, labs, nil
}

// runCluster measures on the cluster, or with --dry-run prints what it
// would create.
func runCluster(cmd *cobra.Command, s cli.Streams, f *flags, opts cmp.Options, p *cluster.Provider) error {
	if f.cluster.dryRun {
		id := cmp.NewRunID()
		var specs []lab.Spec
		for _, n := range opts.Labs {
			specs = append(specs, lab.Spec{Def: opts.Set.Labs[n], RunID: id, Workloads: opts.Workloads()})
		}
		fmt.Fprintf(s.Out, "# --dry-run: nothing was created. A real run draws its own run id (here %s);\n# every object carries the label cnilab.io/run=<id> and goes when the run ends.\n", id)
		if err := p.DryRun(cmd.Context(), s.Out, specs); err != nil {
			return cli.WithCode(cli.ExitPrerequisite, err)
		}
		return nil
	}
	return finish(cmd.Context(), s, f, opts, []lab.Provider{p}, nil)
}
