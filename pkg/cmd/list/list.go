// Package list is the `cnilab list` command.
package list

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/rank"
)

// NewCommand returns `cnilab list`.
func NewCommand(s cli.Streams) *cobra.Command {
	var defs cli.Definitions
	cmd := &cobra.Command{
		Use:       "list cnis|scenarios|environments|labs",
		Short:     "List known CNIs (lab definitions), scenarios, or running labs",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"cnis", "scenarios", "environments", "labs"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "labs" {
				return listLabs(cmd.Context(), s)
			}
			set, err := defs.Load()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
			defer tw.Flush()
			switch args[0] {
			case "cnis":
				fmt.Fprintln(tw, "LAB\tCNI\tNETNS MODEL\tSERVICES\tFIDELITY")
				for _, name := range set.LabNames() {
					l := set.Labs[name]
					model := l.Netns.Model + "/" + l.Netns.Mode
					fid := l.Netns.Fidelity
					if l.Netns.Unavailable != "" {
						model, fid = "not modelled", "–"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, l.CNI, model, dash(l.Netns.Services), fid)
				}
			case "scenarios":
				fmt.Fprintln(tw, "SCENARIO\tKIND\tTESTS\tPROFILES")
				for _, name := range set.ScenarioNames() {
					sc := set.Scenarios[name]
					var profs []string
					for p := range sc.Profiles {
						profs = append(profs, p)
					}
					sort.Strings(profs)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sc.Name, sc.Kind, strings.Join(sc.Tests, " "), strings.Join(profs, " "))
				}
			case "environments":
				_, _, scFS, scName, err := defs.FS()
				if err != nil {
					return err
				}
				envs, err := rank.LoadEnvironments(scFS, scName)
				if err != nil {
					return cli.WithCode(cli.ExitInvalid, err)
				}
				fmt.Fprintln(tw, "ENVIRONMENT\tREQUIRES\tCRITERIA\tTITLE")
				for _, e := range envs {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", e.Name, len(e.Requires), len(e.Criteria), e.Title)
				}
			default:
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("list %q: cnis, scenarios, environments or labs", args[0]))
			}
			return nil
		},
	}
	defs.AddFlags(cmd)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// listLabs prints the running labs: netns namespaces and kind clusters
// named cnl-. With none it says so on stderr, so stdout stays a list a
// script can read.
func listLabs(ctx context.Context, s cli.Streams) error {
	names, err := netns.New(nil, command.Exec{}).List(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(s.Out, n)
	}
	var clusters []string
	engine := images.CheckEngine(ctx, command.Exec{}) == nil
	if engine {
		if clusters, err = kind.New(kind.ImagesFrom(images.Offline()), command.Exec{}, nil).List(ctx); err != nil {
			return err
		}
	}
	for _, c := range clusters {
		fmt.Fprintln(s.Out, "kind cluster "+c)
	}
	if len(names)+len(clusters) == 0 {
		where := "no cnl- network namespaces and no kind clusters"
		if !engine {
			where = "no cnl- network namespaces (no Docker engine answers, so no kind clusters)"
		}
		fmt.Fprintf(s.Err, "no labs running: %s\n", where)
	}
	return nil
}
