package netplan_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/datapath"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netplan"
)

// TestKernelAndFakeAgree applies each CNI design's plan to the real kernel
// (in fresh cnl- namespaces) and to the Fake, reads both back and compares
// devices (kind, MTU, txqueuelen, up, forced MACs, masters, hairpin, veth
// peers, VXLAN parameters), addresses, routes, neighbour and FDB entries
// and sysctls. The golden files are the Fake's state, so a drift here means
// the golden files do not describe the labs that are measured.
func TestKernelAndFakeAgree(t *testing.T) {
	testenv.Kernel(t, "builds network namespaces")
	var b [2]byte
	_, _ = rand.Read(b[:])
	run := "q" + hex.EncodeToString(b[:])
	for _, tc := range []struct {
		name, model, mode, cidr string
		bits                    int
	}{
		{"host", "none", "underlay", "", 0},
		{"flannel", "flannel", "vxlan", "10.244.0.0/16", 24},
		{"flannel-host-gw", "flannel", "host-gw", "10.244.0.0/16", 24},
		{"calico", "calico", "bgp", "192.168.0.0/16", 26},
		{"calico-vxlan", "calico", "vxlan", "192.168.0.0/16", 26},
		{"kube-router", "kube-router", "routed", "10.244.0.0/16", 24},
		{"cilium", "cilium", "tunnel", "10.0.0.0/16", 24},
		{"cilium-native", "cilium", "native", "10.0.0.0/16", 24},
		{"canal", "canal", "vxlan", "10.244.0.0/16", 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := datapath.Spec{RunID: run, Lab: tc.name, Model: tc.model, Mode: tc.mode, NodeMaskBits: tc.bits, UnderlayMTU: 1500, Nodes: 2, PodsPerNode: 2}
			if tc.cidr != "" {
				spec.PodCIDR = netip.MustParsePrefix(tc.cidr)
			}
			lab, err := datapath.Plan(spec)
			if err != nil {
				t.Fatal(err)
			}
			fake := netplan.NewFake()
			if err := fake.Apply(context.Background(), &lab.Plan); err != nil {
				t.Fatal(err)
			}
			k := netplan.Kernel{}
			if err := k.Apply(context.Background(), &lab.Plan); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := k.Destroy(context.Background(), &lab.Plan); err != nil {
					t.Error(err)
				}
			})
			got, err := netplan.ReadKernel(&lab.Plan)
			if err != nil {
				t.Fatal(err)
			}
			want := fake.State(lab.Plan.Namespaces...)
			// A MAC the plan does not force is the kernel's random one.
			for ns, st := range got {
				for i, l := range st.Links {
					if fl := findLink(want[ns], l.Name); fl != nil && fl.MAC == "" {
						st.Links[i].MAC = ""
					}
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("kernel state differs from the fake's (-fake +kernel):\n%s", d)
			}
		})
	}
}

func findLink(ns netplan.NSState, name string) *netplan.LinkState {
	for i := range ns.Links {
		if ns.Links[i].Name == name {
			return &ns.Links[i]
		}
	}
	return nil
}
