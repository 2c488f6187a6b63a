package kind

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
)

var bridgeKindRE = regexp.MustCompile(`^\s+bridge\b`)

// parseBridge reads `ip -d link show <dev>` output and returns the
// bridge's MTU; a device that is not a Linux bridge is an error.
func parseBridge(device, out string) (mtu int, err error) {
	isBridge := false
	for _, line := range strings.Split(out, "\n") {
		if m := linkMTURE.FindStringSubmatch(line); m != nil {
			if m[1] != device {
				return 0, fmt.Errorf("ip link shows %q, not %q", m[1], device)
			}
			mtu, _ = strconv.Atoi(m[2])
			continue
		}
		if bridgeKindRE.MatchString(line) {
			isBridge = true
		}
	}
	if mtu == 0 {
		return 0, fmt.Errorf("no link line for %s in %q", device, strings.TrimSpace(out))
	}
	if !isBridge {
		return 0, fmt.Errorf("%s is not a Linux bridge", device)
	}
	return mtu, nil
}

// route is one IPv4 route as `ip -4 route show` prints it.
type route struct {
	Dst   netip.Prefix
	Via   netip.Addr
	Dev   string
	Proto string
}

// parseRoutes reads `ip -4 route show` output. Only routes with a prefix
// destination are kept ("default" and broadcast entries are not pod
// routes); a destination that does not parse is an error.
func parseRoutes(out string) ([]route, error) {
	var rs []route
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" || strings.Contains(f[0], ":") {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", line, err)
		}
		r := route{Dst: p}
		for i := 1; i+1 < len(f); i++ {
			switch f[i] {
			case "via":
				if r.Via, err = netip.ParseAddr(f[i+1]); err != nil {
					return nil, fmt.Errorf("route %q: %w", line, err)
				}
			case "dev":
				r.Dev = f[i+1]
			case "proto":
				r.Proto = f[i+1]
			}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// nodePodCIDR is a node's address and its allocated pod range.
type nodePodCIDR struct {
	Name string
	IP   netip.Addr
	CIDR netip.Prefix
}

// checkNodeRoutes checks that self routes every other node's podCIDR via
// that node's address (no overlay, no tunnel device) and returns the
// routes' protos.
func checkNodeRoutes(self string, routes []route, all []nodePodCIDR) (protos []string, err error) {
	for _, n := range all {
		if n.Name == self {
			continue
		}
		i := slices.IndexFunc(routes, func(r route) bool { return r.Dst == n.CIDR })
		if i < 0 {
			return nil, fmt.Errorf("node %s has no route to %s (podCIDR of %s)", self, n.CIDR, n.Name)
		}
		if r := routes[i]; r.Via != n.IP {
			return nil, fmt.Errorf("node %s routes %s (podCIDR of %s) via %v dev %s, not via %s", self, n.CIDR, n.Name, r.Via, r.Dev, n.IP)
		}
		if p := routes[i].Proto; p != "" && !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	return protos, nil
}

// observeRouted checks and describes a bridge + routed datapath: the
// bridge on every worker (the bridge plugin creates it with the first pod
// there; bench pods run on every worker) and, on every node, a route to
// each other node's podCIDR via that node's address.
func (p *Provider) observeRouted(ctx context.Context, in *lab.Instance, bridge string, nodeRoutes bool, cs kubernetes.Interface) (string, error) {
	var parts []string
	if bridge != "" {
		mtus := map[int]bool{}
		for _, n := range in.Nodes {
			if n.Role() != lab.RoleWorker {
				continue
			}
			res, err := n.Exec().Run(ctx, command.Cmd{Name: "ip", Args: []string{"-d", "link", "show", bridge}})
			if err != nil {
				return "", fmt.Errorf("bridge %s on node %s: %w", bridge, n.Name(), err)
			}
			mtu, err := parseBridge(bridge, string(res.Stdout))
			if err != nil {
				return "", fmt.Errorf("node %s: %w", n.Name(), err)
			}
			mtus[mtu] = true
		}
		var ms []string
		for m := range mtus {
			ms = append(ms, strconv.Itoa(m))
		}
		slices.Sort(ms)
		parts = append(parts, fmt.Sprintf("bridge %s, MTU %s", bridge, strings.Join(ms, "/")))
	}
	if nodeRoutes {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		var all []nodePodCIDR
		for _, kn := range list.Items {
			cidr, err := netip.ParsePrefix(kn.Spec.PodCIDR)
			if err != nil {
				return "", fmt.Errorf("node %s podCIDR %q: %w", kn.Name, kn.Spec.PodCIDR, err)
			}
			i := slices.IndexFunc(in.Nodes, func(n lab.Node) bool { return n.Name() == kn.Name })
			if i < 0 {
				return "", fmt.Errorf("node %s of the API server is not a node of the lab", kn.Name)
			}
			all = append(all, nodePodCIDR{Name: kn.Name, IP: in.Nodes[i].IP(), CIDR: cidr})
		}
		var protos []string
		for _, n := range in.Nodes {
			res, err := n.Exec().Run(ctx, command.Cmd{Name: "ip", Args: []string{"-4", "route", "show"}})
			if err != nil {
				return "", fmt.Errorf("routes on node %s: %w", n.Name(), err)
			}
			rs, err := parseRoutes(string(res.Stdout))
			if err != nil {
				return "", fmt.Errorf("node %s: %w", n.Name(), err)
			}
			ps, err := checkNodeRoutes(n.Name(), rs, all)
			if err != nil {
				return "", err
			}
			for _, pr := range ps {
				if !slices.Contains(protos, pr) {
					protos = append(protos, pr)
				}
			}
		}
		s := "podCIDR routes via node IPs, no overlay"
		if len(protos) > 0 {
			s += ", proto " + strings.Join(protos, "/")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; "), nil
}
