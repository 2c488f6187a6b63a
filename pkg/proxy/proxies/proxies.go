// Package proxies builds a service proxy by the name labs/*.yaml uses
// (iptables, nftables, ebpf, ipvs; iptables-nft and iptables-legacy pick
// the iptables backend explicitly), with the recorded fallback when the
// kernel cannot run the one asked for. A built proxy's Name is its
// backend: "iptables" comes back as iptables-nft or iptables-legacy.
package proxies

import (
	"errors"
	"fmt"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/ebpf"
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
	"github.com/cnilab/cnilab/pkg/proxy/ipvs"
	"github.com/cnilab/cnilab/pkg/proxy/nftables"
)

// Names lists the backends New knows.
var Names = []string{"iptables", iptables.NFT, iptables.Legacy, "nftables", "ebpf", "ipvs"}

// New returns the proxy called name on target t. When name cannot run on
// this kernel (proxy.ErrNotReproducible), or that cnilab has not built
// (proxy.ErrNotBuilt), and fallback is not empty, the
// fallback is built instead and note says what happened, for the lab's
// Notes; with no fallback the error is returned.
func New(name string, t proxy.Target, fallback string) (p proxy.Proxy, note string, err error) {
	p, err = build(name, t)
	if err == nil {
		return p, "", nil
	}
	if !CanFallBack(err) || fallback == "" || fallback == name {
		return nil, "", err
	}
	p, ferr := build(fallback, t)
	if ferr != nil {
		return nil, "", fmt.Errorf("%s: %v; fallback %s: %w", name, err, fallback, ferr)
	}
	return p, fmt.Sprintf("services: %s %v; fell back to %s", name, err, fallback), nil
}

// CanFallBack says whether err lets a lab use its fallback proxy: the
// backend cannot run on this kernel, or cnilab has no implementation of it.
// Any other error is a real failure.
func CanFallBack(err error) bool {
	return errors.Is(err, proxy.ErrNotReproducible) || errors.Is(err, proxy.ErrNotBuilt)
}

func build(name string, t proxy.Target) (proxy.Proxy, error) {
	switch name {
	case "iptables":
		return iptables.NewExec(t)
	case iptables.NFT, iptables.Legacy:
		t.IPTables = name
		return iptables.NewExec(t)
	case "nftables":
		return nftables.NewExec(t)
	case "ebpf":
		return ebpf.NewKernel(t)
	case "ipvs":
		return ipvs.New(t)
	}
	return nil, fmt.Errorf("unknown service proxy %q (known: %v)", name, Names)
}
