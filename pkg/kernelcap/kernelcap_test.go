package kernelcap

import (
	"context"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netplan"
)

func TestDetect(t *testing.T) {
	testenv.Kernel(t, "capability detection creates a network namespace")
	if _, err := Detect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A named probe, so parallel tests' probes are not mistaken for ours.
	set, err := detect("cnl-cap-test")
	if err != nil {
		t.Fatal(err)
	}
	// Every lab needs these; a kernel without them cannot run cnilab at all.
	for _, c := range []string{"veth", "bridge"} {
		if !set.Has(c) {
			t.Errorf("%s reported missing: %s", c, set[c].Detail)
		}
	}
	for name := range Config {
		if _, ok := set[name]; !ok {
			t.Errorf("capability %s not probed", name)
		}
	}
	left, _ := netplan.ListNamespaces("cnl-cap-test")
	if len(left) > 0 {
		t.Errorf("probe namespace left behind: %v", left)
	}
	t.Logf("capabilities: %+v", set.List())
}

func TestMissingNamesTheConfigOption(t *testing.T) {
	s := Set{"veth": {Name: "veth", Available: true}, "ipvs": {Name: "ipvs", Available: false}}
	if got := s.Missing([]string{"veth", "ipvs"}); got != "not reproducible here: CONFIG_IP_VS missing" {
		t.Errorf("Missing = %q", got)
	}
	if got := s.Missing([]string{"veth"}); got != "" {
		t.Errorf("Missing = %q, want empty", got)
	}
	if !strings.Contains(s.Missing([]string{"ipip"}), "CONFIG_NET_IPIP") {
		t.Error("unknown capability not reported as missing")
	}
}
