package iptables

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
)

// Backends of the iptables binaries: the same rules, two kernel
// interfaces. Debian and most current distros point "iptables" at
// iptables-nft; the difference matters at scale (restoring 10k services
// took ~46 s with iptables-nft 1.8.9 here, ~0.5 s with legacy), so a
// figure names the backend that produced it.
const (
	Legacy = "iptables-legacy"
	NFT    = "iptables-nft"
)

// Backends lists both, the usual distro default first.
var Backends = []string{NFT, Legacy}

// Other returns the backend that is not b.
func Other(b string) string {
	if b == Legacy {
		return NFT
	}
	return Legacy
}

// ParseBackend reads `iptables -V`: iptables 1.8 prints
// "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)". Anything
// else (1.6 printed no mode and is legacy-only, but cnilab does not guess)
// is an error.
func ParseBackend(out string) (string, error) {
	line := strings.TrimSpace(out)
	switch {
	case strings.HasSuffix(line, "(nf_tables)"):
		return NFT, nil
	case strings.HasSuffix(line, "(legacy)"):
		return Legacy, nil
	}
	return "", fmt.Errorf("iptables -V printed %q: no (nf_tables) or (legacy) mode in it", line)
}

// DetectBackend runs `<binary> -V` (binary: iptables, iptables-nft or
// iptables-legacy) in netns and returns the backend it drives. -V only
// prints the version; it reads and changes no table.
func DetectBackend(ctx context.Context, r command.Runner, binary, netns string) (string, error) {
	if binary == "" {
		binary = "iptables"
	}
	res, err := r.Run(ctx, command.Cmd{Name: binary, Args: []string{"-V"}, Netns: netns})
	if err != nil {
		return "", fmt.Errorf("%s -V: %w", binary, err)
	}
	b, err := ParseBackend(string(res.Stdout))
	if err != nil {
		return "", fmt.Errorf("%s: %w", binary, err)
	}
	if binary != "iptables" && b != binary {
		return "", fmt.Errorf("%s -V says it drives %s", binary, b)
	}
	return b, nil
}
