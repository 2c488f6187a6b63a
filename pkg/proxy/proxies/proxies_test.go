package proxies

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/ebpf"
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
	"github.com/cnilab/cnilab/pkg/proxy/ipvs"
	"github.com/cnilab/cnilab/pkg/proxy/nftables"
)

// versions answers iptables -V the way iptables 1.8.9 does on a distro
// whose default is nft (Debian 12, this machine).
func versions() *command.Fake {
	return &command.Fake{Responses: map[string]command.FakeResponse{
		"iptables":        {Stdout: "iptables v1.8.9 (nf_tables)\n"},
		"iptables-nft":    {Stdout: "iptables v1.8.9 (nf_tables)\n"},
		"iptables-legacy": {Stdout: "iptables v1.8.9 (legacy)\n"},
	}}
}

func TestNew(t *testing.T) {
	tgt := proxy.Target{Netns: []string{"/run/netns/x"}, Runner: versions()}
	tests := []struct {
		name, fallback string
		wantName       string
		wantErr        bool
	}{
		{"iptables", "", "iptables-nft", false}, // the system default, named by its backend
		{"iptables-legacy", "", "iptables-legacy", false},
		{"iptables-nft", "", "iptables-nft", false},
		{"nftables", "", "nftables", false},
		{"bogus", "iptables", "", true},
		{"ebpf", "", "", true}, // no cgroup in the target
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := New(tc.name, tgt, tc.fallback)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && p.Name() != tc.wantName {
				t.Errorf("got %s", p.Name())
			}
		})
	}
}

func TestIPVSFallback(t *testing.T) {
	if ipvs.Detect() == nil {
		t.Skip("this kernel has IPVS; the fallback path is not taken")
	}
	tgt := proxy.Target{Netns: []string{"/run/netns/x"}, Runner: versions()}
	p, note, err := New("ipvs", tgt, "iptables")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "iptables-nft" || !strings.Contains(note, "not reproducible here: CONFIG_IP_VS missing") || !strings.Contains(note, "fell back to iptables") {
		t.Errorf("proxy %s, note %q", p.Name(), note)
	}
	if _, _, err := New("ipvs", tgt, ""); err == nil {
		t.Error("ipvs without fallback succeeded")
	}
}

func TestCanFallBack(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", proxy.ErrNotReproducible), true},
		{fmt.Errorf("x: %w", proxy.ErrNotBuilt), true},
		{errors.New("iptables-restore: exit status 2"), false},
		{nil, false},
	} {
		if got := CanFallBack(tc.err); got != tc.want {
			t.Errorf("CanFallBack(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Teardown relies on this: netfilter proxies vanish with their namespaces,
// the eBPF proxy must be closed.
func TestNamespaceScoped(t *testing.T) {
	var _ proxy.NamespaceScoped = (*iptables.Proxy)(nil)
	var _ proxy.NamespaceScoped = (*nftables.Proxy)(nil)
	if _, ok := any((*ebpf.Proxy)(nil)).(proxy.NamespaceScoped); ok {
		t.Error("the eBPF proxy claims its state goes with the namespaces")
	}
}
