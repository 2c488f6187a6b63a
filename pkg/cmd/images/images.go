// Package images is the `cnilab images` command: build the kind lab image
// set (offline from Debian packages and Go modules, or pinned upstream
// images) and list it.
package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/images/gobuild"
)

// NewCommand returns `cnilab images`.
func NewCommand(s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images build|list",
		Short: "Build or list the images kind labs run (node, components, flannel, bench)",
	}
	cmd.AddCommand(newBuild(s), newList(s))
	return cmd
}

func newBuild(s cli.Streams) *cobra.Command {
	var source, cacheDir, moduleRoot string
	var force bool
	cmd := &cobra.Command{
		Use:   "build [--images offline|upstream|auto]",
		Short: "Build the offline image set into Docker (cached by content), or pull the pinned upstream one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if source != "offline" && source != "upstream" && source != "auto" {
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--images %q: want offline, upstream or auto", source))
			}
			dir, err := resolveCacheDir(cacheDir)
			if err != nil {
				return err
			}
			r := command.Exec{}
			ctx := cmd.Context()
			if err := images.CheckEngine(ctx, r); err != nil {
				return cli.WithCode(cli.ExitPrerequisite, err)
			}
			root, err := resolveModuleRoot(moduleRoot)
			if err != nil {
				return cli.WithCode(cli.ExitInvalid, err)
			}
			choice := images.Choice{Source: images.Source(source), Reason: "--images " + source, At: time.Now().UTC()}
			if source == "auto" {
				ok, reason := images.ProbeUpstream(ctx, r)
				choice.Source, choice.Reason = images.SourceOffline, "auto: "+reason
				if ok {
					choice.Source = images.SourceUpstream
				}
			}
			fmt.Fprintf(s.Err, "image set: %s (%s)\n", choice.Source, choice.Reason)
			o := images.Options{CacheDir: dir, Log: s.Err, Runner: r, Force: force,
				Binaries: images.GoBinaries(gobuild.Options{CacheDir: dir, ModuleRoot: root, Log: s.Err, Runner: r})}
			var rep images.Report
			if choice.Source == images.SourceUpstream {
				pulled, err := images.PullUpstream(ctx, r)
				if err != nil {
					return err
				}
				rep, err = images.BuildBench(ctx, o)
				rep.Images = append(pulled, rep.Images...)
				if err != nil {
					return prerequisite(err)
				}
			} else {
				rep, err = images.Build(ctx, o)
				if err != nil {
					return prerequisite(err)
				}
			}
			if err := images.RecordChoice(dir, choice); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tSTATE\tTIME\tSIZE")
			for _, b := range rep.Images {
				state := "built"
				if b.UpToDate {
					state = "up to date"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Ref, state, b.Duration.Round(100*time.Millisecond), images.HumanSize(b.Size))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "total %s (binaries %s, root filesystems %s, in parallel)\n",
				rep.Total.Round(100*time.Millisecond), rep.Binaries.Round(time.Second), rep.Rootfs.Round(time.Second))
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "images", "offline", "offline (build here), upstream (pull pinned public images) or auto (upstream when pullable)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "cache for binaries, root filesystems and layers (default $XDG_CACHE_HOME/cnilab or ~/.cache/cnilab)")
	cmd.Flags().BoolVar(&force, "force", false, "rebuild and reload every image even when its content label matches")
	cmd.Flags().StringVar(&moduleRoot, "module-root", "", "cnilab source tree the bench image's cnilab binary is built from (default: found from the working directory)")
	return cmd
}

// prerequisite marks errors that mean something must be installed first.
func prerequisite(err error) error {
	if errors.Is(err, images.ErrNoEngine) || errors.Is(err, images.ErrNoMmdebstrap) {
		return cli.WithCode(cli.ExitPrerequisite, err)
	}
	return err
}

func resolveCacheDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	return images.DefaultCacheDir()
}

// resolveModuleRoot finds the directory holding cnilab's go.mod, upwards
// from the working directory.
func resolveModuleRoot(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cmd", "cnilab")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no cnilab source tree above %s: pass --module-root (the bench image carries a cnilab built from it)", dir)
		}
	}
}

func newList(s cli.Streams) *cobra.Command {
	var source, cacheDir string
	cmd := &cobra.Command{
		Use:   "list [--images offline|upstream]",
		Short: "Show the image set with present/missing and sizes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := resolveCacheDir(cacheDir)
			if err != nil {
				return err
			}
			src := images.Source(source)
			switch source {
			case "":
				src = images.SourceOffline
				if c, ok, err := images.RecordedChoice(dir); err != nil {
					return err
				} else if ok {
					src = c.Source
					fmt.Fprintf(s.Err, "recorded choice: %s (%s, %s)\n", c.Source, c.Reason, c.At.Format(time.RFC3339))
				}
			case "offline", "upstream":
			default:
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--images %q: want offline or upstream", source))
			}
			r := command.Exec{}
			if err := images.CheckEngine(cmd.Context(), r); err != nil {
				return cli.WithCode(cli.ExitPrerequisite, err)
			}
			set := images.SetFor(src)
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tROLE\tSTATE\tSIZE\tCONTENT")
			var missing []string
			for _, row := range []struct{ ref, role string }{{set.Node, "node"}, {set.Flannel, "flannel"}, {set.KubeRouter, "kube-router"}, {set.Bench, "bench"}} {
				if row.ref == "" {
					continue
				}
				info, err := images.Inspect(cmd.Context(), r, row.ref)
				if err != nil {
					return err
				}
				if info == nil {
					missing = append(missing, row.ref)
					fmt.Fprintf(tw, "%s\t%s\tmissing\t-\t-\n", row.ref, row.role)
					continue
				}
				content := "-"
				if len(info.Content) >= 12 {
					content = info.Content[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\tpresent\t%s\t%s\n", row.ref, row.role, images.HumanSize(info.Size), content)
			}
			for _, c := range set.Components {
				fmt.Fprintf(tw, "%s\tcomponent\tin node image\t-\t-\n", c)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if err := images.MissingError(missing); err != nil {
				fmt.Fprintln(s.Err, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "images", "", "offline or upstream (default: the set 'images build' last chose, else offline)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "cache dir holding the recorded choice")
	return cmd
}
