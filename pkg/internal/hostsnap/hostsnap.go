// Package hostsnap records the host network namespace's configuration so
// tests can prove cnilab never changed it.
//
// It compares configuration, not state: packet and byte counters, bridge
// timers and address/route lifetimes are stripped. It also leaves out what
// Docker owns, because Docker changes its own links, routes and rules
// whenever a container comes or goes, and a kind test in another package of
// the same `go test ./...` (a parallel process) may be doing just that. What
// Docker owns is recognised by Docker's own conventions:
//   - links: bridges named docker0 or br-<12 hex> (Docker's names for its
//     bridge networks), veths named veth<7 hex> (Docker's names for the host
//     end of a container link) and any link enslaved to a Docker bridge;
//   - addresses and routes on those links, and routes into their subnets;
//   - IPv6 anycast routes the kernel derives once Docker turns IPv6
//     forwarding on (they follow the addresses, which are compared);
//   - iptables: chains whose names start with DOCKER, rules that jump to
//     them, rules that match a Docker link (-i/-o) or a Docker subnet
//     (-s/-d);
//   - nft: the tables iptables-nft manages (compared through iptables-save
//     instead) and tables named docker*.
//
// The guard therefore asserts "nothing that is not Docker's changed, and no
// cnilab (cnl-) state was left in the host namespace", which other tests'
// clusters cannot break.
package hostsnap

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Raw is the tools' output a snapshot is made of, keyed by the command.
type Raw map[string][]byte

// Snapshot is one reading of the host namespace's network configuration.
type Snapshot struct {
	raw Raw
	// sections is the configuration with counters and timers stripped but
	// Docker's state still in; filtering happens at compare time with the
	// Docker state of both readings, so a Docker network seen in only one of
	// them is still recognised.
	sections map[string][]item
	docker   dockerState
}

// item is one line of configuration and the Docker objects it belongs to
// or mentions.
type item struct {
	line string
	// ifaces are the links the item is on or matches (dev, -i/-o, master).
	ifaces []string
	// prefixes are the addresses the item matches (route dst, -s/-d).
	prefixes []netip.Prefix
	// dockerOwned is true for an iptables chain Docker owns, its rules and
	// rules that jump to it, and for the lines of an nft table that Docker
	// or iptables-nft manages.
	dockerOwned bool
}

// dockerState is what Docker owns in one reading.
type dockerState struct {
	ifaces map[string]bool
	nets   []netip.Prefix
}

func (d dockerState) union(o dockerState) dockerState {
	u := dockerState{ifaces: map[string]bool{}}
	for k := range d.ifaces {
		u.ifaces[k] = true
	}
	for k := range o.ifaces {
		u.ifaces[k] = true
	}
	u.nets = append(append(u.nets, d.nets...), o.nets...)
	return u
}

var (
	dockerBridgeName = regexp.MustCompile(`^(docker0|br-[0-9a-f]{12})$`)
	dockerVethName   = regexp.MustCompile(`^veth[0-9a-f]{7}$`)
)

// isDockerName reports whether name follows Docker's link naming, so a link
// that appeared or vanished between two tools' readings is still Docker's.
func isDockerName(name string) bool {
	return dockerBridgeName.MatchString(name) || dockerVethName.MatchString(name)
}

func (d dockerState) owns(it item) bool {
	if it.dockerOwned {
		return true
	}
	for _, i := range it.ifaces {
		if d.ifaces[i] || isDockerName(i) {
			return true
		}
	}
	for _, p := range it.prefixes {
		for _, n := range d.nets {
			if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
				return true
			}
		}
	}
	return false
}

// commands are the readings a snapshot takes. iptables first: Docker adds
// a container's rules after its network's bridge exists and removes them
// before the bridge, so reading the links later still finds the bridge a
// rule refers to.
var commands = [][]string{
	{"iptables-save"},
	{"ip6tables-save"},
	{"iptables", "-V"},
	{"nft", "list", "ruleset"},
	{"ip", "-d", "-j", "link", "show"},
	{"ip", "-j", "addr", "show"},
	{"ip", "-j", "-4", "route", "show", "table", "all"},
	{"ip", "-j", "-6", "route", "show", "table", "all"},
}

func key(args []string) string { return strings.Join(args, " ") }

// read runs the tools. A tool that is missing or fails is left out and
// logged: the same tool is then missing from both readings.
func read(t testing.TB) Raw {
	t.Helper()
	raw := Raw{}
	for _, args := range commands {
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			t.Logf("%v: %v (left out of the snapshot)", args, err)
			continue
		}
		raw[key(args)] = out
	}
	return raw
}

// Parse turns the tools' output into a snapshot.
func Parse(raw Raw) (Snapshot, error) {
	s := Snapshot{raw: raw, sections: map[string][]item{}, docker: dockerState{ifaces: map[string]bool{}}}
	if b, ok := raw[key(commands[4])]; ok {
		links, err := parseLinks(b, &s.docker)
		if err != nil {
			return Snapshot{}, fmt.Errorf("ip link: %w", err)
		}
		s.sections["links"] = links
	}
	if b, ok := raw[key(commands[5])]; ok {
		addrs, err := parseAddrs(b, &s.docker)
		if err != nil {
			return Snapshot{}, fmt.Errorf("ip addr: %w", err)
		}
		s.sections["addresses"] = addrs
	}
	for _, i := range []int{6, 7} {
		if b, ok := raw[key(commands[i])]; ok {
			routes, err := parseRoutes(b)
			if err != nil {
				return Snapshot{}, fmt.Errorf("%s: %w", key(commands[i]), err)
			}
			s.sections["routes"] = append(s.sections["routes"], routes...)
		}
	}
	for _, i := range []int{0, 1} {
		if b, ok := raw[key(commands[i])]; ok {
			s.sections[commands[i][0]] = parseIptablesSave(b)
		}
	}
	if b, ok := raw[key(commands[3])]; ok {
		nftBackend := strings.Contains(string(raw[key(commands[2])]), "nf_tables")
		s.sections["nft"] = parseNft(b, nftBackend)
	}
	return s, nil
}

// Config returns the snapshot's configuration, section by section, without
// what Docker owns according to d.
func (s Snapshot) config(d dockerState) map[string][]string {
	out := map[string][]string{}
	for name, items := range s.sections {
		var lines []string
		for _, it := range items {
			if !d.owns(it) {
				lines = append(lines, it.line)
			}
		}
		sort.Strings(lines)
		out[name] = lines
	}
	return out
}

// Diff describes how after's configuration differs from before's, leaving
// out Docker's state in either; empty means unchanged.
func Diff(before, after Snapshot) string {
	d := before.docker.union(after.docker)
	b, a := before.config(d), after.config(d)
	names := map[string]bool{}
	for n := range b {
		names[n] = true
	}
	for n := range a {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var out strings.Builder
	for _, n := range sorted {
		removed, added := setDiff(b[n], a[n])
		if len(removed)+len(added) == 0 {
			continue
		}
		fmt.Fprintf(&out, "== %s\n", n)
		for _, l := range removed {
			fmt.Fprintf(&out, "- %s\n", l)
		}
		for _, l := range added {
			mark := ""
			if strings.Contains(strings.ToLower(l), "cnl") {
				mark = "   <- cnilab state left in the host namespace"
			}
			fmt.Fprintf(&out, "+ %s%s\n", l, mark)
		}
	}
	return out.String()
}

// setDiff returns the lines only in a and only in b (both sorted).
func setDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		count[l]--
	}
	for _, l := range a {
		if count[l] > 0 {
			onlyA = append(onlyA, l)
			count[l]--
		}
	}
	for _, l := range b {
		if count[l] < 0 {
			onlyB = append(onlyB, l)
			count[l]++
		}
	}
	return onlyA, onlyB
}

// settle bounds how long Take and Check wait for Docker's in-flight
// changes (a container starting while the tools read) to settle.
const (
	settleReadings = 5
	settlePause    = 300 * time.Millisecond
)

func take(t testing.TB) Snapshot {
	t.Helper()
	s, err := Parse(read(t))
	if err != nil {
		t.Fatalf("host snapshot: %v", err)
	}
	return s
}

// Take reads the host namespace's configuration. It reads until two
// consecutive readings agree (bounded), so a reading taken while Docker was
// half-way through adding a container does not become the reference.
func Take(t testing.TB) Snapshot {
	t.Helper()
	s := take(t)
	for i := 1; i < settleReadings; i++ {
		next := take(t)
		if Diff(s, next) == "" {
			return next
		}
		time.Sleep(settlePause)
		s = next
	}
	return s
}

// Check reads the host namespace again and fails t if its configuration,
// leaving out Docker's, differs from before. A difference must persist over
// several readings: a Docker change in flight can make one reading
// inconsistent, a change cnilab left behind stays.
func Check(t testing.TB, before Snapshot) {
	t.Helper()
	var diff string
	for i := 0; i < settleReadings; i++ {
		if i > 0 {
			time.Sleep(settlePause)
		}
		if diff = Diff(before, take(t)); diff == "" {
			return
		}
	}
	t.Errorf("host network configuration changed (Docker's own state left out; - before, + after):\n%s", diff)
}

// ---- parsers ----

// dropKeys removes volatile fields from a decoded ip -j object: counters,
// timers and lifetimes are state, not configuration.
func dropKeys(m map[string]any) {
	for k, v := range m {
		switch {
		case strings.HasSuffix(k, "_timer"), k == "stats", k == "stats64",
			k == "valid_life_time", k == "preferred_life_time", k == "expires":
			delete(m, k)
			continue
		}
		switch vv := v.(type) {
		case map[string]any:
			dropKeys(vv)
		case []any:
			for _, e := range vv {
				if em, ok := e.(map[string]any); ok {
					dropKeys(em)
				}
			}
		}
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func canonical(m map[string]any) string {
	b, err := json.Marshal(m) // map keys come out sorted
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(b)
}

func parseLinks(b []byte, d *dockerState) ([]item, error) {
	var links []map[string]any
	if err := json.Unmarshal(b, &links); err != nil {
		return nil, err
	}
	// Docker bridges first, so their ports are recognised by master.
	for _, l := range links {
		info, _ := l["linkinfo"].(map[string]any)
		if name := str(l, "ifname"); info != nil && str(info, "info_kind") == "bridge" && dockerBridgeName.MatchString(name) {
			d.ifaces[name] = true
		}
	}
	var out []item
	for _, l := range links {
		name := str(l, "ifname")
		info, _ := l["linkinfo"].(map[string]any)
		kind := ""
		if info != nil {
			kind = str(info, "info_kind")
		}
		if (kind == "veth" && dockerVethName.MatchString(name)) || d.ifaces[str(l, "master")] {
			d.ifaces[name] = true
		}
		dropKeys(l)
		out = append(out, item{line: canonical(l), ifaces: []string{name, str(l, "master")}})
	}
	return out, nil
}

func parseAddrs(b []byte, d *dockerState) ([]item, error) {
	var links []map[string]any
	if err := json.Unmarshal(b, &links); err != nil {
		return nil, err
	}
	var out []item
	for _, l := range links {
		name := str(l, "ifname")
		infos, _ := l["addr_info"].([]any)
		for _, e := range infos {
			a, ok := e.(map[string]any)
			if !ok {
				continue
			}
			dropKeys(a)
			local := str(a, "local")
			plen, _ := a["prefixlen"].(float64)
			if d.ifaces[name] || isDockerName(name) {
				if p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", local, int(plen))); err == nil && !p.Addr().IsLinkLocalUnicast() {
					d.nets = append(d.nets, p.Masked())
				}
			}
			out = append(out, item{line: name + " " + canonical(a), ifaces: []string{name}})
		}
	}
	return out, nil
}

func parseRoutes(b []byte) ([]item, error) {
	var routes []map[string]any
	if err := json.Unmarshal(b, &routes); err != nil {
		return nil, err
	}
	var out []item
	for _, r := range routes {
		// The kernel derives an IPv6 subnet-router anycast route in the
		// local table for every address prefix while IPv6 forwarding is
		// on, and Docker turns forwarding on for any IPv6 network (kind's
		// has one). They follow the addresses, which are compared.
		if str(r, "type") == "anycast" && str(r, "table") == "local" {
			continue
		}
		dropKeys(r)
		it := item{line: canonical(r), ifaces: []string{str(r, "dev")}}
		if p, ok := prefixOf(str(r, "dst")); ok {
			it.prefixes = append(it.prefixes, p)
		}
		out = append(out, it)
	}
	return out, nil
}

// prefixOf parses an address or prefix as ip and iptables print them
// ("10.0.0.0/8", "172.17.0.2", "172.17.0.2/32"); "default" and names are
// not prefixes.
func prefixOf(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

var chainCounters = regexp.MustCompile(`\s*\[\d+:\d+\]\s*$`)

// parseIptablesSave keeps tables, chain policies and rules, without
// comments (iptables-save stamps the time) or counters.
func parseIptablesSave(b []byte) []item {
	var out []item
	table := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
			continue
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			continue
		case strings.HasPrefix(line, ":"):
			line = chainCounters.ReplaceAllString(line, "")
			chain, _, _ := strings.Cut(line[1:], " ")
			out = append(out, item{line: table + " " + line, dockerOwned: strings.HasPrefix(chain, "DOCKER")})
			continue
		}
		out = append(out, iptablesRule(table, line))
	}
	return out
}

// iptablesRule records which chains, links and addresses a rule refers to.
func iptablesRule(table, line string) item {
	it := item{line: table + " " + line}
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		v := f[i+1]
		switch f[i] {
		case "-A", "-I", "-j", "-g", "--jump", "--goto":
			if strings.HasPrefix(v, "DOCKER") {
				it.dockerOwned = true
			}
		case "-i", "-o", "--in-interface", "--out-interface":
			it.ifaces = append(it.ifaces, strings.TrimSuffix(v, "+"))
		case "-s", "-d", "--source", "--destination":
			for _, a := range strings.Split(v, ",") {
				if p, ok := prefixOf(a); ok {
					it.prefixes = append(it.prefixes, p)
				}
			}
		}
	}
	return it
}

var (
	nftCounter = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	nftExpires = regexp.MustCompile(` expires \S+`)
	nftQuota   = regexp.MustCompile(` used \d+ \S+`)
)

// iptablesNftTables are the tables iptables-nft creates; with that backend
// iptables-save shows their rules, so nft's view of them is left out.
var iptablesNftTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// parseNft keeps every line of `nft list ruleset` with counters, set
// element expiry and quota usage stripped, each prefixed with its table and
// its chain, set or map, so a rule that moves is a change.
func parseNft(b []byte, iptablesNft bool) []item {
	var out []item
	table, block, owned := "", "", false
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "table "):
			table = strings.TrimSuffix(strings.TrimPrefix(l, "table "), " {")
			fam, name, _ := strings.Cut(table, " ")
			owned = strings.HasPrefix(name, "docker") ||
				(iptablesNft && (fam == "ip" || fam == "ip6") && iptablesNftTables[name])
			block = ""
		case strings.HasSuffix(l, "{") && (strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "set ") || strings.HasPrefix(l, "map ") || strings.HasPrefix(l, "flowtable ")):
			block = strings.TrimSuffix(l, " {")
		}
		l = nftCounter.ReplaceAllString(l, "counter")
		l = nftExpires.ReplaceAllString(l, "")
		l = nftQuota.ReplaceAllString(l, "")
		out = append(out, item{line: table + " / " + block + ": " + l, dockerOwned: owned})
	}
	return out
}
