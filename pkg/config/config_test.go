package config

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/scenarios"
)

func TestEmbeddedDefinitionsLoad(t *testing.T) {
	set, err := Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatalf("embedded definitions do not load: %v", err)
	}
	for _, name := range []string{"host", "flannel", "calico", "kube-router", "cilium", "canal", "antrea", "weave", "calico-vpp"} {
		if _, ok := set.Labs[name]; !ok {
			t.Errorf("lab %q missing", name)
		}
	}
	if set.Labs["flannel"].Netns.Mode != "vxlan" {
		t.Errorf("flannel mode = %q", set.Labs["flannel"].Netns.Mode)
	}
	if _, ok := set.Scenarios["throughput"]; !ok {
		t.Error("scenario throughput missing")
	}
	if p := set.Scenarios["policy"]; p == nil || p.Policy == nil || len(p.Policy.Cases) != len(PolicyCases) || p.Policy.ConvergeTimeoutSeconds != 20 {
		t.Errorf("scenario policy: %+v", p)
	}
}

func TestMalformedLabs(t *testing.T) {
	const good = "name: x\ncni: flannel\nnetns:\n  model: flannel\n"
	cases := []struct {
		name, yaml string
		want       string // expected "file:line: field: ..." prefix
	}{
		{"unknown top-level field", good + "colour: blue\n", "labs/x.yaml:5: colour: unknown field"},
		{"unknown nested field", "name: x\ncni: flannel\nnetns:\n  model: flannel\n  podcidr: 10.0.0.0/8\n", "labs/x.yaml:5: podcidr: unknown field"},
		{"bad cidr", good + "  pod_cidr: 10.244.0.0/33\n", "labs/x.yaml:5: netns.pod_cidr: \"10.244.0.0/33\" is not a CIDR"},
		{"host bits", good + "  pod_cidr: 10.244.1.1/16\n", "labs/x.yaml:5: netns.pod_cidr: \"10.244.1.1/16\" has host bits set"},
		{"overlaps fabric", good + "  pod_cidr: 172.18.0.0/20\n", "labs/x.yaml:5: netns.pod_cidr: 172.18.0.0/20 overlaps the lab fabric"},
		{"service overlaps pods", good + "  pod_cidr: 10.0.0.0/8\n  service_cidr: 10.96.0.0/12\n", "labs/x.yaml:6: netns.service_cidr: 10.96.0.0/12 overlaps pod_cidr"},
		{"unknown cni", "name: x\ncni: flanel\nnetns:\n  model: flannel\n", "labs/x.yaml:2: cni: unknown CNI \"flanel\""},
		{"unknown model", "name: x\ncni: flannel\nnetns:\n  model: flanel\n", "labs/x.yaml:4: netns.model: unknown model"},
		{"unknown mode", good + "  mode: geneve\n", "labs/x.yaml:5: netns.mode: unknown mode \"geneve\""},
		{"unknown proxy", good + "  services: userspace\n", "labs/x.yaml:5: netns.services: unknown service proxy"},
		{"misspelt iptables backend", good + "  services: iptables-nf\n", "labs/x.yaml:5: netns.services: unknown service proxy \"iptables-nf\""},
		{"misspelt fallback backend", good + "  services: ipvs\n  services_fallback: iptables_legacy\n", "labs/x.yaml:6: netns.services_fallback: unknown service proxy \"iptables_legacy\""},
		{"unknown capability", good + "  requires: [veth, warp]\n", "labs/x.yaml:5: netns.requires.1: unknown capability \"warp\""},
		{"wrong type", good + "  node_mask_bits: big\n", "labs/x.yaml:5: netns.node_mask_bits: cannot unmarshal"},
		{"syntax", "name: [x\n", "labs/x.yaml:1: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLab("labs/x.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !IsInvalid(err) {
				t.Errorf("error %v is not a definition error", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}

// The iptables backends are accepted wherever "iptables" is: a netns
// lab's proxy and fallback, services-scale's proxies.
func TestIPTablesBackendNames(t *testing.T) {
	for _, b := range []string{"iptables-nft", "iptables-legacy"} {
		l, err := ParseLab("labs/x.yaml", []byte("name: x\ncni: kube-router\nnetns:\n  model: kube-router\n  services: ipvs\n  services_fallback: "+b+"\n"))
		if err != nil {
			t.Errorf("fallback %s: %v", b, err)
		} else if l.Netns.ServicesFallback != b {
			t.Errorf("fallback %s read as %q", b, l.Netns.ServicesFallback)
		}
		if _, err := ParseLab("labs/x.yaml", []byte("name: x\ncni: flannel\nnetns:\n  model: flannel\n  services: "+b+"\n")); err != nil {
			t.Errorf("services %s: %v", b, err)
		}
		sc := "name: s\nkind: services-scale\ntests: []\nscale:\n  services: [100]\n  endpoints_per_service: 2\n  connects: 10\n  proxies: [" + b + "]\nprofiles:\n  quick: {duration_s: 1, repeats: 1}\n"
		if _, err := ParseScenario("scenarios/s.yaml", []byte(sc)); err != nil {
			t.Errorf("scale proxy %s: %v", b, err)
		}
	}
}

func TestMalformedScenarios(t *testing.T) {
	const head = "name: s\nkind: throughput\n"
	cases := []struct{ name, yaml, want string }{
		{"unknown test", head + "tests: [dts, dtx]\nprofiles:\n  quick: {duration_s: 1, repeats: 3}\n", "scenarios/s.yaml:3: tests.1: unknown test \"dtx\""},
		{"zero repeats", head + "tests: [dts]\nprofiles:\n  quick:\n    duration_s: 1\n    repeats: 0\n", "scenarios/s.yaml:7: profiles.quick.repeats: 0 repeats"},
		{"bad placement", head + "tests: [dts]\nplacements: [same-rack]\nprofiles:\n  quick: {duration_s: 1, repeats: 3}\n", "scenarios/s.yaml:4: placements.0: unknown placement"},
		{"unknown field", head + "tests: [dts]\nduration: 5\nprofiles:\n  quick: {duration_s: 1, repeats: 3}\n", "scenarios/s.yaml:4: duration: unknown field"},
		{"policy without section", "name: p\nkind: policy\nprofiles:\n  quick: {duration_s: 1, repeats: 1}\n", "scenarios/s.yaml:1: policy: a policy scenario needs a policy section"},
		{"unknown policy case", "name: p\nkind: policy\npolicy:\n  cases: [baseline, deny-all]\n  counts: [0]\nprofiles:\n  quick: {duration_s: 1, repeats: 1}\n", "scenarios/s.yaml:4: policy.cases.1: unknown case \"deny-all\""},
		{"policy count out of range", "name: p\nkind: policy\npolicy:\n  cases: [baseline]\n  counts: [0, 9000]\nprofiles:\n  quick: {duration_s: 1, repeats: 1}\n", "scenarios/s.yaml:5: policy.counts.1: 9000 policies"},
		{"misspelt scale backend", "name: s\nkind: services-scale\ntests: []\nscale:\n  services: [100]\n  endpoints_per_service: 2\n  connects: 10\n  proxies: [iptables-nft, iptables-legasy]\nprofiles:\n  quick: {duration_s: 1, repeats: 1}\n",
			"scenarios/s.yaml:8: scale.proxies.1: unknown service proxy \"iptables-legasy\""},
		{"policy section elsewhere", head + "tests: [dts]\npolicy:\n  cases: [baseline]\nprofiles:\n  quick: {duration_s: 1, repeats: 3}\n", "scenarios/s.yaml:4: policy: only a policy scenario"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("scenarios/s.yaml", []byte(tc.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}

func TestLoadReportsEveryBadFile(t *testing.T) {
	labsFS := fstest.MapFS{
		"a.yaml": {Data: []byte("name: a\ncni: nope\nnetns:\n  model: flannel\n")},
		"b.yaml": {Data: []byte("name: b\ncni: flannel\nnetns:\n  model: flannel\n  extra: 1\n")},
	}
	_, err := Load(labsFS, "dir", fstest.MapFS{}, "sc")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"dir/a.yaml:2: cni:", "dir/b.yaml:5: extra: unknown field"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestKindSection(t *testing.T) {
	set, err := Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	k := set.Labs["flannel"].Kind
	if k == nil {
		t.Fatal("flannel has no kind section")
	}
	if k.KubeProxyMode != "iptables" || k.PodSubnet != "10.244.0.0/16" || k.CNI.Namespace != "kube-flannel" || k.CNI.Version != "v0.28.10" {
		t.Errorf("flannel kind section = %+v", k)
	}
	fl, ok := k.CNI.Values["flannel"].(map[string]any)
	if !ok || fl["backend"] != "vxlan" {
		t.Errorf("values.flannel = %#v", k.CNI.Values["flannel"])
	}

	const head = "name: x\ncni: flannel\nnetns:\n  model: flannel\nkind:\n"
	const cni = "  cni:\n    chart: c\n    version: v1\n    repo: https://example.org/charts\n    daemonsets: [agent]\n    no_offline_source: sources not served\n"
	const local = "  cni:\n    local_chart: kube-router\n    version: v2.1.0\n    daemonsets: [kube-router]\n"
	const manifests = "  cni:\n    manifests: [https://example.org/v1/m.yaml]\n    version: v1\n    daemonsets: [agent]\n    no_offline_source: sources not served\n"
	good, err := ParseLab("labs/x.yaml", []byte(head+cni))
	if err != nil {
		t.Fatalf("minimal kind section: %v", err)
	}
	if g := good.Kind; g.ServiceSubnet != "10.96.0.0/16" || g.CNI.Release != "c" || g.CNI.Namespace != "kube-system" {
		t.Errorf("defaults not applied: %+v", g)
	}
	for _, b := range []string{"iptables-nft", "iptables-legacy"} {
		pl, err := ParseLab("labs/x.yaml", []byte(head+"  kube_proxy_mode: "+b+"\n"+cni))
		if err != nil {
			t.Fatalf("kube_proxy_mode %s: %v", b, err)
		}
		if pl.Kind.KindMode() != "iptables" || pl.Kind.PinnedBackend() != b {
			t.Errorf("kube_proxy_mode %s: kind mode %q, pinned %q; want iptables, %s", b, pl.Kind.KindMode(), pl.Kind.PinnedBackend(), b)
		}
	}
	if good.Kind.KindMode() != "iptables" || good.Kind.PinnedBackend() != "" {
		t.Errorf("default kube_proxy_mode: kind mode %q, pinned %q; want iptables and none", good.Kind.KindMode(), good.Kind.PinnedBackend())
	}
	lc, err := ParseLab("labs/x.yaml", []byte(head+"  bridge_device: kube-bridge\n  node_routes: true\n  notes: [service proxy off]\n"+local))
	if err != nil {
		t.Fatalf("local chart recipe: %v", err)
	}
	if c := lc.Kind.CNI; c.Chart != "kube-router" || c.Release != "kube-router" || c.Namespace != "kube-system" {
		t.Errorf("local chart defaults: %+v", c)
	}
	mf, err := ParseLab("labs/x.yaml", []byte(head+manifests))
	if err != nil {
		t.Fatalf("manifests recipe: %v", err)
	}
	if c := mf.Kind.CNI; c.Chart != "" || len(c.Manifests) != 1 {
		t.Errorf("manifests recipe: %+v", c)
	}
	cases := []struct{ name, yaml, want string }{
		{"local chart with repo", head + local + "    repo: https://e.org\n", "labs/x.yaml:10: kind.cni.repo: a local_chart install takes no repo"},
		{"local chart with another chart", head + local + "    chart: other\n", "labs/x.yaml:10: kind.cni.chart: chart \"other\" differs"},
		{"local chart and no_offline_source", head + local + "    no_offline_source: x\n", "labs/x.yaml:10: kind.cni.no_offline_source: no_offline_source goes only"},
		{"no offline source", head + "  cni:\n    chart: c\n    version: v1\n    repo: https://e.org\n    daemonsets: [a]\n", "labs/x.yaml:6: kind.cni.no_offline_source: a recipe with no offline chart"},
		{"http manifest", head + "  cni:\n    manifests: [http://e.org/m.yaml]\n    version: v1\n    daemonsets: [a]\n    no_offline_source: x\n", "labs/x.yaml:7: kind.cni.manifests.0: \"http://e.org/m.yaml\" is not an https URL"},
		{"manifests with chart", head + manifests + "    chart: c\n", "labs/x.yaml:11: kind.cni.chart: a manifests install takes no chart"},
		{"manifests with values", head + manifests + "    values: {a: 1}\n", "labs/x.yaml:11: kind.cni.values: manifests take no chart values"},
		{"bad bridge", head + "  bridge_device: kube/bridge\n" + local, "labs/x.yaml:6: kind.bridge_device: \"kube/bridge\" is not a network device name"},
		{"routes and tunnel", head + "  tunnel_device: flannel.1\n  node_routes: true\n" + local, "labs/x.yaml:7: kind.node_routes: routes via node addresses"},
		{"empty note", head + "  notes: [\" \"]\n" + local, "labs/x.yaml:6: kind.notes.0: empty note"},
		{"bad pod subnet", head + "  pod_subnet: 10.244.0.0/33\n" + cni, "labs/x.yaml:6: kind.pod_subnet: \"10.244.0.0/33\" is not a CIDR"},
		{"service overlaps pods", head + "  pod_subnet: 10.0.0.0/8\n" + cni, "labs/x.yaml:5: kind.service_subnet: 10.96.0.0/16 overlaps pod_subnet"},
		{"overlaps node network", head + "  pod_subnet: 172.18.0.0/20\n" + cni, "labs/x.yaml:6: kind.pod_subnet: 172.18.0.0/20 overlaps the node network"},
		{"unknown proxy mode", head + "  kube_proxy_mode: userspace\n" + cni, "labs/x.yaml:6: kind.kube_proxy_mode: unknown kube-proxy mode"},
		{"misspelt pinned backend", head + "  kube_proxy_mode: iptables-nf\n" + cni, "labs/x.yaml:6: kind.kube_proxy_mode: unknown kube-proxy mode \"iptables-nf\""},
		{"none without proxy", head + "  kube_proxy_mode: none\n" + cni, "labs/x.yaml:5: kind.proxy: a lab without kube-proxy"},
		{"proxy with kube-proxy", head + "  proxy: cilium ebpf\n" + cni, "labs/x.yaml:6: kind.proxy: kube-proxy is the service proxy"},
		{"no chart", head + "  cni:\n    version: v1\n    repo: https://e.org\n    daemonsets: [a]\n", "labs/x.yaml:6: kind.cni.chart: required"},
		{"http repo", head + "  cni:\n    chart: c\n    version: v1\n    repo: http://e.org\n    daemonsets: [a]\n", "labs/x.yaml:9: kind.cni.repo: \"http://e.org\" is not an https"},
		{"module without dir", head + "  cni:\n    chart: c\n    version: v1\n    repo: https://e.org\n    daemonsets: [a]\n    module: example.org/m\n", "labs/x.yaml:11: kind.cni.module: module and module_dir go together"},
		{"no daemonsets", head + "  cni:\n    chart: c\n    version: v1\n    repo: https://e.org\n    no_offline_source: x\n", "labs/x.yaml:6: kind.cni.daemonsets: name the CNI's agent DaemonSets"},
		{"bad values path", head + cni + "    offline_image_values: [flannel..image]\n", "labs/x.yaml:12: kind.cni.offline_image_values.0: \"flannel..image\" is not a values path"},
		{"unknown field", head + "  nodes: 3\n" + cni, "labs/x.yaml:6: nodes: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLab("labs/x.yaml", []byte(tc.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}

func TestIsPolicyTest(t *testing.T) {
	for id, want := range map[string]bool{"matrix": true, "k0-connect": true, "k1000-dts": true, "k10-sts": true,
		"k10-dus": false, "kx-connect": false, "1000-connect": false, "k9000-connect": false, "dts": false, "k-connect": false} {
		if got := IsPolicyTest(id); got != want {
			t.Errorf("IsPolicyTest(%q) = %v, want %v", id, got, want)
		}
	}
}
