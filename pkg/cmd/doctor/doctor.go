// Package doctor is the `cnilab doctor` command: what this machine can and
// cannot reproduce, and what to install.
package doctor

import (
	"fmt"
	"os"
	"os/exec"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/kindhost"
)

// tools cnilab runs, and the Debian package that has them.
var tools = []struct{ name, pkg, why string }{
	{"iperf3", "iperf3", "throughput measurements"},
	{"iptables-restore", "iptables", "kube-proxy iptables rules"},
	{"nft", "nftables", "kube-proxy nftables rules"},
	{"ipset", "ipset", "kube-router/Calico policy sets"},
}

// NewCommand returns `cnilab doctor`.
func NewCommand(s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check prerequisites and kernel capabilities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			missing := 0
			tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
			if os.Geteuid() != 0 {
				missing++
				fmt.Fprintln(tw, "root\tmissing\tthe netns provider creates network namespaces: run as root")
			} else {
				fmt.Fprintln(tw, "root\tok\t")
			}
			for _, t := range tools {
				if p, err := exec.LookPath(t.name); err != nil {
					missing++
					fmt.Fprintf(tw, "%s\tmissing\tapt-get install -y %s (%s)\n", t.name, t.pkg, t.why)
				} else {
					fmt.Fprintf(tw, "%s\tok\t%s\n", t.name, p)
				}
			}
			if os.Geteuid() == 0 {
				caps, err := kernelcap.Detect(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range caps.List() {
					st := "ok"
					detail := c.Config
					if !c.Available {
						st = "absent"
						detail = fmt.Sprintf("%s missing: labs needing it report \"not reproducible here\" (%s)", c.Config, c.Detail)
					}
					fmt.Fprintf(tw, "kernel %s\t%s\t%s\n", c.Name, st, detail)
				}
			}
			// The kind path: the engine, privileged containers, the
			// bounding-set gap, and what `cnilab kind-host` would do.
			host, err := kindhost.Detect(cmd.Context(), kindhost.Real(), true)
			if err != nil {
				return err
			}
			for _, c := range host.Checks() {
				st := "ok"
				if !c.OK {
					st = "absent"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, st, c.Detail)
			}
			tw.Flush()
			plan := kindhost.PlanFor(host)
			if host.Engine == nil {
				fmt.Fprintln(s.Out, "kind labs need a Docker engine; until then the netns provider is used.")
			}
			plan.Write(s.Out)
			if !plan.Empty() {
				fmt.Fprintln(s.Out, "run `make kind-host` (or `cnilab kind-host`) as root to apply it.")
			}
			if missing > 0 {
				return cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("%d prerequisites missing", missing))
			}
			return nil
		},
	}
}
