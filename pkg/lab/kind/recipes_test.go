package kind

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/scenarios"
)

func loadLabs(t *testing.T) *config.Set {
	t.Helper()
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// dig follows keys through nested maps and lists (a list index is a
// decimal key).
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		switch m := v.(type) {
		case map[string]any:
			v = m[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(m) {
				t.Fatalf("index %s out of range in %v", k, keys)
			}
			v = m[i]
		default:
			t.Fatalf("%v: %q is not in a map or list (%T)", keys, k, v)
		}
	}
	return v
}

// TestKubeRouterChart renders charts/kube-router with the kube-router
// lab's values, as each image source installs it, and checks what the
// cluster gets: the objects, the agent's flags, images and pull policy, and
// the CNI conflist the init container installs.
func TestKubeRouterChart(t *testing.T) {
	k := loadLabs(t).Labs["kube-router"].Kind
	ch, err := helm.LoadFS(charts.FS, k.CNI.LocalChart)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.AppVersion != k.CNI.Version || k.CNI.Version != images.KubeRouterVersion {
		t.Errorf("chart appVersion %s, recipe %s, offline image %s", ch.Metadata.AppVersion, k.CNI.Version, images.KubeRouterVersion)
	}
	cases := []struct {
		source, image, pull string
	}{
		{SourceUpstream, "docker.io/cloudnativelabs/kube-router:v2.1.0", "IfNotPresent"},
		{SourceOffline, images.KubeRouterImage, "Never"},
	}
	for _, tc := range cases {
		t.Run(tc.source, func(t *testing.T) {
			values := k.CNI.Values
			offline := tc.source == SourceOffline
			if offline {
				for _, p := range k.CNI.OfflineImageValues {
					if values, err = helm.WithImage(values, p, images.Offline().CNIImages()["kube-router"]); err != nil {
						t.Fatal(err)
					}
				}
			}
			manifest, err := helm.Render(ch, helm.Release{Name: k.CNI.Release, Namespace: k.CNI.Namespace, Values: values, PullNever: offline}, "v1.34.4")
			if err != nil {
				t.Fatal(err)
			}
			objs, err := helm.Docs(manifest)
			if err != nil {
				t.Fatal(err)
			}
			byKind := map[string]map[string]any{}
			var kinds []string
			for _, o := range objs {
				kind := o["kind"].(string)
				kinds = append(kinds, kind)
				byKind[kind] = o
				if ns := dig(t, o, "metadata", "namespace"); kind != "ClusterRole" && kind != "ClusterRoleBinding" && ns != "kube-system" {
					t.Errorf("%s in namespace %v", kind, ns)
				}
			}
			slices.Sort(kinds)
			if want := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"}; !slices.Equal(kinds, want) {
				t.Fatalf("rendered %v, want %v", kinds, want)
			}
			ds := byKind["DaemonSet"]
			if name := dig(t, ds, "metadata", "name"); name != k.CNI.DaemonSets[0] {
				t.Errorf("DaemonSet %v, recipe waits for %s", name, k.CNI.DaemonSets[0])
			}
			spec := dig(t, ds, "spec", "template", "spec").(map[string]any)
			if spec["hostNetwork"] != true || spec["serviceAccountName"] != "kube-router" {
				t.Errorf("hostNetwork %v serviceAccount %v", spec["hostNetwork"], spec["serviceAccountName"])
			}
			agent := dig(t, spec, "containers", "0").(map[string]any)
			initc := dig(t, spec, "initContainers", "0").(map[string]any)
			for _, c := range []map[string]any{agent, initc} {
				if c["image"] != tc.image || c["imagePullPolicy"] != tc.pull {
					t.Errorf("container %v: image %v pull %v, want %s %s", c["name"], c["image"], c["imagePullPolicy"], tc.image, tc.pull)
				}
			}
			if dig(t, agent, "securityContext", "privileged") != true {
				t.Error("agent is not privileged")
			}
			var args []string
			for _, a := range agent["args"].([]any) {
				args = append(args, a.(string))
			}
			wantArgs := []string{"--run-router=true", "--run-firewall=true", "--run-service-proxy=false", "--bgp-graceful-restart=true", "--enable-overlay=false"}
			if !slices.Equal(args, wantArgs) {
				t.Errorf("args %v, want %v", args, wantArgs)
			}
			env := map[string]any{}
			for _, e := range agent["env"].([]any) {
				em := e.(map[string]any)
				env[em["name"].(string)] = em["value"]
			}
			const conf = "/etc/cni/net.d/10-kuberouter.conflist"
			if env["KUBE_ROUTER_CNI_CONF_FILE"] != conf {
				t.Errorf("KUBE_ROUTER_CNI_CONF_FILE %v, want %s", env["KUBE_ROUTER_CNI_CONF_FILE"], conf)
			}
			script := dig(t, initc, "command", "2").(string)
			for _, want := range []string{"/host/cni/net.d/10-kuberouter.conflist", "for p in bridge host-local loopback portmap", "/usr/libexec/cni/$p"} {
				if !strings.Contains(script, want) {
					t.Errorf("install-cni script lacks %q:\n%s", want, script)
				}
			}

			var cni struct {
				CNIVersion string `json:"cniVersion"`
				Plugins    []struct {
					Type, Bridge     string
					IsDefaultGateway bool
					HairpinMode      bool
					IPAM             map[string]any
					Capabilities     map[string]bool
				} `json:"plugins"`
			}
			raw := dig(t, byKind["ConfigMap"], "data", "cni-conf.json").(string)
			if err := json.Unmarshal([]byte(raw), &cni); err != nil {
				t.Fatalf("cni-conf.json: %v\n%s", err, raw)
			}
			if cni.CNIVersion != "0.4.0" || len(cni.Plugins) != 2 {
				t.Fatalf("conflist %+v", cni)
			}
			br, pm := cni.Plugins[0], cni.Plugins[1]
			// host-local gets no ranges here: kube-router adds the node's
			// podCIDR to the file when it starts.
			if br.Type != "bridge" || br.Bridge != "kube-bridge" || !br.IsDefaultGateway || !br.HairpinMode ||
				!reflect.DeepEqual(br.IPAM, map[string]any{"type": "host-local"}) {
				t.Errorf("bridge plugin %+v", br)
			}
			if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
				t.Errorf("portmap plugin %+v", pm)
			}

			rules := dig(t, byKind["ClusterRole"], "rules").([]any)
			var granted []string
			for _, r := range rules {
				rm := r.(map[string]any)
				for _, res := range rm["resources"].([]any) {
					for _, v := range rm["verbs"].([]any) {
						granted = append(granted, res.(string)+":"+v.(string))
					}
				}
			}
			for _, want := range []string{"nodes:watch", "pods:list", "namespaces:watch", "networkpolicies:watch", "endpointslices:list", "leases:update"} {
				if !slices.Contains(granted, want) {
					t.Errorf("ClusterRole lacks %s (has %v)", want, granted)
				}
			}
		})
	}
}

// TestKubeRouterRecipe: the lab keeps kube-proxy, checks kube-bridge and
// the node routes, and records why the service proxy is off and both
// advisories.
func TestKubeRouterRecipe(t *testing.T) {
	k := loadLabs(t).Labs["kube-router"].Kind
	if k.KubeProxyMode != "iptables" || k.Proxy != "" || k.BridgeDevice != "kube-bridge" || !k.NodeRoutes || k.TunnelDevice != "" {
		t.Errorf("recipe %+v", k)
	}
	notes := strings.Join(k.Notes, "\n")
	for _, want := range []string{"IP_VS", "--run-service-proxy=false", "CVE-2026-32254", ":50051", "GHSA-v5mh-h5hx-7v92"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q", want)
		}
	}
	cfg := ClusterConfig(k, images.NodeImage)
	if cfg.Networking.PodSubnet != "10.244.0.0/16" || !cfg.Networking.DisableDefaultCNI || string(cfg.Networking.KubeProxyMode) != "iptables" {
		t.Errorf("kind networking %+v", cfg.Networking)
	}
}

// TestUsersRecipes checks, without the charts or manifests (no Calico,
// Antrea or Weave Go module is served, so they cannot be fetched or
// rendered here), what a kind cluster needs from the four recipes for
// users' machines: the pod CIDR the CNI allocates from agrees with kind's
// podSubnet; kube-proxy stays, so the CNI reaches the API server through
// the kubernetes Service and no endpoint override is needed; the images are
// the upstream chart's or manifest's own, pinned by the chart version or
// the versioned URL; and offline they say why there is no image source.
func TestUsersRecipes(t *testing.T) {
	set := loadLabs(t)
	cases := []struct {
		lab, podCIDR string
		// cniPodCIDR is where the CNI itself takes pod addresses from:
		// a chart value, or the upstream default the recipe relies on.
		cniPodCIDR func(t *testing.T, c config.KindCNI) string
		chart      string
	}{
		{"calico", "192.168.0.0/16", func(t *testing.T, c config.KindCNI) string {
			return dig(t, c.Values, "installation", "calicoNetwork", "ipPools", "0", "cidr").(string)
		}, "tigera-operator"},
		// canal.yaml v3.32.1's net-conf.json: "Network": "10.244.0.0/16".
		{"canal", "10.244.0.0/16", func(*testing.T, config.KindCNI) string { return "10.244.0.0/16" }, ""},
		// Antrea takes each node's podCIDR (nodeIPAM off by default).
		{"antrea", "10.244.0.0/16", func(*testing.T, config.KindCNI) string { return "10.244.0.0/16" }, "antrea"},
		// Weave's own IPAM: IPALLOC_RANGE defaults to 10.32.0.0/12.
		{"weave", "10.32.0.0/12", func(*testing.T, config.KindCNI) string { return "10.32.0.0/12" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.lab, func(t *testing.T) {
			def := set.Labs[tc.lab]
			k := def.Kind
			if k == nil {
				t.Fatal("no kind recipe")
			}
			if k.PodSubnet != tc.podCIDR {
				t.Errorf("pod_subnet %s, want %s", k.PodSubnet, tc.podCIDR)
			}
			cniCIDR := netip.MustParsePrefix(tc.cniPodCIDR(t, k.CNI))
			if pod := netip.MustParsePrefix(k.PodSubnet); cniCIDR.Bits() < pod.Bits() || !pod.Contains(cniCIDR.Addr()) {
				t.Errorf("the CNI allocates from %s, outside kind's podSubnet %s", cniCIDR, pod)
			}
			if k.KubeProxyMode != "iptables" {
				t.Errorf("kube_proxy_mode %s: these recipes keep kube-proxy", k.KubeProxyMode)
			}
			for _, key := range []string{"kubernetesServiceEndpoint", "kubeAPIServerOverride", "k8sServiceHost"} {
				if _, ok := k.CNI.Values[key]; ok {
					t.Errorf("values set %s, but kube-proxy serves the kubernetes Service", key)
				}
			}
			if len(k.CNI.OfflineImageValues) > 0 || k.CNI.Module != "" || k.CNI.LocalChart != "" {
				t.Errorf("an offline source or image override in a users'-machines recipe: %+v", k.CNI)
			}
			if k.CNI.NoOfflineSource != "sources not served" {
				t.Errorf("no_offline_source %q", k.CNI.NoOfflineSource)
			}
			if tc.chart != "" {
				if k.CNI.Chart != tc.chart || !strings.HasPrefix(k.CNI.Repo, "https://") || k.CNI.Version == "" {
					t.Errorf("chart %s %s from %s", k.CNI.Chart, k.CNI.Version, k.CNI.Repo)
				}
			} else {
				for _, u := range k.CNI.Manifests {
					if !strings.Contains(u, "/"+k.CNI.Version+"/") {
						t.Errorf("manifest %s is not pinned to %s", u, k.CNI.Version)
					}
				}
			}
			if cfg := ClusterConfig(k, images.UpstreamNodeImage); cfg.Networking.PodSubnet != tc.podCIDR || !cfg.Networking.DisableDefaultCNI {
				t.Errorf("kind networking %+v", cfg.Networking)
			}
		})
	}
}
