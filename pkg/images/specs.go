package images

import (
	"embed"
	"fmt"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

//go:embed files
var files embed.FS

func file(name string) []byte {
	b, err := files.ReadFile(path.Join("files", name))
	if err != nil {
		panic(fmt.Sprintf("embedded file %s: %v", name, err)) // a build defect, caught by the tests
	}
	return b
}

// Binary names (package gobuild's names) each image needs.
var (
	nodeBinaries       = []string{"kubeadm", "kubelet", "kubectl", "bridge", "host-local", "loopback", "portmap"}
	componentBinaries  = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd", "coredns", "pause"}
	flannelBinaries    = []string{"flanneld", "install-conf", "flannel-cni", "bridge", "host-local", "loopback", "portmap"}
	benchBinaries      = []string{"cnilab"}
	kubeRouterBinaries = []string{"kube-router", "gobgp", "bridge", "host-local", "loopback", "portmap"}
)

// AllBinaries is every binary the offline set is made from.
func AllBinaries() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range [][]string{nodeBinaries, componentBinaries, flannelBinaries, kubeRouterBinaries, benchBinaries, ciliumAgentBinaries, ciliumOperatorBinaries} {
		for _, n := range l {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// Binaries maps a binary name to its path on the host.
type Binaries map[string]string

func (b Binaries) add(t *Tree, name, dst string) error {
	src, ok := b[name]
	if !ok {
		return fmt.Errorf("binary %s was not built", name)
	}
	return t.HostFile(dst, 0o755, src)
}

// minimalAccounts are /etc/passwd and /etc/group for single-binary images:
// enough for a process to resolve root and nobody.
const (
	minimalPasswd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	minimalGroup  = "root:x:0:\nnobody:x:65534:\n"
)

func accounts(t *Tree) {
	t.File("etc/passwd", 0o644, []byte(minimalPasswd))
	t.File("etc/group", 0o644, []byte(minimalGroup))
	t.Dir("tmp", 0o1777)
}

// componentSpecs are the seven images kubeadm runs, named as kubeadm
// expects. Control-plane binaries sit on PATH (static pods run bare names);
// kube-proxy gets the iptables/nft userland it shells out to.
func componentSpecs(bin Binaries, tools LayerSource) ([]Spec, error) {
	var specs []Spec
	for _, c := range []struct{ ref, bin string }{
		{APIServerImage, "kube-apiserver"}, {ControllerManagerImage, "kube-controller-manager"},
		{SchedulerImage, "kube-scheduler"}, {EtcdImage, "etcd"},
	} {
		t := NewTree()
		accounts(t)
		if err := bin.add(t, c.bin, "usr/local/bin/"+c.bin); err != nil {
			return nil, err
		}
		specs = append(specs, Spec{Ref: c.ref, Layers: []LayerSource{{Name: c.bin, Tree: t}},
			Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/usr/local/bin/" + c.bin}}})
	}
	t := NewTree()
	accounts(t)
	if err := bin.add(t, "coredns", "coredns"); err != nil {
		return nil, err
	}
	// kubeadm's CoreDNS Deployment passes only args (-conf ...).
	specs = append(specs, Spec{Ref: CoreDNSImage, Layers: []LayerSource{{Name: "coredns", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/coredns"}}})
	t = NewTree()
	if err := bin.add(t, "pause", "pause"); err != nil {
		return nil, err
	}
	specs = append(specs, Spec{Ref: PauseImage, Layers: []LayerSource{{Name: "pause", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/pause"}, User: "65535:65535"}})
	t = NewTree()
	if err := bin.add(t, "kube-proxy", "usr/local/bin/kube-proxy"); err != nil {
		return nil, err
	}
	specs = append(specs, Spec{Ref: ProxyImage, Layers: []LayerSource{tools, {Name: "kube-proxy", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/usr/local/bin/kube-proxy"}}})
	return specs, nil
}

// flannelSpec is one image for both the chart's install-cni-plugin init
// container (`cp -f /flannel /opt/cni/bin/flannel`, coreutils cp), its
// install-cni init container (/opt/bin/install-conf) and flanneld
// (/opt/bin/flanneld), plus the plugins flannel delegates to.
func flannelSpec(bin Binaries, tools LayerSource) (Spec, error) {
	t := NewTree()
	for _, b := range []struct{ name, dst string }{
		{"flanneld", "opt/bin/flanneld"}, {"install-conf", "opt/bin/install-conf"}, {"flannel-cni", "flannel"},
		{"bridge", "opt/cni-plugins/bridge"}, {"host-local", "opt/cni-plugins/host-local"},
		{"loopback", "opt/cni-plugins/loopback"}, {"portmap", "opt/cni-plugins/portmap"},
	} {
		if err := bin.add(t, b.name, b.dst); err != nil {
			return Spec{}, err
		}
	}
	return Spec{Ref: FlannelImage, Layers: []LayerSource{tools, {Name: "flannel", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/opt/bin/flanneld"}}}, nil
}

// kubeRouterSpec is one image for kube-router's DaemonSet (cnilab's
// charts/kube-router): the agent at /usr/local/bin/kube-router with the
// gobgp CLI beside it, and the CNI plugins its conflist names under
// /usr/libexec/cni, where the chart's install-cni init container copies
// them from (sh, cp, mv and install from the Debian base) — the same paths
// as upstream's image, so the chart works with either.
func kubeRouterSpec(bin Binaries, base LayerSource) (Spec, error) {
	t := NewTree()
	for _, b := range []struct{ name, dst string }{
		{"kube-router", "usr/local/bin/kube-router"}, {"gobgp", "usr/local/bin/gobgp"},
		{"bridge", "usr/libexec/cni/bridge"}, {"host-local", "usr/libexec/cni/host-local"},
		{"loopback", "usr/libexec/cni/loopback"}, {"portmap", "usr/libexec/cni/portmap"},
	} {
		if err := bin.add(t, b.name, b.dst); err != nil {
			return Spec{}, err
		}
	}
	// gobgp's default state directory in upstream's image.
	t.Dir("var/lib/gobgp", 0o755)
	return Spec{Ref: KubeRouterImage, Layers: []LayerSource{base, {Name: "kube-router", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/usr/local/bin/kube-router"}}}, nil
}

// benchSpec is the workload image: iperf3 and busybox from the tools base,
// and cnilab for `cnilab probe`.
func benchSpec(bin Binaries, tools LayerSource) (Spec, error) {
	t := NewTree()
	if err := bin.add(t, "cnilab", "usr/local/bin/cnilab"); err != nil {
		return Spec{}, err
	}
	return Spec{Ref: BenchImage, Layers: []LayerSource{tools, {Name: "bench", Tree: t}},
		Config: v1.Config{Env: []string{defaultPath}, Cmd: []string{"sleep", "infinity"}}}, nil
}

// nodeConfig is the node image's runtime config. systemd re-executes itself
// on SIGTERM; SIGRTMIN+3 is its halt signal.
func nodeConfig() v1.Config {
	return v1.Config{
		Env:        []string{"container=docker", defaultPath},
		Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
		StopSignal: "SIGRTMIN+3",
	}
}

// nodeTree is what cnilab adds on top of the node's Debian rootfs.
func nodeTree(bin Binaries) (*Tree, error) {
	t := NewTree()
	for _, b := range []string{"kubeadm", "kubelet", "kubectl"} {
		if err := bin.add(t, b, "usr/bin/"+b); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if err := bin.add(t, b, "opt/cni/bin/"+b); err != nil {
			return nil, err
		}
	}
	if err := bin.add(t, "crictl", "usr/local/bin/crictl"); err != nil {
		return nil, err
	}
	t.File("usr/local/bin/entrypoint", 0o755, file("node/entrypoint"))
	t.File("usr/local/bin/kubelet-cgroups", 0o755, file("node/kubelet-cgroups"))
	t.File("etc/containerd/config.toml", 0o644, file("node/config.toml"))
	t.File("etc/systemd/system/containerd.service", 0o644, file("node/containerd.service"))
	t.File("etc/systemd/system/kubelet.service", 0o644, file("node/kubelet.service"))
	t.File("etc/systemd/system/kubelet.slice", 0o644, file("node/kubelet.slice"))
	t.File("etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o644, file("node/10-kubeadm.conf"))
	t.Symlink("etc/systemd/system/multi-user.target.wants/containerd.service", "/etc/systemd/system/containerd.service")
	t.Symlink("etc/systemd/system/multi-user.target.wants/kubelet.service", "/etc/systemd/system/kubelet.service")
	t.File("etc/default/kubelet", 0o644, file("node/default-kubelet"))
	t.File("etc/sysctl.d/10-network.conf", 0o644, file("node/10-network.conf"))
	t.File("etc/crictl.yaml", 0o644, file("node/crictl.yaml"))
	t.Dir("etc/kubernetes/manifests", 0o755)
	t.Dir("etc/cni/net.d", 0o755)
	t.Dir("kind", 0o755)
	// kind reads the Kubernetes version from here with cat; one line, as
	// kind's own build writes it (no newline).
	t.File("kind/version", 0o644, []byte(KubernetesVersion))
	return t, nil
}
