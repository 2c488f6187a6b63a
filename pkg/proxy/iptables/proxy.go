package iptables

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/results"
)

// Proxy is kube-proxy's iptables mode on a set of node namespaces.
type Proxy struct {
	kernel Kernel
	target proxy.Target
	// cur is the desired state last written, in kube-proxy write order
	// (KUBE-SERVICES order follows it, which is why placement matters).
	cur []proxy.Service
	// jumped records namespaces whose entry jumps are in place.
	jumped map[string]bool
	// LastPayloadBytes is the size of the last restore input, for reports.
	LastPayloadBytes int
	// backend is iptables-legacy or iptables-nft when known (NewExec
	// asks the binaries); empty for a proxy on a Fake.
	backend string
}

var _ proxy.Proxy = (*Proxy)(nil)

// New returns an iptables proxy writing to k for the target's namespaces.
func New(k Kernel, t proxy.Target) (*Proxy, error) {
	if len(t.Netns) == 0 {
		return nil, fmt.Errorf("iptables proxy: target has no node namespace")
	}
	return &Proxy{kernel: k, target: t, jumped: map[string]bool{}}, nil
}

// NewExec returns an iptables proxy driving the system's iptables binaries
// through the target's runner. The binaries are asked which backend they
// drive (iptables -V), so the proxy's name says which one it measured.
func NewExec(t proxy.Target) (*Proxy, error) {
	switch t.IPTables {
	case "", "iptables", Legacy, NFT:
	default:
		return nil, fmt.Errorf("iptables proxy: unknown binaries %q", t.IPTables)
	}
	if len(t.Netns) == 0 {
		return nil, fmt.Errorf("iptables proxy: target has no node namespace")
	}
	// NewExec has no context of its own; -V answers at once or not at all.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := DetectBackend(ctx, t.Runner, t.IPTables, t.Netns[0])
	if err != nil {
		return nil, fmt.Errorf("iptables proxy: %w", err)
	}
	p, err := New(ExecKernel{Runner: t.Runner, Prefix: t.IPTables}, t)
	if err != nil {
		return nil, err
	}
	p.backend = b
	return p, nil
}

// Name implements proxy.Proxy: the backend (iptables-nft or
// iptables-legacy) when known, else "iptables".
func (p *Proxy) Name() string {
	if p.backend != "" {
		return p.backend
	}
	return "iptables"
}

// NamespaceScoped implements proxy.NamespaceScoped: the rules live in the
// node namespaces and go with them.
func (p *Proxy) NamespaceScoped() bool { return true }

// Fidelity implements proxy.Proxy: the rules are kube-proxy's layout loaded
// the way kube-proxy loads them.
func (p *Proxy) Fidelity() results.Fidelity { return results.Faithful }

// Sync implements proxy.Proxy as a kube-proxy full sync: every chain is
// declared and rewritten, and KUBE-SVC/SEP chains found in the kernel that
// are no longer wanted are deleted (kube-proxy finds them with
// iptables-save, so do we).
func (p *Proxy) Sync(ctx context.Context, svcs []proxy.Service) error {
	if err := proxy.ValidateAll(svcs); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range svcs {
		for _, c := range serviceChains(s) {
			want[c] = true
		}
	}
	for _, ns := range p.target.Netns {
		save, err := p.kernel.Save(ctx, ns, "nat")
		if err != nil {
			return fmt.Errorf("iptables full sync in %s: %w", ns, err)
		}
		var stale []string
		for _, c := range savedChains(save) {
			if (strings.HasPrefix(c, "KUBE-SVC-") || strings.HasPrefix(c, "KUBE-SEP-")) && !want[c] {
				stale = append(stale, c)
			}
		}
		payload := render(renderOpts{all: svcs, clusterCIDR: p.target.ClusterCIDR, deleteChains: stale})
		if err := p.restore(ctx, ns, payload); err != nil {
			return err
		}
	}
	p.cur = append([]proxy.Service(nil), svcs...)
	return nil
}

// Update implements proxy.Proxy as a kube-proxy partial sync (KEP-3453):
// only the changed services' chains and the top-level chains are written;
// chains of removed services, and of endpoints a changed service dropped,
// are deleted.
func (p *Proxy) Update(ctx context.Context, upsert []proxy.Service, remove []string) error {
	next := proxy.Apply(p.cur, upsert, remove)
	if err := proxy.ValidateAll(next); err != nil {
		return err
	}
	changed := map[string]bool{}
	for _, s := range upsert {
		changed[s.Key()] = true
	}
	keep := map[string]bool{}
	for _, s := range next {
		if changed[s.Key()] {
			for _, c := range serviceChains(s) {
				keep[c] = true
			}
		}
	}
	var stale []string
	rm := map[string]bool{}
	for _, k := range remove {
		rm[k] = true
	}
	for _, s := range p.cur {
		if !rm[s.Key()] && !changed[s.Key()] {
			continue
		}
		for _, c := range serviceChains(s) {
			if !keep[c] {
				stale = append(stale, c)
			}
		}
	}
	payload := render(renderOpts{all: next, clusterCIDR: p.target.ClusterCIDR, changed: changed, deleteChains: stale})
	for _, ns := range p.target.Netns {
		if err := p.restore(ctx, ns, payload); err != nil {
			return err
		}
	}
	p.cur = next
	return nil
}

func (p *Proxy) restore(ctx context.Context, ns string, payload []byte) error {
	p.LastPayloadBytes = len(payload)
	if err := p.kernel.Restore(ctx, ns, payload); err != nil {
		return fmt.Errorf("iptables-restore in %s: %w", ns, err)
	}
	if p.jumped[ns] {
		return nil
	}
	// The chains exist now; hook them into the built-in chains.
	for _, j := range jumps {
		if err := p.kernel.EnsureRule(ctx, ns, j.Table, j.Chain, j.Rule); err != nil {
			return fmt.Errorf("iptables jump %s/%s in %s: %w", j.Table, j.Chain, ns, err)
		}
	}
	p.jumped[ns] = true
	return nil
}

func savedChains(save []byte) []string {
	var out []string
	for _, l := range strings.Split(string(save), "\n") {
		if strings.HasPrefix(l, ":") {
			if f := strings.Fields(l[1:]); len(f) > 0 {
				out = append(out, f[0])
			}
		}
	}
	return out
}

// Counts implements proxy.Proxy by reading iptables-save of the first node.
func (p *Proxy) Counts(ctx context.Context) (proxy.Counts, error) {
	var c proxy.Counts
	for _, t := range []string{"filter", "nat"} {
		save, err := p.kernel.Save(ctx, p.target.Netns[0], t)
		if err != nil {
			return proxy.Counts{}, err
		}
		r, ch, err := CountSaved(save)
		if err != nil {
			return proxy.Counts{}, fmt.Errorf("%s table: %w", t, err)
		}
		c.Rules += r
		c.Chains += ch
	}
	return c, nil
}

// Close implements proxy.Proxy: remove the jumps, then flush and delete
// every KUBE-* chain in filter and nat.
func (p *Proxy) Close(ctx context.Context) error {
	var firstErr error
	for _, ns := range p.target.Netns {
		for _, j := range jumps {
			if err := p.kernel.DeleteRule(ctx, ns, j.Table, j.Chain, j.Rule); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		var b strings.Builder
		for _, t := range []string{"filter", "nat"} {
			save, err := p.kernel.Save(ctx, ns, t)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			var ours []string
			for _, c := range savedChains(save) {
				if strings.HasPrefix(c, "KUBE-") {
					ours = append(ours, c)
				}
			}
			b.WriteString("*" + t + "\n")
			for _, c := range ours {
				b.WriteString(":" + c + " - [0:0]\n")
			}
			for _, c := range ours {
				b.WriteString("-X " + c + "\n")
			}
			b.WriteString("COMMIT\n")
		}
		if err := p.kernel.Restore(ctx, ns, []byte(b.String())); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("iptables cleanup in %s: %w", ns, err)
		}
		delete(p.jumped, ns)
	}
	p.cur = nil
	return firstErr
}
