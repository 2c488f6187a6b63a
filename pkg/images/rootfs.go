package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
)

// Debian sources every rootfs is built from.
var debianSources = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

// pathExcludes keep documentation, man pages and translations out of every
// rootfs (dpkg path-exclude; copyright files stay for licence notices).
var pathExcludes = []string{
	"--dpkgopt=path-exclude=/usr/share/man/*",
	"--dpkgopt=path-exclude=/usr/share/doc/*",
	"--dpkgopt=path-include=/usr/share/doc/*/copyright",
	"--dpkgopt=path-exclude=/usr/share/locale/*",
	"--dpkgopt=path-exclude=/usr/share/info/*",
	"--dpkgopt=path-exclude=/usr/share/lintian/*",
}

// Rootfs is a Debian bookworm minbase tree with extra packages, made by
// mmdebstrap. Hooks are shell commands mmdebstrap runs on the host with the
// tree's path as $1 after installing (--customize-hook).
type Rootfs struct {
	Name     string
	Packages []string
	Hooks    []string
}

// Key is the sha256 of everything mmdebstrap is given; the cached tar is
// reused while it is unchanged.
func (r Rootfs) Key() string {
	pkgs := append([]string(nil), r.Packages...)
	sort.Strings(pkgs)
	h := sha256.New()
	fmt.Fprintf(h, "suite=bookworm\x00variant=minbase\x00")
	for _, s := range [][]string{debianSources, pathExcludes, pkgs, r.Hooks} {
		fmt.Fprintf(h, "%d\x00%s\x00", len(s), strings.Join(s, "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Args are mmdebstrap's arguments writing the tree to out.
func (r Rootfs) Args(out string) []string {
	args := []string{"--variant=minbase", "--mode=root", "--quiet", "--include=" + strings.Join(r.Packages, ",")}
	args = append(args, pathExcludes...)
	for _, h := range r.Hooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, "bookworm", out)
	return append(args, debianSources...)
}

// ErrNoMmdebstrap means mmdebstrap is not installed.
var ErrNoMmdebstrap = errors.New("mmdebstrap not found: install it (apt-get install -y mmdebstrap)")

// buildRootfs returns the path of r's tar under dir, running mmdebstrap
// only when no tar with r's key is cached.
func buildRootfs(ctx context.Context, run command.Runner, dir string, r Rootfs) (string, error) {
	p := filepath.Join(dir, fmt.Sprintf("rootfs-%s-%s.tar", r.Name, r.Key()[:16]))
	if _, err := os.Stat(p); err == nil {
		touch(p)
		return p, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", ErrNoMmdebstrap
	}
	tmp := p + ".tmp.tar"
	defer os.Remove(tmp)
	if _, err := run.Run(ctx, command.Cmd{Name: "mmdebstrap", Args: r.Args(tmp)}); err != nil {
		return "", fmt.Errorf("rootfs %s: %w", r.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	return p, nil
}

// nodeRootfs is the kind node's Debian tree. The hooks prune systemd the way
// container node images do: no getty, udev or tmpfiles setup, nothing
// enabled but what cnilab enables, journald not reading kmsg, binfmt
// masked, an empty machine-id (the entrypoint makes one per node). The
// runtime spec base comes from this containerd's own `ctr oci spec`, minus
// rlimits so pods inherit containerd's limits.
var nodeRootfs = Rootfs{
	Name: "node",
	Packages: []string{
		"systemd", "systemd-sysv", "containerd", "runc",
		"iptables", "nftables", "conntrack", "iproute2", "ethtool", "socat",
		"util-linux", "mount", "kmod", "libseccomp2", "ca-certificates", "procps",
		"bash", "jq", "iputils-ping", "hostname", "e2fsprogs", "pigz",
	},
	Hooks: []string{
		`rm -f "$1"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service`,
		`rm -f "$1"/lib/systemd/system/multi-user.target.wants/* "$1"/etc/systemd/system/*.wants/* "$1"/lib/systemd/system/local-fs.target.wants/* "$1"/lib/systemd/system/basic.target.wants/*`,
		`rm -f "$1"/lib/systemd/system/sockets.target.wants/*udev* "$1"/lib/systemd/system/sockets.target.wants/*initctl*`,
		`echo ReadKMsg=no >> "$1"/etc/systemd/journald.conf`,
		`ln -sf /dev/null "$1"/etc/systemd/system/systemd-binfmt.service`,
		`: > "$1"/etc/machine-id`,
		`mkdir -p "$1"/etc/containerd && chroot "$1" ctr oci spec | chroot "$1" jq 'del(.process.rlimits)' > "$1"/etc/containerd/cri-base.json`,
		`rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log`,
	},
}

// toolsRootfs is the Debian base of kube-proxy, flannel and bench: the
// iptables/nft userland (Debian's default alternative is nft), conntrack,
// iperf3, busybox for ping/nslookup/wget, and CA certificates.
var toolsRootfs = Rootfs{
	Name: "tools",
	Packages: []string{
		"iptables", "nftables", "conntrack", "ca-certificates", "busybox-static", "iperf3", "iproute2",
	},
	Hooks: []string{
		`rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log`,
	},
}

// kubeRouterRootfs is kube-router's Debian base: what it runs besides
// netlink — iptables, iptables-save/-restore (Debian's default alternative
// is nft, the kind nodes' backend here), ipset, ip (iproute2: routes, rules,
// tunnels), modprobe (kmod; a failure is only logged), conntrack (used by
// its service proxy), CA certificates, and the shell tools of the chart's
// init container (bash, coreutils are essential in minbase).
var kubeRouterRootfs = Rootfs{
	Name:     "kube-router",
	Packages: []string{"iptables", "ipset", "iproute2", "conntrack", "kmod", "ca-certificates"},
	Hooks: []string{
		`rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log`,
	},
}
