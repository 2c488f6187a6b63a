package compare

import (
	"testing"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
)

// TestLauncherGroups: in a netns,kind run the netns labs' probes are this
// machine's binary and the kind labs' the bench image's; neither may take
// the other's (a netns lab handed /usr/local/bin/cnilab from a kind pod
// fails every policy probe with "no such file").
func TestLauncherGroups(t *testing.T) {
	local := probe.Launcher{Path: "/work/bin/cnilab", Args: []string{"probe"}}
	inPod := &probe.Launcher{Path: "/usr/local/bin/cnilab", Args: []string{"probe"}}
	labs := []*lab.Instance{
		{Name: "flannel", Provider: "netns"},
		{Name: "flannel", Provider: "kind", Probe: inPod},
		{Name: "kube-router", Provider: "netns"},
		{Name: "kube-router", Provider: "kind", Probe: &probe.Launcher{Path: "/usr/local/bin/cnilab", Args: []string{"probe"}}},
	}
	gs := launcherGroups(labs, local)
	if len(gs) != 2 {
		t.Fatalf("%d groups, want 2: %+v", len(gs), gs)
	}
	for _, g := range gs {
		for _, in := range g.labs {
			want := local.Path
			if in.Provider == "kind" {
				want = inPod.Path
			}
			if g.launcher.Path != want {
				t.Errorf("%s %s probes with %s, want %s", in.Provider, in.Name, g.launcher.Path, want)
			}
		}
		if len(g.labs) != 2 || g.labs[0].Name != "flannel" || g.labs[1].Name != "kube-router" {
			t.Errorf("group %s holds %d labs out of order", g.launcher.Path, len(g.labs))
		}
	}
}
