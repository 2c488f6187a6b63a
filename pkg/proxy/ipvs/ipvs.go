// Package ipvs detects whether the kernel has IP Virtual Server, which
// kube-proxy's ipvs mode and kube-router's service proxy need. cnilab never
// stands something else in for IPVS: without it the caller gets an error
// wrapping proxy.ErrNotReproducible and falls back, recording why.
package ipvs

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/proxy"
)

// genlFamily is the generic-netlink family the IPVS module registers.
const genlFamily = "IPVS"

// Detect reports nil when IPVS is usable. It asks generic netlink for the
// IPVS family (the kernel loads ip_vs on that lookup when it is built as
// a module) and also accepts /proc/net/ip_vs.
func Detect() error {
	return detect(func() error {
		_, err := netlink.GenlFamilyGet(genlFamily)
		return err
	}, "/proc/net/ip_vs")
}

func detect(lookup func() error, procFile string) error {
	err := lookup()
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(procFile); serr == nil {
		return nil
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: CONFIG_IP_VS missing (no %s generic-netlink family, no %s)", proxy.ErrNotReproducible, genlFamily, procFile)
	}
	return fmt.Errorf("ipvs detection: %w", err)
}

// New returns an error in every case today: wrapping ErrNotReproducible
// when the kernel lacks IPVS (this machine), and wrapping ErrNotBuilt when
// it has it, because cnilab's IPVS proxy is not written yet. Either way the
// caller falls back and records why; nothing pretends to be IPVS.
func New(t proxy.Target) (proxy.Proxy, error) { return newWith(Detect, t) }

func newWith(detect func() error, _ proxy.Target) (proxy.Proxy, error) {
	if err := detect(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: the kernel has IPVS, but cnilab's IPVS proxy is not written", proxy.ErrNotBuilt)
}
