package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/results"
)

// Namespaces are where CNIs put their agents: kube-system for most
// manifests, and the namespaces their charts and operators use.
var Namespaces = []string{"kube-system", "kube-flannel", "cilium", "calico-system", "kube-router", "antrea-system", "weave"}

// Detection is what cnilab found running in a cluster.
type Detection struct {
	results.Detected
	// Encap is the encapsulation where visible (vxlan, geneve, ipip,
	// wireguard, none), "" where not.
	Encap string
	// AgentNamespace and Agent name the CNI's agent DaemonSet; Image is
	// its main container's image.
	AgentNamespace, Agent, Image string
	// Components are the CNI's workloads (for a footprint).
	Components []Component
	// Kubernetes is the API server's version.
	Kubernetes string
}

// Component is one workload of the CNI.
type Component struct{ Namespace, Kind, Name string }

// agentRule recognises one CNI's agent DaemonSet by name or image.
type agentRule struct {
	cni    string
	names  []string
	images []string
}

// rules are tried on every DaemonSet in Namespaces. Canal comes first:
// its DaemonSet runs both calico-node and flannel containers.
var rules = []agentRule{
	{cni: "canal", names: []string{"canal"}},
	{cni: "cilium", names: []string{"cilium"}, images: []string{"/cilium:", "/cilium@"}},
	{cni: "calico", names: []string{"calico-node"}, images: []string{"calico/node"}},
	{cni: "flannel", names: []string{"kube-flannel-ds", "kube-flannel", "flannel"}, images: []string{"flannel-io/flannel", "flannel/flannel", "cnilab/flannel:"}},
	{cni: "kube-router", names: []string{"kube-router"}, images: []string{"kube-router"}},
	{cni: "antrea", names: []string{"antrea-agent"}, images: []string{"antrea/antrea-agent", "antrea/antrea-ubuntu"}},
	{cni: "weave", names: []string{"weave-net"}, images: []string{"weaveworks/weave-kube", "weave-kube"}},
}

func (r agentRule) match(ds *appsv1.DaemonSet) (corev1.Container, bool) {
	cs := ds.Spec.Template.Spec.Containers
	if slices.Contains(r.names, ds.Name) && len(cs) > 0 {
		for _, c := range cs {
			if r.imageMatches(c.Image) {
				return c, true
			}
		}
		return cs[0], true
	}
	for _, c := range cs {
		if r.imageMatches(c.Image) {
			return c, true
		}
	}
	return corev1.Container{}, false
}

func (r agentRule) imageMatches(image string) bool {
	for _, s := range r.images {
		if strings.Contains(image, s) {
			return true
		}
	}
	return false
}

// imageVersion is an image's tag, or says why there is none.
func imageVersion(image string) string {
	ref, digest, _ := strings.Cut(image, "@")
	if _, tag, ok := helm.SplitImage(ref); ok {
		return tag
	}
	if digest != "" {
		return "unknown (image pinned by digest " + digest + ")"
	}
	return "unknown (untagged image)"
}

// Detect finds the CNI a cluster runs from its DaemonSets, their images
// and ConfigMaps, and the service proxy from kube-proxy's DaemonSet and
// ConfigMap or their absence. It reads and never writes.
func Detect(ctx context.Context, cs kubernetes.Interface) (*Detection, error) {
	type found struct {
		rule agentRule
		ds   appsv1.DaemonSet
		c    corev1.Container
	}
	var hits []found
	var kubeProxy *appsv1.DaemonSet
	for _, ns := range Namespaces {
		list, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list DaemonSets in %s: %w", ns, err)
		}
		for i := range list.Items {
			ds := list.Items[i]
			if ns == "kube-system" && ds.Name == "kube-proxy" {
				kubeProxy = &ds
				continue
			}
			for _, r := range rules {
				if c, ok := r.match(&ds); ok {
					hits = append(hits, found{r, ds, c})
					break
				}
			}
		}
	}
	if len(hits) == 0 {
		return nil, fmt.Errorf("no known CNI agent DaemonSet in %s (known: canal, cilium, calico-node, flannel, kube-router, antrea-agent, weave-net)", strings.Join(Namespaces, ", "))
	}
	var cnis []string
	for _, h := range hits {
		if !slices.Contains(cnis, h.rule.cni) {
			cnis = append(cnis, h.rule.cni)
		}
	}
	if len(cnis) > 1 {
		var what []string
		for _, h := range hits {
			what = append(what, fmt.Sprintf("%s (DaemonSet %s/%s, image %s)", h.rule.cni, h.ds.Namespace, h.ds.Name, h.c.Image))
		}
		return nil, fmt.Errorf("more than one CNI agent runs: %s; cnilab measures one CNI per cluster", strings.Join(what, "; "))
	}
	h := hits[0]
	d := &Detection{AgentNamespace: h.ds.Namespace, Agent: h.ds.Name, Image: h.c.Image}
	d.CNI = h.rule.cni
	d.Version = imageVersion(h.c.Image)
	d.How = append(d.How, fmt.Sprintf("DaemonSet %s/%s runs %s (container %s): %s %s", h.ds.Namespace, h.ds.Name, h.c.Image, h.c.Name, d.CNI, d.Version))
	for _, o := range hits {
		d.Components = append(d.Components, Component{Namespace: o.ds.Namespace, Kind: "DaemonSet", Name: o.ds.Name})
	}
	if err := d.mode(ctx, cs, &h.ds, h.c); err != nil {
		return nil, err
	}
	if err := d.proxy(ctx, cs, kubeProxy, &h.ds, h.c); err != nil {
		return nil, err
	}
	if sv, err := cs.Discovery().ServerVersion(); err == nil {
		d.Kubernetes = sv.GitVersion
	}
	return d, nil
}

// configMaps are the ConfigMaps a DaemonSet mounts, by name.
func configMaps(ctx context.Context, cs kubernetes.Interface, ds *appsv1.DaemonSet) (map[string]*corev1.ConfigMap, error) {
	out := map[string]*corev1.ConfigMap{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm, err := cs.CoreV1().ConfigMaps(ds.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", ds.Namespace, v.ConfigMap.Name, err)
		}
		out[cm.Name] = cm
	}
	return out, nil
}

// mode reads the forwarding mode and encapsulation where the CNI shows
// them through the API.
func (d *Detection) mode(ctx context.Context, cs kubernetes.Interface, ds *appsv1.DaemonSet, c corev1.Container) error {
	switch d.CNI {
	case "flannel", "canal":
		cms, err := configMaps(ctx, cs, ds)
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(cms) {
			conf, ok := cms[name].Data["net-conf.json"]
			if !ok {
				continue
			}
			var nc struct {
				Backend struct{ Type string }
			}
			if err := json.Unmarshal([]byte(conf), &nc); err != nil {
				return fmt.Errorf("ConfigMap %s/%s net-conf.json: %w", ds.Namespace, name, err)
			}
			backend := strings.ToLower(nc.Backend.Type)
			if backend == "" {
				backend = "udp" // flannel's own default when Backend.Type is unset
			}
			d.Mode = backend
			d.Encap = map[string]string{"vxlan": "vxlan", "host-gw": "none", "wireguard": "wireguard", "udp": "udp", "ipip": "ipip", "ipsec": "ipsec"}[backend]
			d.How = append(d.How, fmt.Sprintf("ConfigMap %s/%s net-conf.json Backend.Type %q", ds.Namespace, name, nc.Backend.Type))
			return nil
		}
		d.How = append(d.How, "backend not visible: no mounted ConfigMap has net-conf.json")
	case "cilium":
		cm, err := cs.CoreV1().ConfigMaps(ds.Namespace).Get(ctx, "cilium-config", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			d.How = append(d.How, "routing mode not visible: no ConfigMap "+ds.Namespace+"/cilium-config")
			return nil
		}
		if err != nil {
			return fmt.Errorf("ConfigMap %s/cilium-config: %w", ds.Namespace, err)
		}
		routing, tunnel := cm.Data["routing-mode"], cm.Data["tunnel-protocol"]
		if legacy := cm.Data["tunnel"]; routing == "" && legacy != "" {
			// Before 1.14: tunnel: vxlan|geneve|disabled.
			routing, tunnel = "tunnel", legacy
			if legacy == "disabled" {
				routing, tunnel = "native", ""
			}
		}
		if routing == "" {
			routing = "tunnel" // cilium's default
		}
		if routing == "tunnel" && tunnel == "" {
			tunnel = "vxlan"
		}
		d.Mode = routing
		d.Encap = tunnel
		if routing == "native" {
			d.Encap = "none"
		}
		d.How = append(d.How, fmt.Sprintf("ConfigMap %s/cilium-config routing-mode %q tunnel-protocol %q", ds.Namespace, cm.Data["routing-mode"], cm.Data["tunnel-protocol"]))
	case "calico":
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		on := func(k string) bool { v := env[k]; return v == "Always" || v == "CrossSubnet" }
		switch {
		case on("CALICO_IPV4POOL_VXLAN"):
			d.Mode, d.Encap = "vxlan", "vxlan"
		case on("CALICO_IPV4POOL_IPIP"):
			d.Mode, d.Encap = "ipip", "ipip"
		case env["CALICO_IPV4POOL_VXLAN"] != "" || env["CALICO_IPV4POOL_IPIP"] != "":
			d.Mode, d.Encap = "bgp", "none"
		}
		if d.Mode != "" {
			d.How = append(d.How, fmt.Sprintf("calico-node env CALICO_IPV4POOL_VXLAN=%q CALICO_IPV4POOL_IPIP=%q (the initial pool; IPPool objects may differ)", env["CALICO_IPV4POOL_VXLAN"], env["CALICO_IPV4POOL_IPIP"]))
		} else {
			d.How = append(d.How, "encapsulation not visible: set on IPPool objects, not read")
		}
	case "kube-router":
		overlay := argValue(c.Args, "--enable-overlay")
		d.Mode, d.Encap = "routed", "none"
		if overlay == "true" {
			d.Encap = "ipip (overlay across subnets)"
		}
		d.How = append(d.How, fmt.Sprintf("kube-router args --enable-overlay=%q", overlay))
	case "antrea":
		cms, err := configMaps(ctx, cs, ds)
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(cms) {
			conf, ok := cms[name].Data["antrea-agent.conf"]
			if !ok {
				continue
			}
			var ac struct {
				TrafficEncapMode string `json:"trafficEncapMode"`
				TunnelType       string `json:"tunnelType"`
			}
			if err := yaml.Unmarshal([]byte(conf), &ac); err != nil {
				return fmt.Errorf("ConfigMap %s/%s antrea-agent.conf: %w", ds.Namespace, name, err)
			}
			mode, tun := ac.TrafficEncapMode, ac.TunnelType
			if mode == "" {
				mode = "encap"
			}
			if tun == "" {
				tun = "geneve"
			}
			d.Mode, d.Encap = mode, tun
			if mode == "noEncap" {
				d.Encap = "none"
			}
			d.How = append(d.How, fmt.Sprintf("ConfigMap %s/%s antrea-agent.conf trafficEncapMode %q tunnelType %q", ds.Namespace, name, ac.TrafficEncapMode, ac.TunnelType))
			return nil
		}
	case "weave":
		d.How = append(d.How, "encapsulation not visible: weave picks fastdp (VXLAN) or sleeve at run time")
	}
	return nil
}

// proxy finds the service proxy: kube-proxy's mode from its ConfigMap, or
// the CNI's own where kube-proxy does not run.
func (d *Detection) proxy(ctx context.Context, cs kubernetes.Interface, kubeProxy, agent *appsv1.DaemonSet, c corev1.Container) error {
	if kubeProxy != nil {
		d.Components = append(d.Components, Component{Namespace: "kube-system", Kind: "DaemonSet", Name: "kube-proxy"})
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			d.Proxy = "kube-proxy (mode not visible)"
			d.How = append(d.How, "DaemonSet kube-system/kube-proxy runs; no ConfigMap kube-system/kube-proxy, so its mode is not visible")
			return nil
		case err != nil:
			return fmt.Errorf("ConfigMap kube-system/kube-proxy: %w", err)
		}
		mode, err := kube.KubeProxyMode(cm.Data["config.conf"])
		if err != nil {
			return err
		}
		d.Proxy = "kube-proxy " + mode
		d.How = append(d.How, fmt.Sprintf("DaemonSet kube-system/kube-proxy runs; ConfigMap kube-system/kube-proxy config.conf mode %s", mode))
		if mode == "iptables" {
			// kind labs ask kube-proxy's own binaries (iptables -V);
			// here that would mean exec in kube-system, and cnilab runs
			// programs only in its own pods on a cluster it does not own.
			d.How = append(d.How, "kube-proxy's iptables backend (nft or legacy) is not visible without exec in kube-system, which cnilab does not do here; services-scale figures, measured per backend, are not matched to this lab")
		}
		return nil
	}
	switch d.CNI {
	case "cilium":
		cm, err := cs.CoreV1().ConfigMaps(agent.Namespace).Get(ctx, "cilium-config", metav1.GetOptions{})
		if err == nil {
			if v := cm.Data["kube-proxy-replacement"]; v == "true" || v == "strict" {
				d.Proxy = "cilium eBPF (kube-proxy replacement)"
				d.How = append(d.How, fmt.Sprintf("no kube-proxy DaemonSet; cilium-config kube-proxy-replacement %q", v))
				return nil
			}
		}
	case "kube-router":
		if argValue(c.Args, "--run-service-proxy") == "true" {
			d.Proxy = "kube-router IPVS"
			d.How = append(d.How, "no kube-proxy DaemonSet; kube-router args --run-service-proxy=true")
			return nil
		}
	}
	d.Proxy = "unknown (no kube-proxy DaemonSet)"
	d.How = append(d.How, "no kube-proxy DaemonSet in kube-system and no known replacement configured")
	return nil
}

// argValue is the value of --flag=value in args ("" when absent; "true"
// for a bare --flag).
func argValue(args []string, flag string) string {
	for _, a := range args {
		if a == flag {
			return "true"
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MismatchError is a lab definition that pins a CNI (or mode) the cluster
// does not run.
type MismatchError struct {
	Lab, Want, Found string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("lab %s expects %s, but the cluster runs %s: refusing to record %s figures for it", e.Lab, e.Want, e.Found, e.Lab)
}

// Check holds a lab definition against what runs: its CNI, and its mode
// where both say one.
func (d *Detection) Check(def *config.Lab) error {
	if def.CNI == "host" {
		return nil
	}
	found := d.CNI + " " + d.Version
	if d.Mode != "" {
		found += " (" + d.Mode + ")"
	}
	if def.CNI != d.CNI {
		return &MismatchError{Lab: def.Name, Want: def.CNI, Found: found}
	}
	if want := def.Netns.Mode; want != "" && d.Mode != "" && want != d.Mode {
		return &MismatchError{Lab: def.Name, Want: def.CNI + " " + want, Found: found}
	}
	return nil
}

// LabFor picks the lab definition that describes what runs: the one of
// the detected CNI whose mode matches, else the one named like the CNI.
func (d *Detection) LabFor(set *config.Set) (string, error) {
	var named string
	for _, name := range set.LabNames() {
		def := set.Labs[name]
		if def.CNI != d.CNI {
			continue
		}
		if d.Mode != "" && def.Netns.Mode == d.Mode {
			return name, nil
		}
		if name == d.CNI {
			named = name
		}
	}
	if named == "" {
		return "", fmt.Errorf("no lab definition for %s %s (labs/*.yaml)", d.CNI, d.Mode)
	}
	return named, nil
}
