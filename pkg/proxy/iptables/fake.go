package iptables

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Fake is an in-memory Kernel in the spirit of knftables.Fake: it holds
// real tables of chains and rules per namespace, applies a restore payload
// with iptables-restore --noflush semantics all or nothing (any bad line,
// unknown chain or dangling jump rejects the whole payload), and prints
// itself as iptables-save-like text for golden files.
type Fake struct {
	mu sync.Mutex
	ns map[string]fakeTables
	// Restores counts successful Restore calls; Payloads keeps them, so
	// tests can check what a partial sync wrote.
	Restores int
	Payloads [][]byte
}

// fakeTables: table -> chain -> rules (rule text after "-A chain ").
type fakeTables map[string]map[string][]string

var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

// targets that are not chains.
var builtinTargets = map[string]bool{
	"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true, "SNAT": true,
	"MASQUERADE": true, "MARK": true, "LOG": true, "CONNMARK": true,
}

// NewFake returns an empty fake kernel.
func NewFake() *Fake { return &Fake{ns: map[string]fakeTables{}} }

func newTables() fakeTables {
	t := fakeTables{}
	for table, chains := range builtinChains {
		t[table] = map[string][]string{}
		for _, c := range chains {
			t[table][c] = nil
		}
	}
	return t
}

func (t fakeTables) clone() fakeTables {
	out := fakeTables{}
	for table, chains := range t {
		out[table] = make(map[string][]string, len(chains))
		for c, rules := range chains {
			out[table][c] = append([]string(nil), rules...)
		}
	}
	return out
}

func (f *Fake) tables(netns string) fakeTables {
	t, ok := f.ns[netns]
	if !ok {
		t = newTables()
		f.ns[netns] = t
	}
	return t
}

func isBuiltin(table, chain string) bool {
	for _, c := range builtinChains[table] {
		if c == chain {
			return true
		}
	}
	return false
}

// splitRule returns the chain and the rule text of "-A CHAIN rest".
func splitRule(s string) (string, string) {
	chain, rest, _ := strings.Cut(s, " ")
	return chain, strings.TrimSpace(rest)
}

// jumpTarget returns the -j/-g target of a rule text.
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// Restore implements Kernel.
func (f *Fake) Restore(_ context.Context, netns string, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	work := f.tables(netns).clone()
	var table string
	var pending map[string][]string // chains of the table being edited
	for n, line := range strings.Split(string(payload), "\n") {
		ln := n + 1
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if pending != nil {
				return fmt.Errorf("line %d: table %s started before COMMIT of %s", ln, line, table)
			}
			table = line[1:]
			if _, ok := work[table]; !ok {
				return fmt.Errorf("line %d: unknown table %q", ln, table)
			}
			pending = work[table]
		case pending == nil:
			return fmt.Errorf("line %d: %q outside a table", ln, line)
		case line == "COMMIT":
			for c, rules := range pending {
				for _, r := range rules {
					if t := jumpTarget(r); t != "" && !builtinTargets[t] {
						if _, ok := pending[t]; !ok {
							return fmt.Errorf("line %d: chain %s jumps to missing chain %s", ln, c, t)
						}
					}
				}
			}
			pending = nil
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) != 3 {
				return fmt.Errorf("line %d: bad chain line %q", ln, line)
			}
			// --noflush: a declared chain is created, or flushed if present.
			pending[f[0]] = nil
		case strings.HasPrefix(line, "-A "):
			c, r := splitRule(line[3:])
			if _, ok := pending[c]; !ok {
				return fmt.Errorf("line %d: append to missing chain %s", ln, c)
			}
			if r == "" || strings.Count(r, `"`)%2 != 0 {
				return fmt.Errorf("line %d: bad rule %q", ln, line)
			}
			pending[c] = append(pending[c], r)
		case strings.HasPrefix(line, "-X "):
			c := strings.TrimSpace(line[3:])
			rules, ok := pending[c]
			switch {
			case !ok:
				return fmt.Errorf("line %d: delete missing chain %s", ln, c)
			case isBuiltin(table, c):
				return fmt.Errorf("line %d: cannot delete built-in chain %s", ln, c)
			case len(rules) > 0:
				return fmt.Errorf("line %d: chain %s is not empty", ln, c)
			}
			for other, rs := range pending {
				for _, r := range rs {
					if jumpTarget(r) == c {
						return fmt.Errorf("line %d: chain %s still referenced from %s", ln, c, other)
					}
				}
			}
			delete(pending, c)
		default:
			return fmt.Errorf("line %d: unsupported line %q", ln, line)
		}
	}
	if pending != nil {
		return fmt.Errorf("missing COMMIT for table %s", table)
	}
	f.ns[netns] = work
	f.Restores++
	f.Payloads = append(f.Payloads, append([]byte(nil), payload...))
	return nil
}

func ruleText(rule []string) string {
	parts := make([]string, len(rule))
	for i, p := range rule {
		if strings.Contains(p, " ") {
			p = `"` + p + `"`
		}
		parts[i] = p
	}
	return strings.Join(parts, " ")
}

// EnsureRule implements Kernel.
func (f *Fake) EnsureRule(_ context.Context, netns, table, chain string, rule []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables(netns)
	rules, ok := t[table][chain]
	if !ok {
		return fmt.Errorf("no chain %s in table %s", chain, table)
	}
	r := ruleText(rule)
	if tgt := jumpTarget(r); tgt != "" && !builtinTargets[tgt] {
		if _, ok := t[table][tgt]; !ok {
			return fmt.Errorf("jump to missing chain %s", tgt)
		}
	}
	for _, x := range rules {
		if x == r {
			return nil
		}
	}
	t[table][chain] = append([]string{r}, rules...)
	return nil
}

// DeleteRule implements Kernel.
func (f *Fake) DeleteRule(_ context.Context, netns, table, chain string, rule []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables(netns)
	r := ruleText(rule)
	rules := t[table][chain]
	for i, x := range rules {
		if x == r {
			t[table][chain] = append(rules[:i:i], rules[i+1:]...)
			return nil
		}
	}
	return nil
}

// Save implements Kernel: iptables-save format, built-in chains first, then
// user chains sorted, then rules chain by chain.
func (f *Fake) Save(_ context.Context, netns, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	chains, ok := f.tables(netns)[table]
	if !ok {
		return nil, fmt.Errorf("unknown table %q", table)
	}
	var b strings.Builder
	b.WriteString("*" + table + "\n")
	order := append([]string(nil), builtinChains[table]...)
	var user []string
	for c := range chains {
		if !isBuiltin(table, c) {
			user = append(user, c)
		}
	}
	sort.Strings(user)
	for _, c := range order {
		b.WriteString(":" + c + " ACCEPT [0:0]\n")
	}
	for _, c := range user {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range append(order, user...) {
		for _, r := range chains[c] {
			b.WriteString("-A " + c + " " + r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String()), nil
}

// Dump prints the filter and nat tables of one namespace.
func (f *Fake) Dump(netns string) string {
	var b strings.Builder
	for _, t := range []string{"filter", "nat"} {
		s, _ := f.Save(context.Background(), netns, t)
		b.Write(s)
	}
	return b.String()
}

// Rules returns the rules of one chain, for tests.
func (f *Fake) Rules(netns, table, chain string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.tables(netns)[table][chain]
	return append([]string(nil), r...), ok
}
