package kube

import (
	"strings"
	"testing"
)

func TestKubeProxyMode(t *testing.T) {
	cases := []struct{ conf, want, err string }{
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n", "iptables", ""},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"\"\n", "iptables", ""},
		{"kind: KubeProxyConfiguration\nmode: nftables\n", "nftables", ""},
		{"kind: KubeletConfiguration\n", "", "not a KubeProxyConfiguration"},
		{"mode: [x\n", "", "kube-proxy config"},
	}
	for _, tc := range cases {
		got, err := KubeProxyMode(tc.conf)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("KubeProxyMode(%q) error %v, want %q", tc.conf, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("KubeProxyMode(%q) = %q, %v; want %q", tc.conf, got, err, tc.want)
		}
	}
}

func TestParseMTU(t *testing.T) {
	for in, want := range map[string]int{"1450\n": 1450, "9000": 9000, "": 0, "abc": 0, "20": 0} {
		got, err := ParseMTU(in)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("ParseMTU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
