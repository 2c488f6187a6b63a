// Package kernelcap finds out what the running kernel can do, by trying it
// in a throwaway namespace rather than trusting a config file: a device kind
// is available if a device of that kind can be created; a BPF program type if
// the verifier loads a trivial one.
package kernelcap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/results"
)

// Config names the kernel option behind each capability, for the "not
// reproducible here: CONFIG_X missing" message.
var Config = map[string]string{
	"veth":         "CONFIG_VETH",
	"bridge":       "CONFIG_BRIDGE",
	"vxlan":        "CONFIG_VXLAN",
	"ipip":         "CONFIG_NET_IPIP",
	"ipvs":         "CONFIG_IP_VS",
	"wireguard":    "CONFIG_WIREGUARD",
	"geneve":       "CONFIG_GENEVE",
	"openvswitch":  "CONFIG_OPENVSWITCH",
	"dummy":        "CONFIG_DUMMY",
	"nftables":     "CONFIG_NF_TABLES",
	"iptables":     "CONFIG_IP_NF_IPTABLES",
	"bpf-cgroup":   "CONFIG_CGROUP_BPF",
	"bpf-tc":       "CONFIG_NET_CLS_BPF",
	"br-netfilter": "CONFIG_BRIDGE_NETFILTER",
}

// Set is the detected capabilities.
type Set map[string]results.Capability

// Has reports whether a capability is available.
func (s Set) Has(name string) bool { return s[name].Available }

// Missing returns the unavailable ones among names, as a "not reproducible
// here" reason, or "" when all are there.
func (s Set) Missing(names []string) string {
	var miss []string
	for _, n := range names {
		if !s.Has(n) {
			miss = append(miss, Config[n])
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return "not reproducible here: " + strings.Join(miss, ", ") + " missing"
}

// List returns the capabilities sorted by name.
func (s Set) List() []results.Capability {
	out := make([]results.Capability, 0, len(s))
	for _, c := range s {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Detect probes the kernel. It needs root; it creates one namespace named
// cnl-cap-<random> and removes it.
func Detect(ctx context.Context) (Set, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("capability detection needs root (it creates a network namespace)")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return detect("cnl-cap-" + hex.EncodeToString(b[:]))
}

func detect(ns string) (Set, error) {
	if err := netplan.CreateNamespace(ns); err != nil {
		return nil, err
	}
	defer netplan.DeleteNamespace(ns)
	set := Set{}
	put := func(name string, err error) {
		c := results.Capability{Name: name, Config: Config[name], Available: err == nil}
		if err != nil {
			c.Detail = err.Error()
		}
		set[name] = c
	}
	err := netplan.InNamespace(ns, func() error {
		try := func(l netlink.Link) error {
			if err := netlink.LinkAdd(l); err != nil {
				return err
			}
			return netlink.LinkDel(l)
		}
		put("veth", try(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "capv0"}, PeerName: "capv1"}))
		put("bridge", try(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "capbr"}}))
		put("vxlan", try(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "capvx"}, VxlanId: 42, Port: 4789}))
		put("dummy", try(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "capdm"}}))
		put("ipip", try(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "capip"}, Remote: []byte{192, 0, 2, 1}}))
		put("geneve", try(&netlink.Geneve{LinkAttrs: netlink.LinkAttrs{Name: "capgn"}, ID: 7, Remote: []byte{192, 0, 2, 1}}))
		put("wireguard", try(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "capwg"}}))
		put("ipvs", genlFamily("IPVS"))
		put("openvswitch", genlFamily("ovs_datapath"))
		put("iptables", runIn("iptables-restore", "iptables-restore", "--test"))
		// Bridged pod traffic passes iptables only with br_netfilter; flannel
		// refuses to start without it, and same-node Services on a bridge
		// CNI need it. cnilab does not load modules: that would change the
		// host.
		_, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
		if err != nil {
			err = fmt.Errorf("br_netfilter not loaded (modprobe br_netfilter): %w", err)
		}
		put("br-netfilter", err)
		put("nftables", runIn("nft", "nft", "list", "ruleset"))
		return nil
	})
	if err != nil {
		return nil, err
	}
	put("bpf-cgroup", loadProg(ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect, 1))
	put("bpf-tc", loadProg(ebpf.SchedCLS, ebpf.AttachNone, 0))
	return set, nil
}

func genlFamily(name string) error {
	_, err := netlink.GenlFamilyGet(name)
	if err != nil {
		return fmt.Errorf("generic netlink family %s: %w", name, err)
	}
	return nil
}

// runIn runs a tool in the current (throwaway) namespace: the tool must
// exist and the kernel must accept what it does.
func runIn(tool string, args ...string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%s not installed", tool)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader("*filter\nCOMMIT\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func loadProg(t ebpf.ProgramType, at ebpf.AttachType, ret int32) error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: t, AttachType: at, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()}})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("load %s program: %w (need CAP_BPF)", t, err)
		}
		return fmt.Errorf("load %s program: %w", t, err)
	}
	return p.Close()
}
