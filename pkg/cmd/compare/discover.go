package compare

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/netplan"
)

// netnsRunLabs names the netns labs of run id that are up.
func netnsRunLabs(id string) ([]string, error) {
	names, err := netplan.ListNamespaces("cnl-" + id + "-")
	if err != nil {
		return nil, err
	}
	return labsOfNamespaces(id, names), nil
}

// labsOfNamespaces names the labs of run id among namespace names, from
// each lab's first node (cnl-<id>-<lab>-n1), host first.
func labsOfNamespaces(id string, names []string) []string {
	re := regexp.MustCompile("^" + regexp.QuoteMeta("cnl-"+id+"-") + `(.+)-n1$`)
	var labs []string
	for _, n := range names {
		if m := re.FindStringSubmatch(n); m != nil {
			labs = append(labs, m[1])
		}
	}
	return hostFirst(labs)
}

func hostFirst(labs []string) []string {
	slices.Sort(labs)
	if i := slices.Index(labs, cmp.HostLab); i > 0 {
		labs = append([]string{cmp.HostLab}, slices.Delete(labs, i, i+1)...)
	}
	return labs
}

// discoverRun is what `compare --run ID` without --cni measures: the labs
// of that run that are up, found by their names, and the provider they
// are on (want: auto, or the one asked for).
func discoverRun(ctx context.Context, id, want string) (labs []string, provider string, err error) {
	found := map[string][]string{}
	if want == "auto" || want == "netns" {
		l, err := netnsRunLabs(id)
		if err != nil {
			return nil, "", err
		}
		if len(l) > 0 {
			found["netns"] = l
		}
	}
	if want == "auto" || want == "kind" {
		if images.CheckEngine(ctx, command.Exec{}) == nil {
			kp := kind.New(kind.ImagesFrom(images.Offline()), command.Exec{}, nil)
			l, err := kp.RunLabs(ctx, id)
			if err != nil {
				return nil, "", err
			}
			if len(l) > 0 {
				found["kind"] = hostFirst(l)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, "", cli.WithCode(cli.ExitInvalid, fmt.Errorf("--run %s: no lab of that run is up (cnilab up prints the id)", id))
	case 2:
		return nil, "", cli.WithCode(cli.ExitInvalid, fmt.Errorf("--run %s: labs on netns (%v) and kind (%v): give --provider", id, found["netns"], found["kind"]))
	}
	for p, l := range found {
		return l, p, nil
	}
	return nil, "", nil
}
