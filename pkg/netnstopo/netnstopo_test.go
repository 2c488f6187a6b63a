package netnstopo

import (
	"context"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/netplan"
)

// The star is checked against the fake kernel: every pod reaches its
// gateway on-link and the node forwards.
func TestPlanOnFakeKernel(t *testing.T) {
	p, pods, err := Plan("cnl-x-", "client", "server")
	if err != nil {
		t.Fatal(err)
	}
	f := netplan.NewFake()
	if err := f.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	out := f.String()
	for _, want := range []string{"netns cnl-x-node", "addr 10.244.1.1/24 dev veth1", "route 0.0.0.0/0 via 10.244.0.1 dev eth0", "sysctl net/ipv4/ip_forward=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if len(pods) != 2 || pods[1].IP.String() != "10.244.1.2" {
		t.Errorf("pods %+v", pods)
	}
	if _, _, err := Plan("lab-", "a"); err == nil {
		t.Error("prefix without cnl- accepted")
	}
}
