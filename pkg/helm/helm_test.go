package helm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/scenarios"
)

func flannelDef(t *testing.T) *config.Lab {
	t.Helper()
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	return set.Labs["flannel"]
}

// TestRenderFlannelOffline renders flannel's upstream chart from the
// flannel Go module (what an offline install uses) with the lab's values
// and the offline image overrides, and checks what the cluster would get.
func TestRenderFlannelOffline(t *testing.T) {
	k := flannelDef(t).Kind
	dir, err := ModuleChartDir(context.Background(), command.Exec{}, k.CNI.Module, k.CNI.Version, k.CNI.ModuleDir)
	if err != nil {
		t.Fatalf("flannel chart from the module cache: %v", err)
	}
	ch, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Version != k.CNI.Version {
		t.Errorf("chart version %s, lab pins %s", ch.Metadata.Version, k.CNI.Version)
	}
	values := k.CNI.Values
	for _, p := range k.CNI.OfflineImageValues {
		if values, err = WithImage(values, p, "cnilab/flannel:v0.28.10"); err != nil {
			t.Fatal(err)
		}
	}
	manifest, err := Render(ch, Release{Name: k.CNI.Release, Namespace: k.CNI.Namespace, Values: values, PullNever: true}, "v1.34.4")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Docs(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var ds, cm map[string]any
	for _, o := range objs {
		kind := o["kind"].(string)
		kinds = append(kinds, kind)
		name := o["metadata"].(map[string]any)["name"]
		switch {
		case kind == "DaemonSet" && name == "kube-flannel-ds":
			ds = o
		case kind == "ConfigMap" && name == "kube-flannel-cfg":
			cm = o
		}
	}
	if ds == nil || cm == nil {
		t.Fatalf("rendered kinds %v: no kube-flannel-ds DaemonSet or kube-flannel-cfg ConfigMap", kinds)
	}
	if ns := ds["metadata"].(map[string]any)["namespace"]; ns != "kube-flannel" {
		t.Errorf("DaemonSet namespace %v", ns)
	}
	spec := ds["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	var images []string
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range spec[key].([]any) {
			cm := c.(map[string]any)
			images = append(images, cm["name"].(string)+"="+cm["image"].(string)+" "+cm["imagePullPolicy"].(string))
		}
	}
	want := []string{
		"install-cni-plugin=cnilab/flannel:v0.28.10 Never",
		"install-cni=cnilab/flannel:v0.28.10 Never",
		"kube-flannel=cnilab/flannel:v0.28.10 Never",
	}
	if d := cmp.Diff(want, images); d != "" {
		t.Errorf("containers (-want +got):\n%s", d)
	}
	data := cm["data"].(map[string]any)
	if conf := data["cni-conf.json"].(string); !strings.Contains(conf, `"cniVersion": "0.4.0"`) {
		t.Errorf("cni-conf.json does not say cniVersion 0.4.0:\n%s", conf)
	}
	net := data["net-conf.json"].(string)
	for _, w := range []string{`"Network": "10.244.0.0/16"`, `"Type": "vxlan"`} {
		if !strings.Contains(net, w) {
			t.Errorf("net-conf.json lacks %s:\n%s", w, net)
		}
	}
	// The lab definition is shared by concurrent labs: rendering must not
	// have written into it.
	if _, ok := k.CNI.Values["flannel"].(map[string]any)["image"]; ok {
		t.Error("WithImage wrote into the lab definition's values")
	}
}

func TestModuleChartDirErrors(t *testing.T) {
	cases := []struct {
		name string
		resp command.FakeResponse
		want string
	}{
		{"proxy refuses", command.FakeResponse{Stdout: `{"Path":"m","Version":"v1","Error":"403 Forbidden"}`, Err: errors.New("exit status 1")}, "download module m@v1: 403 Forbidden"},
		{"garbage", command.FakeResponse{Stdout: "not json"}, "unreadable output"},
		{"no go", command.FakeResponse{Err: errors.New("executable file not found")}, "download module m@v1: "},
		{"no dir", command.FakeResponse{Stdout: `{"Path":"m","Version":"v1"}`}, "named no directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &command.Fake{Responses: map[string]command.FakeResponse{"go": tc.resp}}
			_, err := ModuleChartDir(context.Background(), f, "m", "v1", "chart")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	f := &command.Fake{Responses: map[string]command.FakeResponse{"go": {Stdout: `{"Path":"m","Version":"v1","Dir":"/mod/m@v1"}`}}}
	dir, err := ModuleChartDir(context.Background(), f, "m", "v1", "chart/x")
	if err != nil || dir != "/mod/m@v1/chart/x" {
		t.Errorf("dir %q, %v", dir, err)
	}
}

func TestWithImage(t *testing.T) {
	cases := []struct {
		name, path, image string
		in, want          map[string]any
		err               string
	}{
		{"creates maps", "a.image", "cnilab/x:v1", map[string]any{"b": 1}, map[string]any{"b": 1, "a": map[string]any{"image": map[string]any{"repository": "cnilab/x", "tag": "v1"}}}, ""},
		{"keeps siblings", "image", "reg:5000/x:v2", map[string]any{"image": map[string]any{"pullPolicy": "IfNotPresent"}}, map[string]any{"image": map[string]any{"pullPolicy": "IfNotPresent", "repository": "reg:5000/x", "tag": "v2"}}, ""},
		{"no tag", "image", "reg:5000/x", nil, nil, "has no tag"},
		{"not a map", "a.image", "x:v1", map[string]any{"a": "s"}, nil, "a is not a map"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WithImage(tc.in, tc.path, tc.image)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPullPolicy(t *testing.T) {
	in := `# Source: x/templates/a.yaml
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: "a:1"}]
---
# Source: x/templates/empty.yaml
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: i, image: "b:1", imagePullPolicy: Always}]
          containers: [{name: c, image: "b:1"}]
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: 1}]}
`
	out, err := PullPolicy("Never").Run(bytes.NewBufferString(in))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Docs(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("%d objects, want 3:\n%s", len(objs), out)
	}
	if n := strings.Count(out.String(), "imagePullPolicy: Never"); n != 3 {
		t.Errorf("%d containers set to Never, want 3:\n%s", n, out)
	}
	if strings.Contains(out.String(), "Always") {
		t.Errorf("Always survived:\n%s", out)
	}
	if _, err := PullPolicy("Never").Run(bytes.NewBufferString("a: [b\n")); err == nil {
		t.Error("broken YAML accepted")
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"c/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n")},
		"c/values.yaml":         {Data: []byte("n: 2\n")},
		"c/templates/cm.yaml":   {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: {{ .Release.Namespace }}}\ndata: {n: {{ .Values.n | quote }}}\n")},
		"other/templates/x.txt": {Data: []byte("not part of the chart")},
	}
	ch, err := LoadFS(fsys, "c")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Render(ch, Release{Name: "r", Namespace: "ns", Values: map[string]any{"n": 3}}, "v1.34.4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, `n: "3"`) || !strings.Contains(m, "namespace: ns") {
		t.Errorf("rendered:\n%s", m)
	}
}
