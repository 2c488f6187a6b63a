package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images/gobuild"
)

// CiliumVersion is the Cilium release of the offline set.
const CiliumVersion = gobuild.CiliumVersion

// Cilium image names of the offline set. The operator's name is what the
// chart's own naming (<repository>-<cloud><suffix>) gives for the generic
// flavour; the lab sets both through the chart's image.override values.
const (
	CiliumImage         = "cnilab/cilium:" + CiliumVersion
	CiliumOperatorImage = "cnilab/cilium-operator-generic:" + CiliumVersion
)

// CiliumModule is the Go module the Cilium binaries, the chart, the BPF
// sources and the agent's helper scripts all come from.
const CiliumModule = "github.com/cilium/cilium"

var (
	ciliumAgentBinaries = []string{
		"cilium-agent", "cilium-dbg", "cilium-cni", "cilium-health", "cilium-health-responder",
		"cilium-mount", "cilium-sysctlfix", "loopback",
	}
	ciliumOperatorBinaries = []string{"cilium-operator-generic"}
)

// ciliumRootfs is the agent's Debian base. The agent compiles its BPF
// programs at run time with the `clang` on PATH (clang ≥ 18; bookworm's
// clang-19 installs only /usr/bin/clang-19, hence the links), and execs
// iptables/ip6tables and their save/restore, ipset and ip. The chart's init
// containers run bash scripts with cp, rm, mount, grep and nsenter
// (util-linux). The operator image reuses this base: one layer in the
// Docker store and in each node's archive instead of two bases.
var ciliumRootfs = Rootfs{
	Name: "cilium",
	Packages: []string{
		"clang-19", "llvm-19", "iproute2", "iptables", "ipset", "kmod", "ca-certificates", "bash",
		"coreutils", "findutils", "grep", "mount", "util-linux",
	},
	Hooks: []string{
		`ln -sf clang-19 "$1"/usr/bin/clang && ln -sf llc-19 "$1"/usr/bin/llc`,
		`rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log`,
	},
}

// ciliumScripts are the helper scripts the chart runs from the agent image
// (clean-cilium-state's /init-container.sh, install-cni-binaries'
// /install-plugin.sh, the agent's preStop /cni-uninstall.sh), taken from
// the module at build time: module path → image path.
var ciliumScripts = map[string]string{
	"images/cilium/init-container.sh":      "init-container.sh",
	"plugins/cilium-cni/install-plugin.sh": "install-plugin.sh",
	"plugins/cilium-cni/cni-uninstall.sh":  "cni-uninstall.sh",
}

// ciliumBPFSkipped are the bpf/ entries `make install-bpf` leaves out
// (Makefile.defs BPF_SRCFILES_IGNORE): tests, the complexity tests, custom
// programs and the Makefiles.
func ciliumBPFSkipped(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "tests", "complexity-tests", "custom", ".gitignore", "Makefile", "Makefile.bpf":
		return true
	}
	return strings.HasSuffix(rel, ".i") || strings.HasSuffix(rel, ".s") || rel == ".rebuild_all"
}

// ciliumAgentSpec is the agent image, laid out as upstream's: binaries in
// /usr/bin (cilium is cilium-dbg), the CNI plugin in /opt/cni/bin, the
// loopback plugin in /cni for hosts without one, the scripts at /, and the
// BPF sources in /var/lib/cilium/bpf (LibraryPath /var/lib/cilium, BpfDir
// "bpf" in pkg/defaults). src is the module's directory.
func ciliumAgentSpec(bin Binaries, base LayerSource, src string) (Spec, error) {
	t := NewTree()
	for _, b := range []string{"cilium-agent", "cilium-dbg", "cilium-health", "cilium-health-responder", "cilium-mount", "cilium-sysctlfix"} {
		if err := bin.add(t, b, "usr/bin/"+b); err != nil {
			return Spec{}, err
		}
	}
	t.Symlink("usr/bin/cilium", "cilium-dbg")
	if err := bin.add(t, "cilium-cni", "opt/cni/bin/cilium-cni"); err != nil {
		return Spec{}, err
	}
	if err := bin.add(t, "loopback", "cni/loopback"); err != nil {
		return Spec{}, err
	}
	for from, to := range ciliumScripts {
		if err := t.HostFile(to, 0o755, filepath.Join(src, filepath.FromSlash(from))); err != nil {
			return Spec{}, fmt.Errorf("cilium image: %w", err)
		}
	}
	bpf := filepath.Join(src, "bpf")
	t.Dir("var/lib/cilium", 0o750)
	err := filepath.WalkDir(bpf, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(bpf, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ciliumBPFSkipped(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := path.Join("var/lib/cilium/bpf", rel)
		switch {
		case d.IsDir():
			t.Dir(dst, 0o755)
		case d.Type().IsRegular():
			// The module cache is read-only (0444); install-bpf installs 0644.
			return t.HostFile(dst, 0o644, p)
		}
		return nil
	})
	if err != nil {
		return Spec{}, fmt.Errorf("cilium image: bpf sources: %w", err)
	}
	t.Dir("home/cilium", 0o755)
	t.Dir("tmp", 0o1777)
	return Spec{Ref: CiliumImage, Layers: []LayerSource{base, {Name: "cilium", Tree: t}},
		Config: v1.Config{
			Env:        []string{defaultPath, "INITSYSTEM=SYSTEMD"},
			WorkingDir: "/home/cilium",
			Cmd:        []string{"/usr/bin/cilium-dbg"},
		}}, nil
}

// ciliumOperatorSpec is the generic operator: the chart runs it as
// cilium-operator-generic with args only.
func ciliumOperatorSpec(bin Binaries, base LayerSource) (Spec, error) {
	t := NewTree()
	if err := bin.add(t, "cilium-operator-generic", "usr/bin/cilium-operator-generic"); err != nil {
		return Spec{}, err
	}
	return Spec{Ref: CiliumOperatorImage, Layers: []LayerSource{base, {Name: "cilium-operator", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/usr/bin/cilium-operator-generic"}}}, nil
}

// moduleDir is the directory of mod@version in the Go module cache,
// downloading it from the module proxy when absent.
func moduleDir(ctx context.Context, r command.Runner, mod, version string) (string, error) {
	res, err := r.Run(ctx, command.Cmd{Name: "go", Args: []string{"mod", "download", "-json", mod + "@" + version}})
	var d struct{ Dir, Error string }
	if jerr := json.Unmarshal(res.Stdout, &d); jerr != nil {
		if err != nil {
			return "", fmt.Errorf("download module %s@%s: %w", mod, version, err)
		}
		return "", fmt.Errorf("go mod download %s@%s: unreadable output %q: %w", mod, version, res.Stdout, jerr)
	}
	switch {
	case d.Error != "":
		return "", fmt.Errorf("download module %s@%s: %s", mod, version, d.Error)
	case err != nil:
		return "", fmt.Errorf("download module %s@%s: %w", mod, version, err)
	case d.Dir == "":
		return "", fmt.Errorf("go mod download %s@%s named no directory", mod, version)
	}
	return d.Dir, nil
}
