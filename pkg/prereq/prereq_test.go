package prereq

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/scenarios"
)

func host(euid int, installed map[string]string) Host {
	f := &command.Fake{Responses: map[string]command.FakeResponse{}}
	if v, ok := installed["iperf3"]; ok {
		f.Responses["iperf3"] = command.FakeResponse{Stdout: "iperf " + v + " (cJSON 1.7.15)\n"}
	}
	return Host{
		Euid: func() int { return euid },
		LookPath: func(name string) (string, error) {
			if _, ok := installed[name]; ok {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		Runner: f,
	}
}

// TestNetnsNeeds: the netns checks follow the labs and scenarios of the
// run: iptables only for labs whose Services it carries, iperf3's version
// only matters with UDP tests, nothing for a proxy no lab uses.
func TestNetnsNeeds(t *testing.T) {
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"iperf3": "3.12", "iptables-restore": "", "iptables-save": "", "iptables": "", "nft": "",
		"iptables-legacy-restore": "", "iptables-legacy-save": "", "iptables-legacy": ""}
	without := func(names ...string) map[string]string {
		m := map[string]string{}
		for k, v := range all {
			m[k] = v
		}
		for _, n := range names {
			delete(m, n)
		}
		return m
	}
	cases := []struct {
		name      string
		h         Host
		labs, scs []string
		missing   []string // names of failed checks, in order
	}{
		{"all there", host(0, all), []string{"host", "flannel", "cilium"}, []string{"throughput", "services-scale"}, nil},
		{"not root", host(1000, all), []string{"host"}, []string{"throughput"}, []string{"root"}},
		{"host lab needs no iptables", host(0, without("iptables-restore", "iptables-save", "iptables", "nft")), []string{"host", "cilium"}, []string{"throughput"}, nil},
		{"flannel's iptables Services", host(0, without("iptables-restore")), []string{"host", "flannel"}, []string{"throughput"}, []string{"iptables-restore"}},
		{"latency alone needs no iperf3", host(0, without("iperf3")), []string{"host"}, []string{"latency"}, nil},
		{"old iperf3 with UDP tests", host(0, without()), []string{"host"}, []string{"throughput"}, nil},
		{"services-scale", host(0, without("nft", "iptables-legacy-restore")), []string{"host"}, []string{"services-scale"}, []string{"iptables-legacy-restore", "nft"}},
	}
	// A lab pinned to iptables-legacy needs the legacy tools.
	legacy := *set.Labs["flannel"]
	legacy.Name, legacy.Netns.Services = "flannel-legacy", "iptables-legacy"
	set.Labs["flannel-legacy"] = &legacy
	cases = append(cases, struct {
		name      string
		h         Host
		labs, scs []string
		missing   []string
	}{"iptables-legacy Services", host(0, without("iptables-legacy-restore")), []string{"host", "flannel-legacy"}, []string{"throughput"}, []string{"iptables-legacy-restore"}})
	old := host(0, all)
	old.Runner.(*command.Fake).Responses["iperf3"] = command.FakeResponse{Stdout: "iperf 3.9\n"}
	cases = append(cases, struct {
		name      string
		h         Host
		labs, scs []string
		missing   []string
	}{"iperf3 3.9 with UDP tests", old, []string{"host"}, []string{"throughput"}, []string{"iperf3"}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := Checks(context.Background(), tc.h, Need{Provider: "netns", Set: set, Labs: tc.labs, Scenarios: tc.scs})
			if err != nil {
				t.Fatal(err)
			}
			var missing []string
			for _, c := range cs {
				if !c.OK {
					missing = append(missing, c.Name)
				}
			}
			if strings.Join(missing, ",") != strings.Join(tc.missing, ",") {
				t.Errorf("missing %v, want %v (checks %+v)", missing, tc.missing, cs)
			}
			err = Err("netns", cs)
			if (err != nil) != (len(tc.missing) > 0) || (err != nil && !errors.Is(err, ErrMissing)) {
				t.Errorf("Err = %v", err)
			}
			for _, m := range tc.missing {
				if !strings.Contains(err.Error(), m+": ") {
					t.Errorf("error does not say what to install for %s: %v", m, err)
				}
			}
		})
	}
}

// TestKindNeeds: kind needs recipes for the labs, docker, an engine that
// answers and the image set; each absent one says what to do.
func TestKindNeeds(t *testing.T) {
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	h := host(0, map[string]string{"docker": ""})
	h.Runner.(*command.Fake).Responses["docker"] = command.FakeResponse{Err: errors.New("Cannot connect to the Docker daemon")}
	cs, err := Checks(context.Background(), h, Need{Provider: "kind", Set: set, Labs: []string{"flannel-host-gw", "flannel"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range cs {
		got[c.Name] = c.OK
	}
	if got["kind recipes"] || !got["docker"] || got["docker answers"] {
		t.Errorf("checks %+v: want recipes missing (flannel-host-gw has none), docker found, engine not answering", cs)
	}
	// The host baseline needs no recipe: kind carries it in a lab's cluster.
	cs, err = Checks(context.Background(), h, Need{Provider: "kind", Set: set, Labs: []string{"host", "flannel"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "kind recipes" && !c.OK {
			t.Errorf("host counted as a lab without a kind recipe: %+v", c)
		}
	}
	if _, err := Checks(context.Background(), h, Need{Provider: "cluster", Set: set}); err == nil {
		t.Error("provider cluster accepted")
	}
}
