// Package down is the `cnilab down` command.
package down

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab/cluster"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/netplan"
)

// runIDRE is what a run id may be: it becomes a prefix of names and a
// folder name, so nothing that could climb out of --out.
var runIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// NewCommand returns `cnilab down`.
func NewCommand(s cli.Streams) *cobra.Command {
	var all bool
	var runID, provider, kubeconfig, kubeContext, out string
	cmd := &cobra.Command{
		Use:   "down [--run ID | --all] [--provider cluster --kubeconfig F [--context C]]",
		Short: "Remove labs: one run's (--run) or every cnl- leftover (--all); idempotent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (runID != "") {
				return cli.WithCode(cli.ExitInvalid, errors.New("give exactly one of --run ID or --all"))
			}
			if runID != "" && !runIDRE.MatchString(runID) {
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--run %q: a run id is lower-case letters, digits and dashes (as `cnilab up` prints it)", runID))
			}
			switch {
			case provider == "cluster":
				return downCluster(cmd, s, kubeconfig, kubeContext, runID)
			case provider != "":
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--provider %q: only cluster (netns and kind leftovers are always removed)", provider))
			case kubeconfig != "" || kubeContext != "":
				return cli.WithCode(cli.ExitInvalid, errors.New("--kubeconfig and --context need --provider cluster"))
			}
			p := netns.New(nil, command.Exec{})
			kp := kindProvider(cmd.Context())
			if all {
				removed, err := p.DownAll(cmd.Context())
				fmt.Fprintf(s.Err, "removed %d namespaces\n", len(removed))
				if kp == nil {
					return err
				}
				clusters, kerr := kp.DownAll(cmd.Context())
				fmt.Fprintf(s.Err, "removed %d kind clusters\n", len(clusters))
				return errors.Join(err, kerr)
			}
			if kp != nil {
				kp.Prefix = kind.NamePrefix + runID + "-"
				clusters, err := kp.DownAll(cmd.Context())
				if err != nil {
					return err
				}
				if len(clusters) > 0 {
					fmt.Fprintf(s.Err, "removed %d kind clusters of run %s\n", len(clusters), runID)
				}
			}
			names, err := p.List(cmd.Context())
			if err != nil {
				return err
			}
			prefix := netns.NamePrefix + runID + "-"
			var errs []error
			n := 0
			for _, name := range names {
				if strings.HasPrefix(name, prefix) {
					n++
					errs = append(errs, netplan.DeleteNamespace(name))
				}
			}
			fmt.Fprintf(s.Err, "removed %d namespaces of run %s\n", n, runID)
			// `cnilab up --provider kind` left the run's kubeconfigs here;
			// they name clusters that are gone now.
			upDir := filepath.Join(out, "up-"+runID)
			if _, err := os.Stat(upDir); err == nil {
				if err := os.RemoveAll(upDir); err != nil {
					errs = append(errs, err)
				} else {
					fmt.Fprintf(s.Err, "removed %s\n", upDir)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every cnl- namespace and kind cluster, whichever run made it")
	cmd.Flags().StringVar(&runID, "run", "", "remove the labs of this run id")
	cmd.Flags().StringVar(&out, "out", "reports/runs", "with --run: the folder whose up-<id>/ (kubeconfigs that cnilab up --provider kind wrote) goes too")
	cmd.Flags().StringVar(&provider, "provider", "", "cluster: remove cnilab's namespaces (cnilab-*, labelled cnilab.io/run) from an existing cluster, and nothing else")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "--provider cluster: the cluster's kubeconfig file")
	cmd.Flags().StringVar(&kubeContext, "context", "", "--provider cluster: kubeconfig context")
	return cmd
}

// downCluster removes cnilab's namespaces from an existing cluster: every
// run's (--all) or one run's. Only namespaces named cnilab-* that carry
// the run label go; nothing else in the cluster is touched.
func downCluster(cmd *cobra.Command, s cli.Streams, kubeconfig, kubeContext, runID string) error {
	if kubeconfig == "" {
		return cli.WithCode(cli.ExitInvalid, errors.New("--provider cluster needs --kubeconfig FILE"))
	}
	p, err := cluster.New(kubeconfig, kubeContext)
	if err != nil {
		return cli.WithCode(cli.ExitInvalid, err)
	}
	p.Run = runID
	removed, err := p.DownAll(cmd.Context())
	for _, n := range removed {
		fmt.Fprintf(s.Err, "removed namespace %s\n", n)
	}
	fmt.Fprintf(s.Err, "removed %d cnilab namespaces from the cluster\n", len(removed))
	return err
}

// kindProvider is the kind provider when a Docker engine answers, nil when
// none does (then there can be no kind cluster to remove).
func kindProvider(ctx context.Context) *kind.Provider {
	if images.CheckEngine(ctx, command.Exec{}) != nil {
		return nil
	}
	return kind.New(kind.ImagesFrom(images.Offline()), command.Exec{}, nil)
}
