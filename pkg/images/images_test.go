package images

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images/gobuild"
)

func TestComponentRefsAreKubeadms(t *testing.T) {
	if got, want := componentRefs(), gobuild.KubeadmImages(); !reflect.DeepEqual(got, want) {
		t.Fatalf("component images %v, kubeadm expects %v", got, want)
	}
	if got := Offline().Components; !reflect.DeepEqual(got, gobuild.KubeadmImages()) {
		t.Fatalf("Offline().Components = %v", got)
	}
}

func TestSetNames(t *testing.T) {
	off := Offline()
	tests := []struct{ name, got, want string }{
		{"node", off.Node, "cnilab/kind-node:v1.34.4"},
		{"flannel", off.Flannel, "cnilab/flannel:v0.28.10"},
		{"kube-router", off.KubeRouter, "cnilab/kube-router:v2.1.0"},
		{"kube-router by CNI", off.CNIImages()["kube-router"], "cnilab/kube-router:v2.1.0"},
		{"no calico image", off.CNIImages()["calico"], ""},
		{"no upstream kube-router image (the chart's default applies)", Upstream().KubeRouter, ""},
		{"bench", off.Bench, "cnilab/bench:" + BenchTag},
		{"chart repo", off.FlannelChartRepo, "https://flannel-io.github.io/flannel/"},
		{"chart version", off.FlannelChartVersion, "v0.28.10"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if up := Upstream().Node; !strings.Contains(up, "@sha256:") || !strings.HasPrefix(up, "kindest/node:v1.34.") {
		t.Errorf("upstream node %q: want a digest-pinned kindest/node v1.34.x", up)
	}
	for _, ref := range append(off.DockerImages(), off.Components...) {
		if strings.HasSuffix(ref, ":latest") || !strings.Contains(ref, ":") {
			t.Errorf("%s: every image needs a pinned, non-latest tag", ref)
		}
	}
}

func TestContainerdConfig(t *testing.T) {
	var cfg struct {
		Version int `toml:"version"`
		Plugins map[string]struct {
			SandboxImage                     string `toml:"sandbox_image"`
			TolerateMissingHugetlbController bool   `toml:"tolerate_missing_hugetlb_controller"`
			RestrictOOMScoreAdj              bool   `toml:"restrict_oom_score_adj"`
			Containerd                       struct {
				Snapshotter        string `toml:"snapshotter"`
				DefaultRuntimeName string `toml:"default_runtime_name"`
				Runtimes           map[string]struct {
					RuntimeType     string `toml:"runtime_type"`
					BaseRuntimeSpec string `toml:"base_runtime_spec"`
					Options         struct {
						SystemdCgroup bool `toml:"SystemdCgroup"`
					} `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
			CNI struct {
				BinDir  string `toml:"bin_dir"`
				ConfDir string `toml:"conf_dir"`
			} `toml:"cni"`
		} `toml:"plugins"`
	}
	md, err := toml.Decode(string(file("node/config.toml")), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("keys the test does not check (typos?): %v", u)
	}
	cri := cfg.Plugins["io.containerd.grpc.v1.cri"]
	runc := cri.Containerd.Runtimes["runc"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"version", cfg.Version, 2},
		{"sandbox_image", cri.SandboxImage, PauseImage},
		{"tolerate_missing_hugetlb_controller", cri.TolerateMissingHugetlbController, true},
		{"restrict_oom_score_adj", cri.RestrictOOMScoreAdj, true},
		{"snapshotter", cri.Containerd.Snapshotter, "overlayfs"},
		{"default_runtime_name", cri.Containerd.DefaultRuntimeName, "runc"},
		{"runtime_type", runc.RuntimeType, "io.containerd.runc.v2"},
		{"base_runtime_spec", runc.BaseRuntimeSpec, "/etc/containerd/cri-base.json"},
		{"SystemdCgroup", runc.Options.SystemdCgroup, true},
		{"cni bin_dir", cri.CNI.BinDir, "/opt/cni/bin"},
		{"cni conf_dir", cri.CNI.ConfDir, "/etc/cni/net.d"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestScriptsParse(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, f := range []string{"node/entrypoint", "node/kubelet-cgroups"} {
		p := filepath.Join(t.TempDir(), "script")
		if err := os.WriteFile(p, file(f), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v: %s", f, err, out)
		}
	}
	ep := string(file("node/entrypoint"))
	for _, want := range []string{"detected cgroup v1", `exec "$@"`, "route_localnet=1", "systemd-machine-id-setup", "update-alternatives --set iptables", "--make-rshared /"} {
		if !strings.Contains(ep, want) {
			t.Errorf("entrypoint lacks %q", want)
		}
	}
}

func fakeBinaries(t *testing.T) Binaries {
	dir := t.TempDir()
	bin := Binaries{}
	for _, n := range append(AllBinaries(), "crictl") {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+n+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		bin[n] = p
	}
	return bin
}

type tarEntry struct {
	typ  byte
	mode int64
	data string
	link string
}

func readTar(t *testing.T, r io.Reader) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want the fixed epoch", h.Name, h.ModTime)
		}
		out[strings.TrimSuffix(h.Name, "/")] = tarEntry{typ: h.Typeflag, mode: h.Mode, data: string(b), link: h.Linkname}
	}
}

func TestNodeTreeModes(t *testing.T) {
	nt, err := nodeTree(fakeBinaries(t))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(nt.WriteTar(pw)) }()
	entries := readTar(t, pr)
	tests := []struct {
		path string
		typ  byte
		mode int64
		data string
	}{
		{"usr/local/bin/entrypoint", tar.TypeReg, 0o755, ""},
		{"usr/local/bin/kubelet-cgroups", tar.TypeReg, 0o755, ""},
		{"usr/bin/kubeadm", tar.TypeReg, 0o755, "#!/bin/sh\necho kubeadm\n"},
		{"usr/bin/kubelet", tar.TypeReg, 0o755, ""},
		{"usr/bin/kubectl", tar.TypeReg, 0o755, ""},
		{"opt/cni/bin/bridge", tar.TypeReg, 0o755, ""},
		{"opt/cni/bin/loopback", tar.TypeReg, 0o755, ""},
		{"usr/local/bin/crictl", tar.TypeReg, 0o755, ""},
		{"etc/containerd/config.toml", tar.TypeReg, 0o644, ""},
		{"etc/systemd/system/kubelet.service.d/10-kubeadm.conf", tar.TypeReg, 0o644, ""},
		{"etc/systemd/system/multi-user.target.wants/kubelet.service", tar.TypeSymlink, 0o777, ""},
		{"kind/version", tar.TypeReg, 0o644, "v1.34.4"},
		{"etc/kubernetes/manifests", tar.TypeDir, 0o755, ""},
		{"etc", tar.TypeDir, 0o755, ""},
	}
	for _, tc := range tests {
		e, ok := entries[tc.path]
		if !ok {
			t.Errorf("%s missing", tc.path)
			continue
		}
		if e.typ != tc.typ || e.mode != tc.mode {
			t.Errorf("%s: type %c mode %o, want %c %o", tc.path, e.typ, e.mode, tc.typ, tc.mode)
		}
		if tc.data != "" && e.data != tc.data {
			t.Errorf("%s = %q, want %q", tc.path, e.data, tc.data)
		}
	}
	if v := entries["kind/version"].data; strings.Count(v, "\n") > 0 || v != KubernetesVersion {
		t.Errorf("/kind/version must be exactly one line %q, got %q", KubernetesVersion, v)
	}
}

func TestContentKeys(t *testing.T) {
	bin := fakeBinaries(t)
	tools := LayerSource{Name: "tools", Tar: "/nonexistent", Key: toolsRootfs.Key()}
	base, err := benchSpec(bin, tools)
	if err != nil {
		t.Fatal(err)
	}
	key := base.ContentKey()
	if again, _ := benchSpec(bin, tools); again.ContentKey() != key {
		t.Fatal("the same inputs gave different content keys")
	}
	changedBin := Binaries{}
	for k, v := range bin {
		changedBin[k] = v
	}
	p := filepath.Join(t.TempDir(), "cnilab")
	if err := os.WriteFile(p, []byte("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	changedBin["cnilab"] = p
	changed, _ := benchSpec(changedBin, tools)
	otherTools := tools
	otherTools.Key = "different"
	otherBase, _ := benchSpec(bin, otherTools)
	cfg := base
	cfg.Config.Cmd = []string{"true"}
	for name, s := range map[string]Spec{"binary content": changed, "base layer": otherBase, "config": cfg} {
		if s.ContentKey() == key {
			t.Errorf("changing the %s did not change the content key", name)
		}
	}

	r := Rootfs{Name: "x", Packages: []string{"a", "b"}, Hooks: []string{"h"}}
	if r.Key() != (Rootfs{Name: "x", Packages: []string{"b", "a"}, Hooks: []string{"h"}}).Key() {
		t.Error("package order changed the rootfs key")
	}
	if r.Key() == (Rootfs{Name: "x", Packages: []string{"a", "b"}, Hooks: []string{"h2"}}).Key() {
		t.Error("a hook change did not change the rootfs key")
	}
	if nodeRootfs.Key() == toolsRootfs.Key() {
		t.Error("node and tools rootfs share a key")
	}
}

func TestRootfsArgs(t *testing.T) {
	args := strings.Join(nodeRootfs.Args("/out.tar"), " ")
	for _, want := range []string{"--variant=minbase", "--include=systemd,systemd-sysv,containerd,runc,", "path-exclude=/usr/share/man/*", " bookworm /out.tar deb http://deb.debian.org/debian bookworm main"} {
		if !strings.Contains(args, want) {
			t.Errorf("mmdebstrap args lack %q: %s", want, args)
		}
	}
}

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	tr := NewTree()
	tr.File("hello", 0o644, []byte("hi"))
	tr.Dir("tmp", 0o1777)
	base := filepath.Join(dir, "base.tar")
	bt := NewTree()
	bt.File("etc/os-release", 0o644, []byte("ID=debian\n"))
	if err := bt.WriteTarFile(base); err != nil {
		t.Fatal(err)
	}
	s := Spec{Ref: "cnilab/test:v1", Config: nodeConfig(),
		Layers: []LayerSource{{Name: "base", Tar: base, Key: "k"}, {Name: "top", Tree: tr}}}
	other := Spec{Ref: "registry.k8s.io/pause:3.10.1", Config: v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		Layers: []LayerSource{{Name: "base", Tar: base, Key: "k"}}}
	archive := filepath.Join(dir, "out.tar")
	if err := WriteArchive(archive, dir, s, other); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, d := range m {
		for _, tag := range d.RepoTags {
			tags[tag] = true
		}
	}
	if !tags["cnilab/test:v1"] || !tags["registry.k8s.io/pause:3.10.1"] || len(m) != 2 {
		t.Fatalf("RepoTags %v", m)
	}
	ref, _ := name.NewTag("cnilab/test:v1")
	img, err := tarball.ImageFromPath(archive, &ref)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; !reflect.DeepEqual(got, []string{"/usr/local/bin/entrypoint", "/sbin/init"}) {
		t.Errorf("Entrypoint %v", got)
	}
	if cf.Config.StopSignal != "SIGRTMIN+3" || cf.Config.Env[0] != "container=docker" {
		t.Errorf("StopSignal %q Env %v", cf.Config.StopSignal, cf.Config.Env)
	}
	if cf.Config.Labels[ContentLabel] != s.ContentKey() {
		t.Errorf("content label %q, want %q", cf.Config.Labels[ContentLabel], s.ContentKey())
	}
	if !cf.Created.Time.Equal(epoch) || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("created %v os %s arch %s", cf.Created, cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, rc)
	rc.Close()
	if entries["hello"].data != "hi" || entries["tmp"].mode != 0o1777 {
		t.Errorf("top layer %v", entries)
	}
	// Same inputs, same archive: the digests are reproducible.
	again := filepath.Join(dir, "again.tar")
	if err := WriteArchive(again, t.TempDir(), s, other); err != nil {
		t.Fatal(err)
	}
	img2, _ := tarball.ImageFromPath(again, &ref)
	d1, _ := img.ConfigName()
	d2, _ := img2.ConfigName()
	if d1 != d2 {
		t.Errorf("config digest %s then %s", d1, d2)
	}
}

func TestInspect(t *testing.T) {
	inspectJSON, _ := json.Marshal(map[string]any{"Id": "sha256:abc", "Size": 1234,
		"Config": map[string]any{"Labels": map[string]string{ContentLabel: "k1"}}})
	tests := []struct {
		name    string
		resp    command.FakeResponse
		want    *ImageInfo
		wantErr error
	}{
		{"present", command.FakeResponse{Stdout: string(inspectJSON)}, &ImageInfo{ID: "sha256:abc", Size: 1234, Labels: map[string]string{ContentLabel: "k1"}, Content: "k1"}, nil},
		{"absent", command.FakeResponse{Stderr: "Error: No such image: x", Err: errors.New("exit status 1")}, nil, nil},
		{"no engine", command.FakeResponse{Stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", Err: errors.New("exit status 1")}, nil, ErrNoEngine},
		{"garbage", command.FakeResponse{Stdout: "{}"}, nil, errors.New("any")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &command.Fake{Responses: map[string]command.FakeResponse{"docker": tc.resp}}
			got, err := Inspect(t.Context(), f, "x")
			switch {
			case tc.wantErr == ErrNoEngine && !errors.Is(err, ErrNoEngine):
				t.Fatalf("err %v, want ErrNoEngine", err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("want an error")
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPresent(t *testing.T) {
	f := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Func: func(c command.Cmd) (command.Result, error) {
		ref := c.Args[len(c.Args)-1]
		if ref == NodeImage {
			return command.Result{Stdout: []byte(`{"Id":"sha256:1","Size":1}`)}, nil
		}
		return command.Result{}, &command.Error{Cmd: c.String(), Stderr: "Error: No such image: " + ref, Err: errors.New("exit status 1")}
	}}}}
	missing, err := Present(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(missing, []string{FlannelImage, KubeRouterImage, BenchImage, CiliumImage, CiliumOperatorImage}) {
		t.Fatalf("missing %v", missing)
	}
	if err := MissingError(missing); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "run `cnilab images build`") {
		t.Fatalf("MissingError = %v", err)
	}
	if MissingError(nil) != nil {
		t.Fatal("nothing missing must be no error")
	}
}

func TestMissingRefs(t *testing.T) {
	comps := []Spec{{Ref: PauseImage}, {Ref: EtcdImage}}
	if got := missingRefs("registry.k8s.io/pause:3.10.1\nsha256:abcd\n", comps); !reflect.DeepEqual(got, []string{EtcdImage}) {
		t.Fatalf("missing %v", got)
	}
}

func TestChoiceRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := RecordedChoice(dir); ok || err != nil {
		t.Fatalf("empty dir: ok %v err %v", ok, err)
	}
	c := Choice{Source: SourceUpstream, Reason: "auto: pullable"}
	if err := RecordChoice(dir, c); err != nil {
		t.Fatal(err)
	}
	got, ok, err := RecordedChoice(dir)
	if err != nil || !ok || got.Source != SourceUpstream || got.Reason != c.Reason {
		t.Fatalf("got %+v ok %v err %v", got, ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, choiceFile), []byte(`{"source":"weird"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RecordedChoice(dir); err == nil {
		t.Fatal("an unknown source must be an error")
	}
}
