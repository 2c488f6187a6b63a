// Package prereq says what a comparison needs installed on this machine,
// per provider, and whether it is there. `cnilab doctor` prints these
// checks and `cnilab compare` runs the same ones before it builds
// anything, so the two cannot disagree.
package prereq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/iperf"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
)

// ErrMissing marks a missing prerequisite (exit code 3).
var ErrMissing = errors.New("missing prerequisite")

// Check is one thing a run needs and whether this machine has it.
type Check struct {
	Name string
	OK   bool
	// Detail is where it was found when OK, else what to install or do.
	Detail string
	// Why says which part of the run needs it.
	Why string
}

// Need is what one run asks of the machine: its provider and the labs and
// scenarios it measures.
type Need struct {
	Provider  string // netns or kind
	Set       *config.Set
	Labs      []string
	Scenarios []string
}

// Host is how the checks look at this machine (fakes in tests).
type Host struct {
	Euid     func() int
	LookPath func(string) (string, error)
	Runner   command.Runner
}

// Real is this machine.
func Real() Host { return Host{Euid: os.Geteuid, LookPath: exec.LookPath, Runner: command.Exec{}} }

// tool is an external program and the Debian package that has it.
type tool struct{ name, pkg, why string }

// Checks lists what n needs on h, each checked, in a stable order.
func Checks(ctx context.Context, h Host, n Need) ([]Check, error) {
	switch n.Provider {
	case "netns":
		return netns(ctx, h, n), nil
	case "kind":
		return kind(ctx, h, n), nil
	}
	return nil, fmt.Errorf("provider %q: netns or kind", n.Provider)
}

// Err is nil when every check passed, else one error (wrapping
// ErrMissing) that says what to install.
func Err(provider string, cs []Check) error {
	var miss []string
	for _, c := range cs {
		if !c.OK {
			miss = append(miss, c.Name+": "+c.Detail)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	return fmt.Errorf("%w for the %s provider: %s", ErrMissing, provider, strings.Join(miss, "; "))
}

func netns(ctx context.Context, h Host, n Need) []Check {
	var cs []Check
	if h.Euid() == 0 {
		cs = append(cs, Check{Name: "root", OK: true, Why: "creating the labs' network namespaces"})
	} else {
		cs = append(cs, Check{Name: "root", Detail: "run as root or with sudo", Why: "creating the labs' network namespaces"})
	}
	var tools []tool
	kinds := map[string]bool{}
	udp := false
	for _, name := range n.Scenarios {
		sc := n.Set.Scenarios[name]
		if sc == nil {
			continue
		}
		kinds[sc.Kind] = true
		if sc.Kind == "throughput" {
			for _, id := range sc.Tests {
				if t, err := throughput.ParseTest(id, 1); err == nil && !t.Idle && t.Protocol == iperf.UDP {
					udp = true
				}
			}
		}
	}
	if kinds["throughput"] {
		tools = append(tools, tool{"iperf3", "iperf3", "the throughput windows"})
	}
	// Service proxies the labs program (the fallback too: it is what runs
	// on a kernel without the first choice).
	proxies := map[string][]string{}
	for _, name := range n.Labs {
		l := n.Set.Labs[name]
		if l == nil || l.Netns.Unavailable != "" {
			continue
		}
		for _, p := range []string{l.Netns.Services, l.Netns.ServicesFallback} {
			if p != "" && !slices.Contains(proxies[p], name) {
				proxies[p] = append(proxies[p], name)
			}
		}
	}
	if labs := append(slices.Clone(proxies["iptables"]), proxies["iptables-nft"]...); len(labs) > 0 {
		why := "the iptables Services of " + strings.Join(sorted(labs), ", ")
		tools = append(tools, tool{"iptables-restore", "iptables", why}, tool{"iptables-save", "iptables", why}, tool{"iptables", "iptables", why})
	}
	if labs := proxies["iptables-legacy"]; len(labs) > 0 {
		why := "the iptables-legacy Services of " + strings.Join(sorted(labs), ", ")
		tools = append(tools, tool{"iptables-legacy-restore", "iptables", why}, tool{"iptables-legacy-save", "iptables", why}, tool{"iptables-legacy", "iptables", why})
	}
	if labs := proxies["nftables"]; len(labs) > 0 {
		tools = append(tools, tool{"nft", "nftables", "the nftables Services of " + strings.Join(sorted(labs), ", ")})
	}
	if kinds["services-scale"] {
		why := "services-scale's iptables and nftables proxies"
		tools = append(tools, tool{"iptables-legacy-restore", "iptables", why}, tool{"iptables-legacy-save", "iptables", why}, tool{"iptables-legacy", "iptables", why}, tool{"nft", "nftables", why})
	}
	seen := map[string]bool{}
	for _, t := range tools {
		if seen[t.name] {
			continue
		}
		seen[t.name] = true
		c := Check{Name: t.name, Why: t.why}
		if p, err := h.LookPath(t.name); err != nil {
			c.Detail = "apt-get install -y " + t.pkg
		} else {
			c.OK, c.Detail = true, p
		}
		if t.name == "iperf3" && c.OK {
			c = iperfVersion(ctx, h, c, udp)
		}
		cs = append(cs, c)
	}
	return cs
}

// iperfVersion runs iperf3 --version: UDP tests need iperf3 ≥ 3.11.
func iperfVersion(ctx context.Context, h Host, c Check, udp bool) Check {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := h.Runner.Run(ctx, command.Cmd{Name: c.Name, Args: []string{"--version"}})
	v, perr := iperf.ParseVersion(res.Stdout)
	switch {
	case perr != nil && err != nil:
		return Check{Name: c.Name, Why: c.Why, Detail: fmt.Sprintf("%s --version failed (%v): reinstall iperf3", c.Name, err)}
	case perr != nil:
		return Check{Name: c.Name, Why: c.Why, Detail: perr.Error()}
	case udp && !v.AtLeast(iperf.MinUDP.Major, iperf.MinUDP.Minor):
		return Check{Name: c.Name, Why: c.Why + ", UDP tests",
			Detail: fmt.Sprintf("iperf3 %s misreports UDP: install iperf3 ≥ %s, or leave the UDP tests out", v, iperf.MinUDP)}
	}
	c.Detail = fmt.Sprintf("%s (iperf3 %s)", c.Detail, v)
	return c
}

func kind(ctx context.Context, h Host, n Need) []Check {
	var noRecipe []string
	for _, name := range n.Labs {
		// The host baseline needs no recipe: the kind provider carries it
		// as hostNetwork pods in one of the run's clusters.
		if l := n.Set.Labs[name]; l != nil && l.Kind == nil && name != "host" {
			noRecipe = append(noRecipe, name)
		}
	}
	cs := []Check{{Name: "kind recipes", OK: len(noRecipe) == 0, Why: "building each lab's cluster (labs/*.yaml kind:)"}}
	if len(noRecipe) > 0 {
		cs[0].Detail = strings.Join(sorted(noRecipe), ", ") + " cannot run on kind yet: leave them out or use --provider netns"
	}
	docker := Check{Name: "docker", Why: "the kind nodes (Docker containers)"}
	p, err := h.LookPath("docker")
	if err != nil {
		docker.Detail = "apt-get install -y docker.io (or run make kind-host as root)"
		return append(cs, docker)
	}
	docker.OK, docker.Detail = true, p
	cs = append(cs, docker)
	engine := Check{Name: "docker answers", Why: "the kind nodes (Docker containers)"}
	if err := images.CheckEngine(ctx, h.Runner); err != nil {
		engine.Detail = err.Error() + " (make kind-host starts one)"
		return append(cs, engine)
	}
	engine.OK, engine.Detail = true, "docker version reports a server"
	cs = append(cs, engine)
	set := Check{Name: "kind images", Why: "running kind clusters offline"}
	missing, err := images.Present(ctx, h.Runner)
	switch {
	case err != nil:
		set.Detail = err.Error()
	case len(missing) > 0:
		set.Detail = images.MissingError(missing).Error() + ": make images builds them"
	default:
		set.OK, set.Detail = true, "present"
	}
	return append(cs, set)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
