package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/scenarios"
)

// ds is a DaemonSet fixture: one main container, optional ConfigMap
// volumes, env and args, as the CNIs' manifests and charts ship them.
func ds(ns, name, image string, opts ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: strings.TrimSuffix(name, "-ds"), Image: image}}
	for _, o := range opts {
		o(d)
	}
	return d
}

func mounts(cm string) func(*appsv1.DaemonSet) {
	return func(d *appsv1.DaemonSet) {
		d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "cfg",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}})
	}
}

func env(kv ...string) func(*appsv1.DaemonSet) {
	return func(d *appsv1.DaemonSet) {
		for i := 0; i+1 < len(kv); i += 2 {
			d.Spec.Template.Spec.Containers[0].Env = append(d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
	}
}

func args(a ...string) func(*appsv1.DaemonSet) {
	return func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.Containers[0].Args = a }
}

func cm(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// kubeProxy is kube-proxy as kubeadm installs it.
func kubeProxy(mode string) []runtime.Object {
	return []runtime.Object{
		ds("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.34.4"),
		cm("kube-system", "kube-proxy", map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: " + mode + "\n"}),
	}
}

// coreDNS is a DaemonSet-free control plane's other workloads: never a CNI.
var unrelated = []runtime.Object{
	ds("kube-system", "node-exporter", "quay.io/prometheus/node-exporter:v1.8.0"),
	ds("monitoring", "cilium-lookalike", "quay.io/cilium/cilium:v1.0.0"), // outside the CNI namespaces
}

func objs(groups ...[]runtime.Object) []runtime.Object {
	var out []runtime.Object
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name    string
		objects []runtime.Object
		cni     string
		version string
		mode    string
		encap   string
		proxy   string
		how     string // a fragment of the evidence
		lab     string // the lab definition chosen for it
	}{
		{
			name: "flannel chart, vxlan",
			objects: objs(kubeProxy("iptables"), unrelated, []runtime.Object{
				ds("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.28.10", mounts("kube-flannel-cfg")),
				cm("kube-flannel", "kube-flannel-cfg", map[string]string{"net-conf.json": `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`}),
			}),
			cni: "flannel", version: "v0.28.10", mode: "vxlan", encap: "vxlan", proxy: "kube-proxy iptables",
			how: `kube-flannel-cfg net-conf.json Backend.Type "vxlan"`, lab: "flannel",
		},
		{
			name: "flannel built offline by cnilab, host-gw, kube-proxy ipvs",
			objects: objs(kubeProxy("ipvs"), []runtime.Object{
				ds("kube-flannel", "kube-flannel-ds", "cnilab/flannel:v0.28.10", mounts("kube-flannel-cfg")),
				cm("kube-flannel", "kube-flannel-cfg", map[string]string{"net-conf.json": `{"Backend": {"Type": "host-gw"}}`}),
			}),
			cni: "flannel", version: "v0.28.10", mode: "host-gw", encap: "none", proxy: "kube-proxy ipvs", lab: "flannel-host-gw",
		},
		{
			name: "cilium kube-proxy-free, vxlan tunnel",
			objects: []runtime.Object{
				ds("kube-system", "cilium", "quay.io/cilium/cilium:v1.18.4@sha256:abc", mounts("cilium-config")),
				ds("kube-system", "cilium-envoy", "quay.io/cilium/cilium-envoy:v1.34.10"),
				cm("kube-system", "cilium-config", map[string]string{"routing-mode": "tunnel", "tunnel-protocol": "vxlan", "kube-proxy-replacement": "true"}),
			},
			cni: "cilium", version: "v1.18.4", mode: "tunnel", encap: "vxlan", proxy: "cilium eBPF (kube-proxy replacement)",
			how: "kube-proxy-replacement", lab: "cilium",
		},
		{
			name: "cilium native routing with kube-proxy",
			objects: objs(kubeProxy(""), []runtime.Object{
				ds("cilium", "cilium", "quay.io/cilium/cilium:v1.16.0"),
				cm("cilium", "cilium-config", map[string]string{"routing-mode": "native"}),
			}),
			cni: "cilium", version: "v1.16.0", mode: "native", encap: "none", proxy: "kube-proxy iptables", lab: "cilium-native",
		},
		{
			name: "cilium before 1.14: tunnel key",
			objects: []runtime.Object{
				ds("kube-system", "cilium", "quay.io/cilium/cilium:v1.13.2"),
				cm("kube-system", "cilium-config", map[string]string{"tunnel": "geneve"}),
			},
			cni: "cilium", version: "v1.13.2", mode: "tunnel", encap: "geneve", proxy: "unknown (no kube-proxy DaemonSet)", lab: "cilium",
		},
		{
			name: "calico operator, vxlan",
			objects: objs(kubeProxy("iptables"), []runtime.Object{
				ds("calico-system", "calico-node", "docker.io/calico/node:v3.30.3", env("CALICO_IPV4POOL_VXLAN", "Always", "CALICO_IPV4POOL_IPIP", "Never")),
			}),
			cni: "calico", version: "v3.30.3", mode: "vxlan", encap: "vxlan", proxy: "kube-proxy iptables", lab: "calico-vxlan",
		},
		{
			name: "calico manifest, ipip",
			objects: objs(kubeProxy("iptables"), []runtime.Object{
				ds("kube-system", "calico-node", "quay.io/calico/node:v3.29.0", env("CALICO_IPV4POOL_IPIP", "Always")),
			}),
			cni: "calico", version: "v3.29.0", mode: "ipip", encap: "ipip", proxy: "kube-proxy iptables", lab: "calico-ipip",
		},
		{
			name: "kube-router with its service proxy",
			objects: []runtime.Object{
				ds("kube-system", "kube-router", "docker.io/cloudnativelabs/kube-router:v2.6.1", args("--run-router=true", "--run-firewall=true", "--run-service-proxy=true", "--enable-overlay=false")),
			},
			cni: "kube-router", version: "v2.6.1", mode: "routed", encap: "none", proxy: "kube-router IPVS", lab: "kube-router",
		},
		{
			name: "antrea",
			objects: objs(kubeProxy("iptables"), []runtime.Object{
				ds("kube-system", "antrea-agent", "antrea/antrea-agent-ubuntu:v2.2.0", mounts("antrea-config")),
				cm("kube-system", "antrea-config", map[string]string{"antrea-agent.conf": "trafficEncapMode: encap\ntunnelType: geneve\n"}),
			}),
			cni: "antrea", version: "v2.2.0", mode: "encap", encap: "geneve", proxy: "kube-proxy iptables", lab: "antrea",
		},
		{
			name: "weave",
			objects: objs(kubeProxy("iptables"), []runtime.Object{
				ds("kube-system", "weave-net", "weaveworks/weave-kube:latest"),
			}),
			cni: "weave", version: "latest", proxy: "kube-proxy iptables", how: "not visible", lab: "weave",
		},
		{
			name: "canal",
			objects: objs(kubeProxy("iptables"), []runtime.Object{
				ds("kube-system", "canal", "calico/node:v3.30.0", mounts("canal-config")),
				cm("kube-system", "canal-config", map[string]string{"net-conf.json": `{"Backend": {"Type": "vxlan"}}`}),
			}),
			cni: "canal", version: "v3.30.0", mode: "vxlan", encap: "vxlan", proxy: "kube-proxy iptables", lab: "canal",
		},
	}
	set := loadSet(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.objects...)
			d, err := Detect(context.Background(), cs)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{d.CNI, d.Version, d.Mode, d.Encap, d.Proxy}
			want := []string{tc.cni, tc.version, tc.mode, tc.encap, tc.proxy}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("detected cni, version, mode, encap, proxy = %q, want %q", got, want)
					break
				}
			}
			how := strings.Join(d.How, "; ")
			if !strings.Contains(how, "DaemonSet ") || (tc.how != "" && !strings.Contains(how, tc.how)) {
				t.Errorf("evidence %q does not name the DaemonSet and %q", how, tc.how)
			}
			if lab, err := d.LabFor(set); err != nil || lab != tc.lab {
				t.Errorf("LabFor = %q, %v; want %q", lab, err, tc.lab)
			}
		})
	}
}

func TestDetectRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objects []runtime.Object
		err     string
	}{
		{"nothing known", objs(kubeProxy("iptables"), unrelated), "no known CNI agent DaemonSet"},
		{"two CNIs", []runtime.Object{
			ds("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.28.10"),
			ds("kube-system", "cilium", "quay.io/cilium/cilium:v1.18.4"),
		}, "more than one CNI agent runs: cilium"},
		{"kube-proxy config unreadable", objs([]runtime.Object{
			ds("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.34.4"),
			cm("kube-system", "kube-proxy", map[string]string{"config.conf": "kind: Something\n"}),
			ds("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.28.10"),
		}), "not a KubeProxyConfiguration"},
		{"net-conf.json broken", []runtime.Object{
			ds("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.28.10", mounts("kube-flannel-cfg")),
			cm("kube-flannel", "kube-flannel-cfg", map[string]string{"net-conf.json": `{"Backend": `}),
		}, "net-conf.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), fake.NewClientset(tc.objects...))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Detect error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestCheckPinnedLab(t *testing.T) {
	set := loadSet(t)
	flannel := &Detection{}
	flannel.CNI, flannel.Version, flannel.Mode = "flannel", "v0.28.10", "vxlan"
	for _, tc := range []struct {
		lab, err string
	}{
		{"flannel", ""},
		{"host", ""},
		{"cilium", "lab cilium expects cilium, but the cluster runs flannel v0.28.10 (vxlan)"},
		{"flannel-host-gw", "expects flannel host-gw, but the cluster runs flannel v0.28.10 (vxlan)"},
	} {
		err := flannel.Check(set.Labs[tc.lab])
		var me *MismatchError
		if (tc.err == "") != (err == nil) || (err != nil && (!errors.As(err, &me) || !strings.Contains(err.Error(), tc.err))) {
			t.Errorf("Check(%s) = %v, want %q", tc.lab, err, tc.err)
		}
	}
}

func loadSet(t *testing.T) *config.Set {
	t.Helper()
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	return set
}
