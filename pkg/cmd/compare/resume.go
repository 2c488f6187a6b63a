package compare

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/results"
)

// providerList is --provider as the run records it (results.Run.Provider
// split): netns before kind.
func providerList(p string) []string {
	switch p {
	case "netns,kind", "kind,netns":
		return []string{"netns", "kind"}
	}
	return []string{p}
}

// labList is --cni as run() turns it into the run's labs.
func labList(cnis string, providers []string) []string {
	labs := cli.SplitList(cnis)
	if len(providers) > 1 && !slices.Contains(labs, cmp.HostLab) {
		labs = append([]string{cmp.HostLab}, labs...)
	}
	return labs
}

// placementList is --placement as run() reads it.
func placementList(p string) []string {
	switch p {
	case "":
		return nil
	case "both":
		return []string{"cross-node", "same-node"}
	}
	return cli.SplitList(p)
}

// absDir is a definitions folder as a run records it: absolute, so a
// resume from another directory reads the same files.
func absDir(d string) string {
	if d == "" {
		return ""
	}
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// contradictions lists the flags given with --resume that differ from what
// the run recorded: a resume measures what the killed run would have.
func contradictions(cmd *cobra.Command, f *flags, id string, req results.Request, seed uint64) []string {
	changed := cmd.Flags().Changed
	var out []string
	check := func(flag string, given, recorded any, same bool) {
		if changed(flag) && !same {
			out = append(out, fmt.Sprintf("--%s %v (run %s: %v)", flag, given, id, recorded))
		}
	}
	provs := providerList(f.provider)
	check("provider", f.provider, strings.Join(req.Providers, ","), slices.Equal(provs, req.Providers))
	labs := labList(f.cnis, req.Providers)
	check("cni", f.cnis, strings.Join(req.Labs, ","), slices.Equal(labs, req.Labs))
	scs := cli.SplitList(f.scenarios)
	check("scenario", f.scenarios, strings.Join(req.Scenarios, ","), slices.Equal(scs, req.Scenarios))
	check("profile", f.profile, req.Profile, f.profile == req.Profile)
	check("seed", f.seed, seed, f.seed == seed)
	check("duration", f.duration.String(), (&cli.Seconds{N: req.Seconds}).String(), f.duration.N == req.Seconds)
	check("repeats", f.repeats.N, req.Repeats, f.repeats.N == req.Repeats)
	pl := placementList(f.placement)
	check("placement", f.placement, strings.Join(req.Placements, ","), slices.Equal(pl, req.Placements))
	check("underlay-mtu", f.underlayMTU, req.UnderlayMTU, f.underlayMTU == req.UnderlayMTU)
	check("pin-cpus", f.pinCPUs, req.PinCPUs, f.pinCPUs == req.PinCPUs)
	for _, n := range []string{"lab-dir", "labs"} {
		check(n, f.defs.LabsDir, orEmbedded(req.LabsDir), absDir(f.defs.LabsDir) == req.LabsDir)
	}
	for _, n := range []string{"scenario-dir", "scenarios"} {
		check(n, f.defs.ScenariosDir, orEmbedded(req.ScenariosDir), absDir(f.defs.ScenariosDir) == req.ScenariosDir)
	}
	check("run", f.runID, id+" (measured labs of `cnilab up`: "+strconv.FormatBool(req.Attached)+")", req.Attached && f.runID == id)
	check("solo-baseline", f.solo, "none on a resume", false)
	if f.cluster.set(cmd) {
		out = append(out, "cluster flags (a resume continues netns and kind runs)")
	}
	return out
}

func orEmbedded(d string) string {
	if d == "" {
		return "embedded"
	}
	return d
}

// resume is `compare --resume RUN`: the killed run's request, labs
// re-attached or rebuilt, kept measurements skipped.
func resume(cmd *cobra.Command, s cli.Streams, f *flags) error {
	dir, err := cmp.FindRun(f.out, f.resume)
	if err != nil {
		return cli.WithCode(cli.ExitInvalid, err)
	}
	rs, err := cmp.LoadResume(dir)
	if err != nil {
		return cli.WithCode(cli.ExitInvalid, err)
	}
	req := rs.Request()
	if bad := contradictions(cmd, f, rs.Doc.Run.ID, req, rs.Doc.Run.Settings.OrderSeed); len(bad) > 0 {
		return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--resume keeps the run's own settings; these differ: %s", strings.Join(bad, "; ")))
	}
	defs := cli.Definitions{LabsDir: req.LabsDir, ScenariosDir: req.ScenariosDir}
	set, err := defs.Load()
	if err != nil {
		return err
	}
	opts := cmp.FromRequest(req, set)
	opts.OutDir, opts.Keep, opts.Progress, opts.Resume = f.out, f.keep, cli.NewProgress(s.Err), rs
	if err := opts.Validate(); err != nil {
		return cli.WithCode(cli.ExitInvalid, fmt.Errorf("run %s no longer fits its definitions: %w", rs.Doc.Run.ID, err))
	}
	ctx := cmd.Context()
	r := command.Exec{}
	var ps []lab.Provider
	var caps kernelcap.Set
	for _, name := range req.Providers {
		switch name {
		case "netns":
			if caps, err = Prepare(ctx, &opts); err != nil {
				return err
			}
			ps = append(ps, netns.New(caps, r))
		case "kind":
			if err := images.CheckEngine(ctx, r); err != nil {
				return cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("--resume %s runs on kind: %w", rs.Doc.Run.ID, err))
			}
			if err := opts.Prerequisites(ctx, "kind"); err != nil {
				return cli.WithCode(cli.ExitPrerequisite, err)
			}
			kp := kind.New(kind.ImagesFrom(images.Offline()), r, nil)
			kp.Log = func(format string, args ...any) { fmt.Fprintf(s.Err, "  "+format+"\n", args...) }
			ps = append(ps, kp)
			if caps == nil && os.Geteuid() == 0 {
				if c, err := kernelcap.Detect(ctx); err == nil {
					caps = c
				}
			}
		default:
			return cli.WithCode(cli.ExitInvalid, fmt.Errorf("run %s ran on provider %s: --resume continues netns and kind runs", rs.Doc.Run.ID, name))
		}
	}
	if len(ps) == 0 {
		return cli.WithCode(cli.ExitInvalid, errors.New("the run recorded no provider"))
	}
	fmt.Fprintf(s.Err, "resuming run %s (%s; seed %d) from %s\n", rs.Doc.Run.ID, strings.Join(req.Providers, ","), rs.Doc.Run.Settings.OrderSeed, dir)
	return finish(ctx, s, f, opts, ps, caps)
}
