package kind

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// tunnel is an overlay device as `ip -d link show` describes it.
type tunnel struct {
	Device string
	Kind   string // vxlan, geneve, ipip, wireguard, ...
	ID     int    // VNI (vxlan, geneve); 0 when the kind has none
	Port   int    // UDP destination port; 0 when the kind has none
	MTU    int
}

func (t tunnel) String() string {
	s := t.Device + ", " + t.Kind
	if t.ID > 0 {
		s += fmt.Sprintf(" VNI %d", t.ID)
	}
	if t.Port > 0 {
		s += fmt.Sprintf(", UDP %d", t.Port)
	}
	return s
}

var (
	linkMTURE    = regexp.MustCompile(`^\d+: ([^:@]+)[^:]*: <[^>]*> mtu (\d+)`)
	linkKindRE   = regexp.MustCompile(`^\s+(vxlan|geneve|ipip|gre|wireguard|bareudp)\b(.*)$`)
	tunnelIDRE   = regexp.MustCompile(`\bid (\d+)\b`)
	tunnelPortRE = regexp.MustCompile(`\bdstport (\d+)\b`)
)

// parseTunnel reads `ip -d link show <dev>` output.
func parseTunnel(device, out string) (tunnel, error) {
	t := tunnel{Device: device}
	for _, line := range strings.Split(out, "\n") {
		if m := linkMTURE.FindStringSubmatch(line); m != nil {
			if m[1] != device {
				return t, fmt.Errorf("ip link shows %q, not %q", m[1], device)
			}
			t.MTU, _ = strconv.Atoi(m[2])
			continue
		}
		if m := linkKindRE.FindStringSubmatch(line); m != nil && t.Kind == "" {
			t.Kind = m[1]
			if id := tunnelIDRE.FindStringSubmatch(m[2]); id != nil {
				t.ID, _ = strconv.Atoi(id[1])
			}
			if p := tunnelPortRE.FindStringSubmatch(m[2]); p != nil {
				t.Port, _ = strconv.Atoi(p[1])
			}
		}
	}
	if t.MTU == 0 {
		return t, fmt.Errorf("no link line for %s in %q", device, strings.TrimSpace(out))
	}
	if t.Kind == "" {
		return t, fmt.Errorf("%s is not a tunnel device (no vxlan/geneve/ipip/gre/wireguard details)", device)
	}
	return t, nil
}
