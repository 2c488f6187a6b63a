// Package iptables is kube-proxy's iptables mode rebuilt for cnilab: the
// same chain layout (KUBE-SERVICES -> KUBE-SVC-<hash> -> KUBE-SEP-<hash>,
// statistic-random ladders, KUBE-MARK-MASQ/KUBE-POSTROUTING, the filter
// jumps), rendered as iptables-restore input and loaded with
// iptables-restore --noflush, in full or partial syncs, as kube-proxy does.
package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/proxy"
)

// Chain names kube-proxy owns.
const (
	chainServices     = "KUBE-SERVICES"
	chainExtServices  = "KUBE-EXTERNAL-SERVICES"
	chainNodePorts    = "KUBE-NODEPORTS"
	chainPostrouting  = "KUBE-POSTROUTING"
	chainMarkMasq     = "KUBE-MARK-MASQ"
	chainForward      = "KUBE-FORWARD"
	chainProxyFirewal = "KUBE-PROXY-FIREWALL"

	// masqMark is 1 << 14, kube-proxy's default masquerade bit.
	masqMark = "0x4000"

	// largeClusterEndpoints: above this many endpoints kube-proxy stops
	// writing rule comments to keep the ruleset small; we do the same so
	// restore sizes at scale match.
	largeClusterEndpoints = 1000
)

// jump is one rule in a built-in chain that sends packets into a
// kube-proxy chain. kube-proxy ensures these with iptables -C/-I rather than
// in the restore payload, so a restore never touches other users' rules.
type jump struct {
	Table, Chain string
	Rule         []string
}

// jumps are kube-proxy's entry points, in the order it ensures them.
var jumps = []jump{
	{"filter", "INPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", chainProxyFirewal}},
	{"filter", "INPUT", []string{"-m", "comment", "--comment", "kubernetes health check service ports", "-j", chainNodePorts}},
	{"filter", "INPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", chainExtServices}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", chainProxyFirewal}},
	{"filter", "FORWARD", []string{"-m", "comment", "--comment", "kubernetes forwarding rules", "-j", chainForward}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", chainServices}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", chainExtServices}},
	{"filter", "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", chainProxyFirewal}},
	{"filter", "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", chainServices}},
	{"nat", "PREROUTING", []string{"-m", "comment", "--comment", "kubernetes service portals", "-j", chainServices}},
	{"nat", "OUTPUT", []string{"-m", "comment", "--comment", "kubernetes service portals", "-j", chainServices}},
	{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "kubernetes postrouting rules", "-j", chainPostrouting}},
}

var (
	filterTopChains = []string{chainServices, chainExtServices, chainForward, chainNodePorts, chainProxyFirewal}
	natTopChains    = []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq}
)

// hashName is kube-proxy's chain-name scheme: a prefix and the first 16
// characters of base32(sha256(...)), because chain names are limited to 28
// characters and must be stable across restarts.
func hashName(prefix string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "")))
	return prefix + base32.StdEncoding.EncodeToString(h[:])[:16]
}

func svcChain(s proxy.Service) string {
	return hashName("KUBE-SVC-", s.Key(), string(s.Protocol))
}

func sepChain(s proxy.Service, e proxy.Endpoint) string {
	return hashName("KUBE-SEP-", s.Key(), string(s.Protocol), e.String())
}

// serviceChains lists the nat chains a service owns.
func serviceChains(s proxy.Service) []string {
	if len(s.Endpoints) == 0 {
		return nil
	}
	out := []string{svcChain(s)}
	for _, e := range s.Endpoints {
		out = append(out, sepChain(s, e))
	}
	return out
}

// probability is kube-proxy's statistic-match value for rule i of n: each
// rule takes 1/(remaining endpoints), so every endpoint ends with 1/n.
func probability(i, n int) string {
	return fmt.Sprintf("%0.10f", 1.0/float64(n-i))
}

// renderOpts are the inputs to one restore payload.
type renderOpts struct {
	all         []proxy.Service
	clusterCIDR netip.Prefix
	// changed limits the per-service chains written to these keys; nil
	// means every service (a full sync).
	changed map[string]bool
	// deleteChains are nat chains to remove (-X) after this sync.
	deleteChains []string
}

func totalEndpoints(svcs []proxy.Service) int {
	n := 0
	for _, s := range svcs {
		n += len(s.Endpoints)
	}
	return n
}

type writer struct {
	buf      bytes.Buffer
	comments bool
}

func (w *writer) line(parts ...string) {
	for i, p := range parts {
		if i > 0 {
			w.buf.WriteByte(' ')
		}
		w.buf.WriteString(p)
	}
	w.buf.WriteByte('\n')
}

// comment returns the comment match, or nothing in large-cluster mode.
func (w *writer) comment(text string) string {
	if !w.comments {
		return ""
	}
	return `-m comment --comment "` + text + `"`
}

// rule writes "-A chain parts..." skipping empty parts (a dropped comment).
func (w *writer) rule(chain string, parts ...string) {
	w.buf.WriteString("-A ")
	w.buf.WriteString(chain)
	for _, p := range parts {
		if p == "" {
			continue
		}
		w.buf.WriteByte(' ')
		w.buf.WriteString(p)
	}
	w.buf.WriteByte('\n')
}

// render builds the iptables-restore --noflush input for one sync. Chains
// declared in a --noflush restore are created or flushed, so everything a
// sync declares is rewritten in full and everything else is left alone;
// that is what makes a partial sync partial.
func render(o renderOpts) []byte {
	w := &writer{comments: totalEndpoints(o.all) <= largeClusterEndpoints}
	proto := func(s proxy.Service) string { return string(s.Protocol) }

	// filter table: only services without endpoints get rules here.
	w.line("*filter")
	for _, c := range filterTopChains {
		w.line(":" + c + " - [0:0]")
	}
	w.rule(chainForward, "-m conntrack --ctstate INVALID -j DROP")
	w.rule(chainForward, w.comment("kubernetes forwarding rules"), "-m mark --mark "+masqMark+"/"+masqMark, "-j ACCEPT")
	w.rule(chainForward, w.comment("kubernetes forwarding conntrack rule"), "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	for _, s := range o.all {
		if len(s.Endpoints) > 0 {
			continue
		}
		w.rule(chainServices, "-d "+s.ClusterIP.String()+"/32", "-p "+proto(s), w.comment(s.Key()+" has no endpoints"),
			"-m "+proto(s), fmt.Sprintf("--dport %d", s.Port), "-j REJECT --reject-with icmp-port-unreachable")
	}
	w.line("COMMIT")

	w.line("*nat")
	for _, c := range natTopChains {
		w.line(":" + c + " - [0:0]")
	}
	for _, s := range o.all {
		if o.changed != nil && !o.changed[s.Key()] {
			continue
		}
		for _, c := range serviceChains(s) {
			w.line(":" + c + " - [0:0]")
		}
	}
	dels := append([]string(nil), o.deleteChains...)
	sort.Strings(dels)
	for _, c := range dels {
		// Declared (hence flushed) up front: a --noflush restore can only
		// delete a chain that is empty and no longer referenced.
		w.line(":" + c + " - [0:0]")
	}
	w.rule(chainPostrouting, "-m mark ! --mark "+masqMark+"/"+masqMark, "-j RETURN")
	w.rule(chainPostrouting, "-j MARK --xor-mark "+masqMark)
	w.rule(chainPostrouting, w.comment("kubernetes service traffic requiring SNAT"), "-j MASQUERADE --random-fully")
	w.rule(chainMarkMasq, "-j MARK --or-mark "+masqMark)

	for _, s := range o.all {
		if len(s.Endpoints) == 0 {
			continue
		}
		svc := svcChain(s)
		vip := "-d " + s.ClusterIP.String() + "/32"
		dport := fmt.Sprintf("--dport %d", s.Port)
		// KUBE-SERVICES is a top-level chain: rewritten in every sync.
		w.rule(chainServices, vip, "-p "+proto(s), w.comment(s.Key()+" cluster IP"), "-m "+proto(s), dport, "-j "+svc)
		if o.changed != nil && !o.changed[s.Key()] {
			continue
		}
		if o.clusterCIDR.IsValid() {
			w.rule(svc, "! -s "+o.clusterCIDR.String(), vip, "-p "+proto(s), w.comment(s.Key()+" cluster IP"), "-m "+proto(s), dport, "-j "+chainMarkMasq)
		}
		n := len(s.Endpoints)
		for i, e := range s.Endpoints {
			stat := ""
			if i < n-1 {
				stat = "-m statistic --mode random --probability " + probability(i, n)
			}
			w.rule(svc, w.comment(s.Key()+" -> "+e.String()), stat, "-j "+sepChain(s, e))
		}
		for _, e := range s.Endpoints {
			sep := sepChain(s, e)
			w.rule(sep, "-s "+e.IP.String()+"/32", w.comment(s.Key()), "-j "+chainMarkMasq)
			w.rule(sep, "-p "+proto(s), w.comment(s.Key()), "-m "+proto(s), "-j DNAT --to-destination "+e.String())
		}
	}
	// kube-proxy requires this to be the last rule of KUBE-SERVICES.
	w.rule(chainServices, w.comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), "-m addrtype --dst-type LOCAL", "-j "+chainNodePorts)
	for _, c := range dels {
		w.line("-X " + c)
	}
	w.line("COMMIT")
	return w.buf.Bytes()
}
