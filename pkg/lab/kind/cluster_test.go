package kind

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/scenarios"
)

func TestClusterName(t *testing.T) {
	cases := []struct{ run, lab, want, err string }{
		{"a1b2c3", "flannel", "cnl-a1b2c3-flannel", ""},
		{"a1b2c3", "calico-vxlan", "cnl-a1b2c3-calico-vxlan", ""},
		{"A1", "flannel", "", "only lower-case"},
		{"r.1", "flannel", "", "only lower-case"},
		{"run", "flannel-", "", "only lower-case"},
		{strings.Repeat("r", 30), "kube-router-proxy", "", "at most 49"},
	}
	for _, tc := range cases {
		got, err := ClusterName(tc.run, tc.lab)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ClusterName(%q, %q) = %q, %v; want error %q", tc.run, tc.lab, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ClusterName(%q, %q) = %q, %v; want %q", tc.run, tc.lab, got, err, tc.want)
		}
	}
}

func TestClusterConfig(t *testing.T) {
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	kpr := &config.KindLab{PodSubnet: "10.0.0.0/16", ServiceSubnet: "10.96.0.0/16", KubeProxyMode: "none", Proxy: "cilium ebpf"}
	pinned := &config.KindLab{PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/16", KubeProxyMode: "iptables-legacy"}
	cases := []struct {
		name string
		k    *config.KindLab
		want string
	}{
		{"flannel", set.Labs["flannel"].Kind, `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
networking:
  disableDefaultCNI: true
  ipFamily: ipv4
  kubeProxyMode: iptables
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/16
nodes:
- image: cnilab/kind-node:v1.34.4
  role: control-plane
- image: cnilab/kind-node:v1.34.4
  role: worker
- image: cnilab/kind-node:v1.34.4
  role: worker
`},
		{"kube-proxy free", kpr, `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
networking:
  disableDefaultCNI: true
  ipFamily: ipv4
  kubeProxyMode: none
  podSubnet: 10.0.0.0/16
  serviceSubnet: 10.96.0.0/16
nodes:
- image: cnilab/kind-node:v1.34.4
  role: control-plane
- image: cnilab/kind-node:v1.34.4
  role: worker
- image: cnilab/kind-node:v1.34.4
  role: worker
`},
		// kind has no iptables-legacy mode: a pinned backend is kind's
		// iptables mode, checked against the nodes later.
		{"pinned iptables backend", pinned, `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
networking:
  disableDefaultCNI: true
  ipFamily: ipv4
  kubeProxyMode: iptables
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/16
nodes:
- image: cnilab/kind-node:v1.34.4
  role: control-plane
- image: cnilab/kind-node:v1.34.4
  role: worker
- image: cnilab/kind-node:v1.34.4
  role: worker
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ClusterConfig(tc.k, "cnilab/kind-node:v1.34.4")
			got, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, string(got)); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
			// kind fills its defaults into the struct it is given; the
			// ones cnilab sets must survive that.
			v1alpha4.SetDefaultsCluster(c)
			if c.Networking.PodSubnet != tc.k.PodSubnet || string(c.Networking.KubeProxyMode) != tc.k.KindMode() || len(c.Nodes) != 3 {
				t.Errorf("after kind's defaults: %+v", c.Networking)
			}
		})
	}
}
