package compare

import (
	"slices"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
)

// launcherGroup is labs whose probes start the same way.
type launcherGroup struct {
	launcher probe.Launcher
	labs     []*lab.Instance
}

// launcherGroups splits labs by how their probe starts: a lab's own
// launcher (kind pods run the bench image's cnilab) or else local, this
// machine's binary (netns labs share its filesystem). Groups keep the
// labs' order, and each lab's order within its group.
func launcherGroups(labs []*lab.Instance, local probe.Launcher) []launcherGroup {
	var out []launcherGroup
	for _, in := range labs {
		l := local
		if in.Probe != nil {
			l = *in.Probe
		}
		i := slices.IndexFunc(out, func(g launcherGroup) bool {
			return g.launcher.Path == l.Path && slices.Equal(g.launcher.Args, l.Args) && slices.Equal(g.launcher.Env, l.Env)
		})
		if i < 0 {
			out = append(out, launcherGroup{launcher: l})
			i = len(out) - 1
		}
		out[i].labs = append(out[i].labs, in)
	}
	return out
}
