// Package nftables is kube-proxy's nftables mode rebuilt for cnilab: its own
// table "ip kube-proxy", a service-ips verdict map dispatching on
// daddr . l4proto . dport, one chain per service port choosing an endpoint
// with "numgen random mod N vmap", and one DNAT chain per endpoint.
// Transactions are built with sigs.k8s.io/knftables and, on a real kernel,
// fed to "nft -f -" through command.Runner inside the node namespace.
package nftables

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/results"
)

// Names from kube-proxy's nftables layout.
const (
	tableName          = "kube-proxy"
	servicesChain      = "services"
	masqueradingChain  = "masquerading"
	markMasqChain      = "mark-for-masquerade"
	clusterIPsCheck    = "cluster-ips-check"
	svcEndpointsCheck  = "service-endpoints-check"
	rejectChain        = "reject-chain"
	serviceIPsMap      = "service-ips"
	noEndpointSvcMap   = "no-endpoint-services"
	clusterIPsSet      = "cluster-ips"
	masqMark           = "0x4000"
	ipProtoPortMapType = "ipv4_addr . inet_proto . inet_service : verdict"
)

// Backend is one node's nftables: knftables.Fake in tests (wrapped by
// NewFakeBackend), ExecBackend on a real kernel.
type Backend interface {
	NewTransaction() *knftables.Transaction
	Run(ctx context.Context, tx *knftables.Transaction) error
	// Count reads the size of table ip kube-proxy back.
	Count(ctx context.Context) (proxy.Counts, error)
}

// Proxy is kube-proxy's nftables mode on a set of nodes.
type Proxy struct {
	nodes       []Backend
	clusterCIDR string
	idx         *proxy.Index
	state       tableState
	// LastOps is the number of operations in the last Update's
	// transaction, or in all of the last Sync's transactions on a node.
	LastOps int
	// Chunk is how many services' endpoint-choice rules a large Sync puts
	// in one transaction; 0 means DefaultChunk.
	Chunk int
}

// tableState is what the proxy knows of table ip kube-proxy.
type tableState int

const (
	tableNone   tableState = iota // absent (or unknown before the first write)
	tableOK                       // holds exactly idx
	tableBroken                   // a Sync failed part way
)

var _ proxy.Proxy = (*Proxy)(nil)

// New returns an nftables proxy writing to one backend per node.
func New(nodes []Backend, t proxy.Target) (*Proxy, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("nftables proxy: no node")
	}
	p := &Proxy{nodes: nodes, idx: proxy.NewIndex()}
	if t.ClusterCIDR.IsValid() {
		p.clusterCIDR = t.ClusterCIDR.String()
	}
	return p, nil
}

// NewExec returns an nftables proxy running nft in each target namespace.
func NewExec(t proxy.Target) (*Proxy, error) {
	var nodes []Backend
	for _, ns := range t.Netns {
		nodes = append(nodes, NewExecBackend(t.Runner, ns))
	}
	return New(nodes, t)
}

// Name implements proxy.Proxy.
func (p *Proxy) Name() string { return "nftables" }

// NamespaceScoped implements proxy.NamespaceScoped: the rules live in the
// node namespaces and go with them.
func (p *Proxy) NamespaceScoped() bool { return true }

// Fidelity implements proxy.Proxy.
func (p *Proxy) Fidelity() results.Fidelity { return results.Faithful }

// hash8 is kube-proxy's chain-name hash: the first 8 characters of the
// base32 SHA-256 of the readable name it prefixes.
func hash8(name string) string {
	h := sha256.Sum256([]byte(name))
	return base32.StdEncoding.EncodeToString(h[:])[:8]
}

// portPath is kube-proxy's readable tail of chain names: ns/name/proto/port.
func portPath(s proxy.Service) string {
	return s.Namespace + "/" + s.Name + "/" + string(s.Protocol) + "/" + s.PortName
}

// serviceChainName is kube-proxy's nftables service chain name,
// service-<hash8(ns/svc/proto/port)>-ns/svc/proto/port, so a ruleset
// diffed against a real node shows the same chains.
func serviceChainName(s proxy.Service) string {
	name := portPath(s)
	return "service-" + hash8(name) + "-" + name
}

// endpointChainName is kube-proxy's endpoint chain name,
// endpoint-<hash8(ns/svc/proto/port__ip/port)>-ns/svc/proto/port__ip/port.
func endpointChainName(s proxy.Service, e proxy.Endpoint) string {
	name := portPath(s) + "__" + e.IP.String() + "/" + fmt.Sprint(e.Port)
	return "endpoint-" + hash8(name) + "-" + name
}

func frontKey(s proxy.Service) []string {
	return []string{s.ClusterIP.String(), string(s.Protocol), fmt.Sprint(s.Port)}
}

func ptr[T any](v T) *T { return &v }

// addBase adds the table's fixed skeleton: base chains hooked at
// kube-proxy's priorities, dispatch chains, maps and masquerading.
func (p *Proxy) addBase(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	base := []struct {
		name string
		typ  knftables.BaseChainType
		hook knftables.BaseChainHook
		prio knftables.BaseChainPriority
		rule []string
	}{
		{"filter-prerouting", knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10", nil},
		{"filter-input", knftables.FilterType, knftables.InputHook, knftables.DNATPriority + "-10", []string{"ct state new jump " + svcEndpointsCheck}},
		{"filter-forward", knftables.FilterType, knftables.ForwardHook, knftables.DNATPriority + "-10", []string{"ct state new jump " + svcEndpointsCheck, "ct state new jump " + clusterIPsCheck}},
		{"filter-output", knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10", []string{"ct state new jump " + svcEndpointsCheck, "ct state new jump " + clusterIPsCheck}},
		{"nat-prerouting", knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority, []string{"jump " + servicesChain}},
		{"nat-output", knftables.NATType, knftables.OutputHook, knftables.DNATPriority, []string{"jump " + servicesChain}},
		{"nat-postrouting", knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority, []string{"jump " + masqueradingChain}},
	}
	for _, c := range []string{servicesChain, masqueradingChain, markMasqChain, clusterIPsCheck, svcEndpointsCheck, rejectChain} {
		tx.Add(&knftables.Chain{Name: c})
		tx.Flush(&knftables.Chain{Name: c})
	}
	tx.Add(&knftables.Map{Name: serviceIPsMap, Type: ipProtoPortMapType})
	tx.Add(&knftables.Map{Name: noEndpointSvcMap, Type: ipProtoPortMapType})
	tx.Add(&knftables.Set{Name: clusterIPsSet, Type: "ipv4_addr"})
	for _, b := range base {
		tx.Add(&knftables.Chain{Name: b.name, Type: ptr(b.typ), Hook: ptr(b.hook), Priority: ptr(b.prio)})
		tx.Flush(&knftables.Chain{Name: b.name})
		for _, r := range b.rule {
			tx.Add(&knftables.Rule{Chain: b.name, Rule: r})
		}
	}
	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: "ip daddr . meta l4proto . th dport vmap @" + serviceIPsMap})
	tx.Add(&knftables.Rule{Chain: markMasqChain, Rule: "mark set mark or " + masqMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "mark and " + masqMark + " == 0 return"})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "mark set mark xor " + masqMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "masquerade fully-random"})
	tx.Add(&knftables.Rule{Chain: clusterIPsCheck, Rule: "ip daddr @" + clusterIPsSet + " reject"})
	tx.Add(&knftables.Rule{Chain: svcEndpointsCheck, Rule: "ip daddr . meta l4proto . th dport vmap @" + noEndpointSvcMap})
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})
}

// addService writes a service's chains and map elements. Existing chains
// are flushed and refilled, so this is also how a change is applied.
func (p *Proxy) addService(tx *knftables.Transaction, s proxy.Service) {
	tx.Add(&knftables.Element{Set: clusterIPsSet, Key: []string{s.ClusterIP.String()}})
	if len(s.Endpoints) == 0 {
		tx.Add(&knftables.Element{Map: noEndpointSvcMap, Key: frontKey(s), Value: []string{"goto " + rejectChain}})
		return
	}
	p.addChains(tx, s, true)
	p.addDispatch(tx, s)
	tx.Add(&knftables.Element{Map: serviceIPsMap, Key: frontKey(s), Value: []string{"goto " + serviceChainName(s)}})
}

// addChains writes s's endpoint chains and its service chain up to the
// endpoint choice; flush is needed only when the chains may exist.
func (p *Proxy) addChains(tx *knftables.Transaction, s proxy.Service, flush bool) {
	if len(s.Endpoints) == 0 {
		return
	}
	for _, e := range s.Endpoints {
		ec := endpointChainName(s, e)
		tx.Add(&knftables.Chain{Name: ec})
		if flush {
			tx.Flush(&knftables.Chain{Name: ec})
		}
		tx.Add(&knftables.Rule{Chain: ec, Rule: "ip saddr " + e.IP.String() + " jump " + markMasqChain})
		tx.Add(&knftables.Rule{Chain: ec, Rule: fmt.Sprintf("meta l4proto %s dnat to %s", s.Protocol, e)})
	}
	sc := serviceChainName(s)
	tx.Add(&knftables.Chain{Name: sc})
	if flush {
		tx.Flush(&knftables.Chain{Name: sc})
	}
	if p.clusterCIDR != "" {
		tx.Add(&knftables.Rule{Chain: sc, Rule: fmt.Sprintf("ip daddr %s %s dport %d ip saddr != %s jump %s", s.ClusterIP, s.Protocol, s.Port, p.clusterCIDR, markMasqChain)})
	}
}

// addDispatch appends the service chain's endpoint choice.
func (p *Proxy) addDispatch(tx *knftables.Transaction, s proxy.Service) {
	if len(s.Endpoints) == 0 {
		return
	}
	vm := make([]string, len(s.Endpoints))
	for i, e := range s.Endpoints {
		vm[i] = fmt.Sprintf("%d : goto %s", i, endpointChainName(s, e))
	}
	tx.Add(&knftables.Rule{Chain: serviceChainName(s), Rule: fmt.Sprintf("numgen random mod %d vmap { %s }", len(s.Endpoints), strings.Join(vm, " , "))})
}

// addElements makes s reachable: its ClusterIP and its service-ips (or
// no-endpoint-services) element.
func (p *Proxy) addElements(tx *knftables.Transaction, s proxy.Service) {
	tx.Add(&knftables.Element{Set: clusterIPsSet, Key: []string{s.ClusterIP.String()}})
	if len(s.Endpoints) == 0 {
		tx.Add(&knftables.Element{Map: noEndpointSvcMap, Key: frontKey(s), Value: []string{"goto " + rejectChain}})
		return
	}
	tx.Add(&knftables.Element{Map: serviceIPsMap, Key: frontKey(s), Value: []string{"goto " + serviceChainName(s)}})
}

// removeElements deletes old's map and set elements; it goes first so no
// verdict points at a chain about to be flushed or deleted.
func removeElements(tx *knftables.Transaction, old proxy.Service, keepIP bool) {
	if len(old.Endpoints) == 0 {
		tx.Delete(&knftables.Element{Map: noEndpointSvcMap, Key: frontKey(old)})
	} else {
		tx.Delete(&knftables.Element{Map: serviceIPsMap, Key: frontKey(old)})
	}
	if !keepIP {
		tx.Delete(&knftables.Element{Set: clusterIPsSet, Key: []string{old.ClusterIP.String()}})
	}
}

// removeChains deletes old's chains except those in keep; the service
// chain goes before the endpoint chains its vmap refers to.
func removeChains(tx *knftables.Transaction, old proxy.Service, keep map[string]bool) {
	for _, c := range chainsOf(old) {
		if !keep[c] {
			tx.Flush(&knftables.Chain{Name: c})
			tx.Delete(&knftables.Chain{Name: c})
		}
	}
}

func chainsOf(s proxy.Service) []string {
	if len(s.Endpoints) == 0 {
		return nil
	}
	out := []string{serviceChainName(s)}
	for _, e := range s.Endpoints {
		out = append(out, endpointChainName(s, e))
	}
	return out
}

// DefaultChunk is how many services' endpoint-choice rules go in one
// transaction of a large Sync (see Sync).
const DefaultChunk = 1000

// Sync implements proxy.Proxy: the table is deleted and written again.
//
// Up to Chunk services this is one atomic transaction. Beyond, it is
// split the way kube-proxy's cold start is being split upstream
// (kubernetes#139328), because each per-service "numgen ... vmap { }" is
// an anonymous set and the kernel's cost for binding one grows with the
// size of the transaction it is in (__nft_set_trans_bind walks the whole
// commit list), which makes a single transaction quadratic in N:
//
//  1. the table, its skeleton, every endpoint chain and every service
//     chain without its endpoint-choice rule;
//  2. the "numgen random mod N vmap" rules, Chunk services per
//     transaction;
//  3. the cluster-ips, no-endpoint-services and service-ips elements: the
//     services become reachable all at once, each already complete.
//
// Between 1 and 3 no VIP is translated. If a step fails the table is
// partial and only Sync or Close may follow.
func (p *Proxy) Sync(ctx context.Context, svcs []proxy.Service) error {
	idx := proxy.NewIndex()
	c, err := idx.Check(svcs, nil)
	if err != nil {
		return err
	}
	chunk := p.Chunk
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	p.idx, p.state = proxy.NewIndex(), tableBroken
	for _, n := range p.nodes {
		txs := p.syncTransactions(n, svcs, chunk)
		ops := 0
		for i, tx := range txs {
			ops += tx.NumOperations()
			if err := n.Run(ctx, tx); err != nil {
				return fmt.Errorf("nftables sync (transaction %d of %d): %w", i+1, len(txs), err)
			}
		}
		p.LastOps = ops
	}
	idx.Apply(c)
	p.idx, p.state = idx, tableOK
	return nil
}

// syncTransactions builds Sync's transactions for one node.
func (p *Proxy) syncTransactions(n Backend, svcs []proxy.Service, chunk int) []*knftables.Transaction {
	tx := n.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	p.addBase(tx)
	if len(svcs) <= chunk {
		for _, s := range svcs {
			p.addService(tx, s)
		}
		return []*knftables.Transaction{tx}
	}
	txs := []*knftables.Transaction{tx}
	for _, s := range svcs {
		p.addChains(tx, s, false)
	}
	for i := 0; i < len(svcs); i += chunk {
		tx := n.NewTransaction()
		for _, s := range svcs[i:min(i+chunk, len(svcs))] {
			p.addDispatch(tx, s)
		}
		txs = append(txs, tx)
	}
	tx = n.NewTransaction()
	for _, s := range svcs {
		p.addElements(tx, s)
	}
	return append(txs, tx)
}

// Update implements proxy.Proxy incrementally, as kube-proxy's nftables
// mode does: only the changed services' chains and map elements are in the
// transaction, and only they are validated and looked at, so the cost in
// here does not depend on how many services exist.
func (p *Proxy) Update(ctx context.Context, upsert []proxy.Service, remove []string) error {
	if p.state == tableBroken {
		return fmt.Errorf("nftables update: the last sync failed; sync again")
	}
	c, err := p.idx.Check(upsert, remove)
	if err != nil {
		return err
	}
	ipUsers := p.idx.IPUsersAfter(c)
	keepIP := func(s proxy.Service) bool { return ipUsers(s.ClusterIP) > 0 }
	for _, n := range p.nodes {
		tx := n.NewTransaction()
		if p.state == tableNone {
			p.addBase(tx)
		}
		for _, k := range c.Remove {
			s, _ := p.idx.Get(k)
			removeElements(tx, s, keepIP(s))
			removeChains(tx, s, nil)
		}
		for _, s := range c.Upsert {
			o, existed := p.idx.Get(s.Key())
			if existed {
				// The element's verdict may change: delete it and add it
				// back; one transaction is atomic for packets.
				removeElements(tx, o, keepIP(o))
			}
			p.addService(tx, s)
			if existed {
				// Only now is the rewritten service chain no longer
				// pointing at endpoint chains the service dropped.
				keep := map[string]bool{}
				for _, c := range chainsOf(s) {
					keep[c] = true
				}
				removeChains(tx, o, keep)
			}
		}
		p.LastOps = tx.NumOperations()
		if err := n.Run(ctx, tx); err != nil {
			return fmt.Errorf("nftables update: %w", err)
		}
	}
	p.idx.Apply(c)
	p.state = tableOK
	return nil
}

// Services returns the services the proxy holds, sorted by key.
func (p *Proxy) Services() []proxy.Service { return p.idx.Services() }

// Counts implements proxy.Proxy from the first node's table.
func (p *Proxy) Counts(ctx context.Context) (proxy.Counts, error) {
	return p.nodes[0].Count(ctx)
}

// Close implements proxy.Proxy: the whole table goes.
func (p *Proxy) Close(ctx context.Context) error {
	var firstErr error
	for _, n := range p.nodes {
		tx := n.NewTransaction()
		tx.Add(&knftables.Table{})
		tx.Delete(&knftables.Table{})
		if err := n.Run(ctx, tx); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("nftables cleanup: %w", err)
		}
	}
	p.idx, p.state = proxy.NewIndex(), tableNone
	return firstErr
}
