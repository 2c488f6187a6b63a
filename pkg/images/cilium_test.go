package images

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
)

// fakeCiliumModule is a module directory with the files the agent image
// takes from github.com/cilium/cilium: scripts and bpf/ with entries
// install-bpf keeps and skips.
func fakeCiliumModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range map[string]string{
		"images/cilium/init-container.sh":      "#!/bin/sh\n",
		"plugins/cilium-cni/install-plugin.sh": "#!/bin/bash\n",
		"plugins/cilium-cni/cni-uninstall.sh":  "#!/bin/bash\n",
		"bpf/bpf_lxc.c":                        "int x;\n",
		"bpf/include/bpf/ctx/skb.h":            "/* h */\n",
		"bpf/lib/common.h":                     "/* h */\n",
		"bpf/Makefile":                         "all:\n",
		"bpf/Makefile.bpf":                     "x:\n",
		"bpf/tests/lb_test.c":                  "int t;\n",
		"bpf/complexity-tests/a/b.txt":         "x\n",
		"bpf/custom/bytecount.h":               "x\n",
		"bpf/bpf_lxc.i":                        "preprocessed\n",
	} {
		f := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		// The module cache is read-only.
		if err := os.WriteFile(f, []byte(data), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCiliumAgentLayout(t *testing.T) {
	base := LayerSource{Name: "cilium-rootfs", Tar: "/nonexistent.tar", Key: ciliumRootfs.Key()}
	s, err := ciliumAgentSpec(fakeBinaries(t), base, fakeCiliumModule(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Ref != CiliumImage || len(s.Layers) != 2 || s.Layers[0].Key != base.Key {
		t.Fatalf("spec %s with %d layers", s.Ref, len(s.Layers))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.Layers[1].Tree.WriteTar(pw)) }()
	entries := readTar(t, pr)
	want := map[string]int64{
		"usr/bin/cilium-agent": 0o755, "usr/bin/cilium-dbg": 0o755, "usr/bin/cilium-health": 0o755,
		"usr/bin/cilium-health-responder": 0o755, "usr/bin/cilium-mount": 0o755, "usr/bin/cilium-sysctlfix": 0o755,
		"usr/bin/cilium": 0o777, "opt/cni/bin/cilium-cni": 0o755, "cni/loopback": 0o755,
		"init-container.sh": 0o755, "install-plugin.sh": 0o755, "cni-uninstall.sh": 0o755,
		"var/lib/cilium/bpf/bpf_lxc.c": 0o644, "var/lib/cilium/bpf/include/bpf/ctx/skb.h": 0o644,
		"var/lib/cilium/bpf/lib/common.h": 0o644, "tmp": 0o1777,
	}
	for p, mode := range want {
		e, ok := entries[p]
		if !ok {
			t.Errorf("%s missing", p)
		} else if e.mode != mode {
			t.Errorf("%s: mode %o, want %o", p, e.mode, mode)
		}
	}
	for p := range entries {
		if strings.HasPrefix(p, "var/lib/cilium/bpf/") {
			rel := strings.TrimPrefix(p, "var/lib/cilium/bpf/")
			if ciliumBPFSkipped(rel) {
				t.Errorf("%s is in the image; install-bpf leaves it out", p)
			}
		}
	}
	if e := entries["usr/bin/cilium"]; e.link != "cilium-dbg" {
		t.Errorf("usr/bin/cilium links to %q, want cilium-dbg", e.link)
	}
	for _, pkg := range []string{"clang-19", "llvm-19", "iptables", "ipset", "iproute2", "util-linux", "bash", "kmod"} {
		if !strings.Contains(strings.Join(ciliumRootfs.Packages, " "), pkg) {
			t.Errorf("cilium rootfs lacks %s", pkg)
		}
	}
	op, err := ciliumOperatorSpec(fakeBinaries(t), base)
	if err != nil {
		t.Fatal(err)
	}
	if op.Ref != CiliumOperatorImage || op.Layers[0].Key != base.Key || op.Config.Entrypoint[0] != "/usr/bin/cilium-operator-generic" {
		t.Errorf("operator spec %s %v", op.Ref, op.Config.Entrypoint)
	}
}

func TestModuleDirErrors(t *testing.T) {
	tests := []struct {
		name string
		resp command.FakeResponse
		want string
	}{
		{"ok", command.FakeResponse{Stdout: `{"Dir": "/m/x@v1"}`}, ""},
		{"proxy refuses", command.FakeResponse{Stdout: `{"Error": "403 Forbidden"}`, Err: os.ErrPermission}, "403 Forbidden"},
		{"garbage", command.FakeResponse{Stdout: "nope"}, "unreadable output"},
		{"no dir", command.FakeResponse{Stdout: `{}`}, "named no directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &command.Fake{Responses: map[string]command.FakeResponse{"go": tc.resp}}
			dir, err := moduleDir(t.Context(), f, "m", "v1")
			if tc.want == "" {
				if err != nil || dir != "/m/x@v1" {
					t.Fatalf("moduleDir = %q, %v", dir, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCiliumImage runs what the chart's containers and the agent run first
// in the built agent image: clang 19 on PATH, the BPF sources, the tools
// the init containers call.
func TestCiliumImage(t *testing.T) {
	r := needNodeImage(t)
	script := strings.Join([]string{
		"clang --version | head -n1",
		"test -f /var/lib/cilium/bpf/bpf_lxc.c && test -d /var/lib/cilium/bpf/include && test ! -e /var/lib/cilium/bpf/tests",
		"cilium-dbg version 2>&1 | head -n1",
		"command -v nsenter cilium-mount cilium-sysctlfix cilium-health-responder iptables ip6tables ipset ip >/dev/null",
		"test -x /opt/cni/bin/cilium-cni && test -x /cni/loopback && test -x /install-plugin.sh && test -x /init-container.sh",
		"echo ok",
	}, " && ")
	res, err := r.Run(t.Context(), command.Cmd{Name: "docker", Args: []string{"run", "--rm", "--network", "none", "--entrypoint", "/bin/bash", CiliumImage, "-c", script}})
	if err != nil {
		t.Fatalf("%s: %v", CiliumImage, err)
	}
	out := string(res.Stdout)
	for _, want := range []string{"clang version 19.", "1.20.2", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s printed %q, want %q in it", CiliumImage, out, want)
		}
	}
}
