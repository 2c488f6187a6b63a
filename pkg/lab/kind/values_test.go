package kind

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/scenarios"
)

func loadLab(t *testing.T, name string) *config.Lab {
	t.Helper()
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	l, ok := set.Labs[name]
	if !ok || l.Kind == nil {
		t.Fatalf("lab %s has no kind recipe", name)
	}
	return l
}

func TestRenderValues(t *testing.T) {
	d := ValuesFor("cnl-r1-cilium")
	tests := []struct {
		name    string
		in      map[string]any
		want    map[string]any
		wantErr string
	}{
		{"no templates", map[string]any{"a": 1, "b": map[string]any{"c": true, "d": "x"}}, map[string]any{"a": 1, "b": map[string]any{"c": true, "d": "x"}}, ""},
		{"control plane", map[string]any{"k8sServiceHost": "{{ .ControlPlane }}", "k8sServicePort": 6443},
			map[string]any{"k8sServiceHost": "cnl-r1-cilium-control-plane", "k8sServicePort": 6443}, ""},
		{"nested and in lists", map[string]any{"a": map[string]any{"b": []any{"x", "{{ .Cluster }}-y"}}},
			map[string]any{"a": map[string]any{"b": []any{"x", "cnl-r1-cilium-y"}}}, ""},
		{"nil stays", map[string]any{"a": nil}, map[string]any{"a": nil}, ""},
		{"unknown field", map[string]any{"h": "{{ .Host }}"}, nil, "h:"},
		{"malformed", map[string]any{"a": map[string]any{"h": "{{ .Cluster "}}, nil, "a.h:"},
		{"nil map", nil, map[string]any{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renderValues(tc.in, d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestChartValuesLeavesRecipeAlone(t *testing.T) {
	k := loadLab(t, "cilium").Kind
	before := fmt.Sprint(k.CNI.Values)
	off, err := ChartValues(k, ValuesFor("cnl-a-cilium"), true, images.FlannelImage)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(k.CNI.Values) != before {
		t.Errorf("ChartValues wrote into the shared recipe: %v", k.CNI.Values)
	}
	img := off["image"].(map[string]any)
	if img["override"] != images.CiliumImage || img["pullPolicy"] != "Never" || img["useDigest"] != false {
		t.Errorf("offline image values %v", img)
	}
	up, err := ChartValues(k, ValuesFor("cnl-a-cilium"), false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up["image"]; ok {
		t.Errorf("upstream values carry offline image settings: %v", up["image"])
	}
	if up["k8sServiceHost"] != "cnl-a-cilium-control-plane" {
		t.Errorf("upstream k8sServiceHost = %v", up["k8sServiceHost"])
	}
}

// TestRecipeOfflineImagesAreInTheSet: every image a recipe loads offline is
// one `cnilab images build` makes.
func TestRecipeOfflineImagesAreInTheSet(t *testing.T) {
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	built := images.Offline().DockerImages()
	for name, l := range set.Labs {
		if l.Kind == nil {
			continue
		}
		for path, ref := range l.Kind.CNI.OfflineImages {
			if !slices.Contains(built, ref) {
				t.Errorf("lab %s: %s = %s, which the offline set does not build (%v)", name, path, ref, built)
			}
		}
	}
}

// TestRenderCiliumOffline renders Cilium's upstream chart from the cilium
// Go module (what an offline install uses) with each Cilium lab's values,
// and checks what the cluster would get: kube-proxy replacement against
// the control-plane node, the offline images never pulled, no Envoy.
func TestRenderCiliumOffline(t *testing.T) {
	for _, name := range []string{"cilium", "cilium-native"} {
		t.Run(name, func(t *testing.T) {
			k := loadLab(t, name).Kind
			dir, err := helm.ModuleChartDir(context.Background(), command.Exec{}, k.CNI.Module, k.CNI.Version, k.CNI.ModuleDir)
			if err != nil {
				t.Fatalf("cilium chart from the module cache: %v", err)
			}
			ch, err := helm.LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if v := "v" + ch.Metadata.Version; v != k.CNI.Version {
				t.Errorf("chart version %s, lab pins %s", ch.Metadata.Version, k.CNI.Version)
			}
			values, err := ChartValues(k, ValuesFor("cnl-t1-"+name), true, images.FlannelImage)
			if err != nil {
				t.Fatal(err)
			}
			manifest, err := helm.Render(ch, helm.Release{Name: k.CNI.Release, Namespace: k.CNI.Namespace, Values: values, PullNever: true}, "v1.34.4")
			if err != nil {
				t.Fatal(err)
			}
			objs, err := helm.Docs(manifest)
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			var workloads []string
			var containers []string
			envHost := map[string]string{}
			for _, o := range objs {
				kind, _ := o["kind"].(string)
				meta := o["metadata"].(map[string]any)
				oname, _ := meta["name"].(string)
				if kind == "ConfigMap" && oname == "cilium-config" {
					cfg = o["data"].(map[string]any)
				}
				if kind != "DaemonSet" && kind != "Deployment" && kind != "Job" {
					continue
				}
				workloads = append(workloads, kind+"/"+oname)
				spec := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				for _, key := range []string{"initContainers", "containers"} {
					cs, _ := spec[key].([]any)
					for _, c := range cs {
						cm := c.(map[string]any)
						containers = append(containers, fmt.Sprintf("%s/%s=%s %s", oname, cm["name"], cm["image"], cm["imagePullPolicy"]))
						envs, _ := cm["env"].([]any)
						for _, e := range envs {
							em := e.(map[string]any)
							if em["name"] == "KUBERNETES_SERVICE_HOST" {
								envHost[oname+"/"+cm["name"].(string)] = fmt.Sprint(em["value"])
							}
						}
					}
				}
			}
			slices.Sort(workloads)
			if want := []string{"DaemonSet/cilium", "Deployment/cilium-operator"}; !slices.Equal(workloads, want) {
				t.Errorf("workloads %v, want %v (no cilium-envoy DaemonSet, no hubble, no certgen)", workloads, want)
			}
			if cfg == nil {
				t.Fatal("no cilium-config ConfigMap")
			}
			wantCfg := map[string]string{
				"kube-proxy-replacement": "true",
				"enable-l7-proxy":        "false",
				"external-envoy-proxy":   "false",
				"enable-hubble":          "false",
				"ipam":                   "kubernetes",
				// cgroup v1 host: socket LB must not reach outside the nodes.
				"bpf-lb-sock-hostns-only": "true",
			}
			if name == "cilium" {
				wantCfg["routing-mode"], wantCfg["tunnel-protocol"] = "tunnel", "vxlan"
			} else {
				wantCfg["routing-mode"], wantCfg["auto-direct-node-routes"], wantCfg["ipv4-native-routing-cidr"] = "native", "true", "10.244.0.0/16"
			}
			for key, want := range wantCfg {
				if got := fmt.Sprint(cfg[key]); got != want {
					t.Errorf("cilium-config %s = %q, want %q", key, got, want)
				}
			}
			for _, c := range containers {
				if !strings.HasSuffix(c, "="+images.CiliumImage+" Never") && !strings.HasSuffix(c, "="+images.CiliumOperatorImage+" Never") {
					t.Errorf("container %s: want the offline cilium images with pull policy Never", c)
				}
			}
			if !slices.ContainsFunc(containers, func(c string) bool {
				return strings.HasPrefix(c, "cilium-operator/") && strings.Contains(c, images.CiliumOperatorImage)
			}) {
				t.Errorf("the operator does not run %s: %v", images.CiliumOperatorImage, containers)
			}
			// The agent and the operator reach the API server by name, not
			// through a Service kube-proxy would have served.
			for _, c := range []string{"cilium/cilium-agent", "cilium-operator/cilium-operator"} {
				if got := envHost[c]; got != "cnl-t1-"+name+"-control-plane" {
					t.Errorf("%s KUBERNETES_SERVICE_HOST = %q, want cnl-t1-%s-control-plane (all: %v)", c, got, name, envHost)
				}
			}
		})
	}
}
