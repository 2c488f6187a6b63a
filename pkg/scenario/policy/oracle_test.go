package policy

import (
	"context"
	"net/netip"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/probe"
)

// fakeCNI is a lab whose "CNI" is a small reference reading of
// networking/v1 (pod and namespace selectors, ipBlock with except, ports
// and protocols, default deny by policy type), or enforces nothing, or
// ignores ipBlock for pod sources (as CNIs that match ipBlock only against
// cluster-external identities do). It checks that the matrix's expected
// outcomes are the API's, and that the runner turns them into verdicts.
type fakeCNI struct {
	mode     string // spec, none, no-ipblock-pods
	policies map[string]*networkingv1.NetworkPolicy
	pods     map[netip.Addr]fakePod
}

type fakePod struct {
	ns     string
	labels map[string]string
}

var nsLabels = map[string]map[string]string{
	"cnilab":        {"kubernetes.io/metadata.name": "cnilab"},
	ClientNamespace: {TenantLabel: "trusted"},
	OtherNamespace:  {TenantLabel: "untrusted"},
}

func (f *fakeCNI) ApplyPolicy(_ context.Context, p *networkingv1.NetworkPolicy) error {
	f.policies[p.Namespace+"/"+p.Name] = p.DeepCopy()
	return nil
}
func (f *fakeCNI) DeletePolicy(_ context.Context, ns, name string) error {
	delete(f.policies, ns+"/"+name)
	return nil
}
func (f *fakeCNI) DeletePolicies(context.Context, []string, string) error {
	clear(f.policies)
	return nil
}
func (f *fakeCNI) BenchNamespace() string { return "cnilab" }

func sel(s *metav1.LabelSelector, l map[string]string) bool {
	x, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && x.Matches(labels.Set(l))
}

func (f *fakeCNI) peerMatches(p networkingv1.NetworkPolicyPeer, policyNS string, src netip.Addr) bool {
	sp := f.pods[src]
	if p.IPBlock != nil {
		if f.mode == "no-ipblock-pods" {
			return false
		}
		in := netip.MustParsePrefix(p.IPBlock.CIDR).Contains(src)
		for _, e := range p.IPBlock.Except {
			if netip.MustParsePrefix(e).Contains(src) {
				in = false
			}
		}
		return in
	}
	nsOK := sp.ns == policyNS
	if p.NamespaceSelector != nil {
		nsOK = sel(p.NamespaceSelector, nsLabels[sp.ns])
	}
	podOK := p.PodSelector == nil || sel(p.PodSelector, sp.labels)
	return nsOK && podOK
}

func portOK(ports []networkingv1.NetworkPolicyPort, proto string, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if (p.Protocol == nil || string(*p.Protocol) == map[string]string{"tcp": "TCP", "udp": "UDP"}[proto]) && (p.Port == nil || p.Port.IntValue() == port) {
			return true
		}
	}
	return false
}

// allowed is one direction's verdict: isolated pods admit only what some
// policy's rule admits.
func (f *fakeCNI) allowed(dir networkingv1.PolicyType, pod, peer netip.Addr, proto string, port int) bool {
	p := f.pods[pod]
	isolated, ok := false, false
	for _, np := range f.policies {
		if np.Namespace != p.ns || !sel(&np.Spec.PodSelector, p.labels) {
			continue
		}
		for _, t := range np.Spec.PolicyTypes {
			if t != dir {
				continue
			}
			isolated = true
			if dir == networkingv1.PolicyTypeIngress {
				for _, r := range np.Spec.Ingress {
					peerOK := len(r.From) == 0
					for _, from := range r.From {
						peerOK = peerOK || f.peerMatches(from, np.Namespace, peer)
					}
					ok = ok || (peerOK && portOK(r.Ports, proto, port))
				}
			} else {
				for _, r := range np.Spec.Egress {
					peerOK := len(r.To) == 0
					for _, to := range r.To {
						peerOK = peerOK || f.peerMatches(to, np.Namespace, peer)
					}
					ok = ok || (peerOK && portOK(r.Ports, proto, port))
				}
			}
		}
	}
	return !isolated || ok
}

func (f *fakeCNI) Probe(_ context.Context, _ probe.Launcher, from lab.Pod, to netip.Addr, proto string, port int) (Outcome, error) {
	if f.mode == "none" {
		return Allowed, nil
	}
	if f.allowed(networkingv1.PolicyTypeEgress, from.IP(), to, proto, port) && f.allowed(networkingv1.PolicyTypeIngress, to, from.IP(), proto, port) {
		return Allowed, nil
	}
	return Denied, nil
}

func fakeTarget(mode string) (*Target, *fakeCNI) {
	server := &labfake.Pod{PodName: "cross-node-server", Addr: netip.MustParseAddr("10.244.2.5")}
	peer := &labfake.Pod{PodName: "cross-node-client", Addr: netip.MustParseAddr("10.244.1.5")}
	client := &labfake.Pod{PodName: "client", Addr: netip.MustParseAddr("10.244.1.6")}
	other := &labfake.Pod{PodName: "other", Addr: netip.MustParseAddr("10.244.1.7")}
	f := &fakeCNI{mode: mode, policies: map[string]*networkingv1.NetworkPolicy{}, pods: map[netip.Addr]fakePod{
		server.Addr: {"cnilab", map[string]string{lab.BenchRoleLabel: "server"}},
		peer.Addr:   {"cnilab", map[string]string{lab.BenchRoleLabel: "client"}},
	}}
	for _, p := range Peers() {
		addr := client.Addr
		if p.Name == "other" {
			addr = other.Addr
		}
		f.pods[addr] = fakePod{p.Namespace, p.Labels}
	}
	t := &Target{Policy: f, Server: server, Sources: map[string]lab.Pod{SrcPeer: peer, SrcClient: client, SrcOther: other},
		Env: Env{ServerNS: "cnilab", ClientIP: client.Addr, ServerIP: server.Addr}}
	return t, f
}

// TestMatrixAgainstReferenceCNI runs every static and update case of the
// matrix on the fake lab: a spec-faithful CNI passes every case, one that
// enforces nothing is not-enforced on every case with a deny (and passes
// the baseline), one that ignores ipBlock for pods fails ipblock-except
// only, over-enforcing the allowed peer.
func TestMatrixAgainstReferenceCNI(t *testing.T) {
	var clock time.Time
	for _, tc := range []struct {
		mode string
		want map[string]string // case -> verdict; others must pass
	}{
		{"spec", nil},
		{"none", map[string]string{"default-deny-ingress": NotEnforced, "default-deny-egress": NotEnforced, "allow-pod-selector": NotEnforced,
			"allow-namespace-selector": NotEnforced, "allow-port-tcp": NotEnforced, "allow-port-udp": NotEnforced, "ipblock-except": NotEnforced, "policy-update": NotEnforced}},
		{"no-ipblock-pods", map[string]string{"ipblock-except": Fail}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			target, fake := fakeTarget(tc.mode)
			r := &Runner{Settings: Settings{ConvergeTimeout: 3 * time.Second, Poll: time.Second}, Prober: fake,
				Now: func() time.Time { return clock }, Sleep: func(d time.Duration) { clock = clock.Add(d) }}
			for _, c := range Cases() {
				if c.Kind == "established" {
					continue // needs a running connection: kind e2e
				}
				cr, err := r.RunCase(context.Background(), target, c)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				want := Pass
				if v, ok := tc.want[c.Name]; ok {
					want = v
				}
				if cr.Result.Verdict != want {
					t.Errorf("%s: %s, want %s (%s; mismatches %v)", c.Name, cr.Result.Verdict, want, Describe(cr.Obs), cr.Result.Mismatches)
				}
			}
		})
	}
}
