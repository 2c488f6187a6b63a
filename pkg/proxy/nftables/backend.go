package nftables

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/proxy"
)

// ExecBackend feeds knftables transactions to "nft -f -" in one namespace.
//
// knftables.New runs nft itself with os/exec from whatever thread calls it,
// which can be neither pointed at a namespace nor routed through
// command.Runner; knftables only builds the transaction text here (the
// same text its own Run would pipe to nft), and the runner executes it.
type ExecBackend struct {
	runner command.Runner
	netns  string
	// txf only hands out transactions bound to family ip, table kube-proxy;
	// its own state is never used.
	txf *knftables.Fake
}

// NewExecBackend returns a backend for the namespace at netns.
func NewExecBackend(r command.Runner, netns string) *ExecBackend {
	return &ExecBackend{runner: r, netns: netns, txf: knftables.NewFake(knftables.IPv4Family, tableName)}
}

// NewTransaction implements Backend.
func (b *ExecBackend) NewTransaction() *knftables.Transaction { return b.txf.NewTransaction() }

// errMarker is how knftables reports a transaction that failed to build:
// a trailing comment in its text, which nft would silently skip.
const errMarker = "# ERROR: "

// Run implements Backend.
func (b *ExecBackend) Run(ctx context.Context, tx *knftables.Transaction) error {
	text := tx.String()
	if i := strings.LastIndex(text, errMarker); i >= 0 {
		return fmt.Errorf("invalid nftables transaction: %s", strings.TrimSpace(text[i+len(errMarker):]))
	}
	_, err := b.runner.Run(ctx, command.Cmd{Name: "nft", Args: []string{"-f", "-"}, Netns: b.netns, Stdin: strings.NewReader(text)})
	return err
}

// Count implements Backend from "nft -j list table ip kube-proxy".
func (b *ExecBackend) Count(ctx context.Context) (proxy.Counts, error) {
	res, err := b.runner.Run(ctx, command.Cmd{Name: "nft", Args: []string{"-j", "list", "table", "ip", tableName}, Netns: b.netns})
	if err != nil {
		return proxy.Counts{}, err
	}
	return CountJSON(res.Stdout)
}

// CountJSON counts chains, rules and set/map elements in nft -j output.
func CountJSON(data []byte) (proxy.Counts, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return proxy.Counts{}, fmt.Errorf("nft -j output: %w", err)
	}
	var c proxy.Counts
	sawTable := false
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			switch kind {
			case "table":
				sawTable = true
			case "chain":
				c.Chains++
			case "rule":
				c.Rules++
			case "set", "map":
				var s struct {
					Elem []json.RawMessage `json:"elem"`
				}
				if err := json.Unmarshal(raw, &s); err != nil {
					return proxy.Counts{}, fmt.Errorf("nft -j %s: %w", kind, err)
				}
				c.MapEntries += len(s.Elem)
			}
		}
	}
	if !sawTable {
		return proxy.Counts{}, fmt.Errorf("nft -j output has no table")
	}
	return c, nil
}

// FakeBackend is knftables.Fake with a Count, for tests without root.
type FakeBackend struct{ *knftables.Fake }

// NewFakeBackend returns an empty fake table ip kube-proxy.
func NewFakeBackend() FakeBackend {
	return FakeBackend{knftables.NewFake(knftables.IPv4Family, tableName)}
}

// Count implements Backend from the fake's state.
func (f FakeBackend) Count(context.Context) (proxy.Counts, error) {
	t := f.Table
	if t == nil {
		return proxy.Counts{}, fmt.Errorf("table ip %s does not exist", tableName)
	}
	var c proxy.Counts
	for _, ch := range t.Chains {
		c.Chains++
		c.Rules += len(ch.Rules)
	}
	for _, m := range t.Maps {
		c.MapEntries += len(m.Elements)
	}
	for _, s := range t.Sets {
		c.MapEntries += len(s.Elements)
	}
	return c, nil
}
