package kuberouter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cnilab/cnilab/pkg/command"
)

// fakeKernel is the filter table and ipsets of each node namespace, kept
// in memory and changed only by the payloads the controller sends: an
// iptables-restore --noflush is all or nothing, a rule may only name sets
// and chains that exist, a chain is deleted only empty and unreferenced, a
// set is destroyed only when no rule matches it (as the kernel refuses).
// It answers iptables-save and ipset list, and walks a packet through a
// node's FORWARD chain.
type fakeKernel struct {
	mu    sync.Mutex
	nodes map[string]*fakeNode
}

type fakeSet struct {
	typ     string
	entries map[string]bool // member -> nomatch
}

type fakeNode struct {
	order  []string
	chains map[string][][]string
	sets   map[string]*fakeSet
}

var builtinChains = []string{"INPUT", "FORWARD", "OUTPUT"}

func newFakeNode() *fakeNode {
	n := &fakeNode{chains: map[string][][]string{}, sets: map[string]*fakeSet{}}
	for _, c := range builtinChains {
		n.chains[c] = nil
		n.order = append(n.order, c)
	}
	return n
}

func (n *fakeNode) clone() *fakeNode {
	c := &fakeNode{order: slices.Clone(n.order), chains: map[string][][]string{}, sets: map[string]*fakeSet{}}
	for k, v := range n.chains {
		rs := make([][]string, len(v))
		for i, r := range v {
			rs[i] = slices.Clone(r)
		}
		c.chains[k] = rs
	}
	for k, v := range n.sets {
		e := map[string]bool{}
		for m, nm := range v.entries {
			e[m] = nm
		}
		c.sets[k] = &fakeSet{typ: v.typ, entries: e}
	}
	return c
}

func (k *fakeKernel) node(ns string) *fakeNode {
	if k.nodes == nil {
		k.nodes = map[string]*fakeNode{}
	}
	n, ok := k.nodes[ns]
	if !ok {
		n = newFakeNode()
		k.nodes[ns] = n
	}
	return n
}

// tokens splits a restore line into words, honouring double quotes.
func tokens(l string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range l {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func (n *fakeNode) referenced(kind, name string) bool {
	for _, rs := range n.chains {
		for _, r := range rs {
			for i, a := range r {
				if kind == "chain" && a == "-j" && i+1 < len(r) && r[i+1] == name {
					return true
				}
				if kind == "set" && a == "--match-set" && i+1 < len(r) && r[i+1] == name {
					return true
				}
			}
		}
	}
	return false
}

var targets = []string{"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "NFLOG"}

func (n *fakeNode) checkRule(r []string) error {
	for i, a := range r {
		if a == "--match-set" && i+1 < len(r) {
			if _, ok := n.sets[r[i+1]]; !ok {
				return fmt.Errorf("set %s does not exist", r[i+1])
			}
		}
		if a == "-j" && i+1 < len(r) && !slices.Contains(targets, r[i+1]) {
			if _, ok := n.chains[r[i+1]]; !ok {
				return fmt.Errorf("chain %s does not exist", r[i+1])
			}
		}
	}
	return nil
}

func (n *fakeNode) iptablesRestore(payload []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(payload))
	sc.Buffer(nil, 1<<20)
	committed := false
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "*filter", l == "":
		case l == "COMMIT":
			committed = true
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			if _, ok := n.chains[name]; !ok {
				n.order = append(n.order, name)
			}
			n.chains[name] = nil
		default:
			t := tokens(l)
			if len(t) < 2 {
				return fmt.Errorf("bad line %q", l)
			}
			op, chain, rule := t[0], t[1], t[2:]
			if _, ok := n.chains[chain]; !ok {
				return fmt.Errorf("%q: no chain %s", l, chain)
			}
			switch op {
			case "-A":
				if err := n.checkRule(rule); err != nil {
					return fmt.Errorf("%q: %w", l, err)
				}
				n.chains[chain] = append(n.chains[chain], rule)
			case "-I":
				pos := 1
				if len(rule) > 0 {
					if p, err := strconv.Atoi(rule[0]); err == nil {
						pos, rule = p, rule[1:]
					}
				}
				if err := n.checkRule(rule); err != nil {
					return fmt.Errorf("%q: %w", l, err)
				}
				rs := n.chains[chain]
				n.chains[chain] = slices.Insert(rs, min(pos-1, len(rs)), rule)
			case "-D":
				rs := n.chains[chain]
				i := slices.IndexFunc(rs, func(r []string) bool { return slices.Equal(r, rule) })
				if i < 0 {
					return fmt.Errorf("%q: no such rule", l)
				}
				n.chains[chain] = slices.Delete(rs, i, i+1)
			case "-X":
				if slices.Contains(builtinChains, chain) {
					return fmt.Errorf("%q: built-in chain", l)
				}
				if len(n.chains[chain]) > 0 || n.referenced("chain", chain) {
					return fmt.Errorf("%q: chain not empty or still referenced", l)
				}
				delete(n.chains, chain)
				n.order = slices.DeleteFunc(n.order, func(c string) bool { return c == chain })
			default:
				return fmt.Errorf("unknown line %q", l)
			}
		}
	}
	if !committed {
		return fmt.Errorf("no COMMIT")
	}
	return nil
}

func (n *fakeNode) ipsetRestore(payload []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(payload))
	for sc.Scan() {
		t := strings.Fields(sc.Text())
		if len(t) == 0 {
			continue
		}
		need := func(name string) (*fakeSet, error) {
			s, ok := n.sets[name]
			if !ok {
				return nil, fmt.Errorf("%q: set %s does not exist", sc.Text(), name)
			}
			return s, nil
		}
		switch t[0] {
		case "create":
			if _, ok := n.sets[t[1]]; !ok {
				n.sets[t[1]] = &fakeSet{typ: t[2], entries: map[string]bool{}}
			} else if n.sets[t[1]].typ != t[2] {
				return fmt.Errorf("%q: exists with type %s", sc.Text(), n.sets[t[1]].typ)
			}
		case "flush":
			s, err := need(t[1])
			if err != nil {
				return err
			}
			s.entries = map[string]bool{}
		case "add":
			s, err := need(t[1])
			if err != nil {
				return err
			}
			member := t[2]
			if s.typ == "hash:ip" && strings.Contains(member, "/") || slices.Contains(t, "nomatch") && s.typ != "hash:net" {
				return fmt.Errorf("%q: bad member for %s", sc.Text(), s.typ)
			}
			s.entries[member] = slices.Contains(t, "nomatch")
		case "swap":
			a, err := need(t[1])
			if err != nil {
				return err
			}
			b, err := need(t[2])
			if err != nil {
				return err
			}
			if a.typ != b.typ {
				return fmt.Errorf("%q: types differ", sc.Text())
			}
			n.sets[t[1]], n.sets[t[2]] = b, a
		case "destroy":
			if _, err := need(t[1]); err != nil {
				return err
			}
			if n.referenced("set", t[1]) {
				return fmt.Errorf("%q: set in use by a rule", sc.Text())
			}
			delete(n.sets, t[1])
		default:
			return fmt.Errorf("unknown ipset line %q", sc.Text())
		}
	}
	return nil
}

func (n *fakeNode) save() string {
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, c := range n.order {
		if slices.Contains(builtinChains, c) {
			fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
		} else {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
	}
	for _, c := range n.order {
		for _, r := range n.chains[c] {
			b.WriteString(line(append([]string{"-A", c}, r...)...) + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func (n *fakeNode) list(terse bool) string {
	names := make([]string, 0, len(n.sets))
	for k := range n.sets {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		if !terse {
			b.WriteString(k + "\n")
			continue
		}
		fmt.Fprintf(&b, "Name: %s\nType: %s\nHeader: family inet hashsize 1024 maxelem 65536 timeout 0\nNumber of entries: %d\n\n", k, n.sets[k].typ, len(n.sets[k].entries))
	}
	return b.String()
}

// Runner answers the controller's commands from the fake kernel.
func (k *fakeKernel) Runner() *command.Fake {
	run := func(c command.Cmd) (command.Result, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		n := k.node(c.Netns)
		var in []byte
		if c.Stdin != nil {
			in, _ = io.ReadAll(c.Stdin)
		}
		fail := func(err error) (command.Result, error) {
			return command.Result{}, &command.Error{Cmd: c.String(), Stderr: err.Error(), Err: err}
		}
		switch {
		case c.Name == "iptables-restore":
			tx := n.clone()
			if err := tx.iptablesRestore(in); err != nil {
				return fail(err)
			}
			k.nodes[c.Netns] = tx
		case c.Name == "iptables-save":
			return command.Result{Stdout: []byte(n.save())}, nil
		case c.Name == "ipset" && c.Args[0] == "restore":
			tx := n.clone()
			if err := tx.ipsetRestore(in); err != nil {
				return fail(err)
			}
			k.nodes[c.Netns] = tx
		case c.Name == "ipset" && c.Args[0] == "list":
			return command.Result{Stdout: []byte(n.list(c.Args[1] == "-t"))}, nil
		default:
			return fail(fmt.Errorf("unexpected command"))
		}
		return command.Result{}, nil
	}
	f := &command.Fake{Responses: map[string]command.FakeResponse{}}
	for _, name := range []string{"iptables-restore", "iptables-save", "ipset"} {
		f.Responses[name] = command.FakeResponse{Func: run}
	}
	return f
}

// packet is what the walk needs of one packet.
type packet struct {
	src, dst    netip.Addr
	proto       string
	dport       int
	established bool
	mark        uint32
}

func parseMark(s string) (v, m uint32) {
	a, b, _ := strings.Cut(s, "/")
	x, _ := strconv.ParseUint(a, 0, 32)
	y, err := strconv.ParseUint(b, 0, 32)
	if err != nil {
		y = 0xffffffff
	}
	return uint32(x), uint32(y)
}

func (s *fakeSet) has(a netip.Addr) bool {
	if s.typ == "hash:ip" {
		_, ok := s.entries[a.String()]
		return ok
	}
	// hash:net: the most specific entry holding the address decides; a
	// nomatch one excludes it.
	best, nomatch := -1, false
	for m, nm := range s.entries {
		p, err := netip.ParsePrefix(m)
		if err != nil {
			p = netip.PrefixFrom(netip.MustParseAddr(m), 32)
		}
		if p.Contains(a) && p.Bits() > best {
			best, nomatch = p.Bits(), nm
		}
	}
	return best >= 0 && !nomatch
}

// matches evaluates a rule's matches; it returns the target words.
func (n *fakeNode) matches(r []string, p *packet) (bool, []string) {
	neg := false
	for i := 0; i < len(r); i++ {
		a := r[i]
		ok := true
		switch a {
		case "!":
			neg = true
			continue
		case "-m":
			i++
			continue
		case "--comment", "--nflog-group", "--limit", "--limit-burst":
			i++
			continue
		case "-s", "-d":
			i++
			pf, err := netip.ParsePrefix(r[i])
			if err != nil {
				pf = netip.PrefixFrom(netip.MustParseAddr(r[i]), 32)
			}
			addr := p.src
			if a == "-d" {
				addr = p.dst
			}
			ok = pf.Contains(addr)
		case "-p":
			i++
			ok = strings.EqualFold(r[i], p.proto)
		case "--dport", "--dports":
			i++
			lo, hi, rng := strings.Cut(r[i], ":")
			l, _ := strconv.Atoi(lo)
			h := l
			if rng {
				h, _ = strconv.Atoi(hi)
			}
			ok = p.dport >= l && p.dport <= h
		case "--match-set":
			set, dir := n.sets[r[i+1]], r[i+2]
			i += 2
			addr := p.src
			if dir == "dst" {
				addr = p.dst
			}
			ok = set != nil && set.has(addr)
		case "--mark":
			i++
			v, m := parseMark(r[i])
			ok = p.mark&m == v
		case "--ctstate":
			i++
			ok = p.established && strings.Contains(r[i], "ESTABLISHED")
		case "--src-type", "--dst-type":
			i++
			ok = false // pod traffic: neither end is the node's own address
		case "--physdev-is-bridged":
			ok = false // routed between nodes
		case "-j":
			return true, r[i+1:]
		}
		if ok == neg {
			return false, nil
		}
		neg = false
	}
	return true, nil
}

// walk runs a chain; "" means the packet fell off its end.
func (n *fakeNode) walk(chain string, p *packet, depth int) string {
	if depth > 20 {
		return "LOOP"
	}
	for _, r := range n.chains[chain] {
		ok, tgt := n.matches(r, p)
		if !ok || len(tgt) == 0 {
			continue
		}
		switch tgt[0] {
		case "ACCEPT", "DROP", "REJECT":
			return tgt[0]
		case "RETURN":
			return ""
		case "NFLOG":
		case "MARK":
			for i := 1; i+1 < len(tgt); i++ {
				v, m := parseMark(tgt[i+1])
				switch tgt[i] {
				case "--set-xmark":
					p.mark = (p.mark &^ m) ^ v
				case "--set-mark":
					p.mark = (p.mark &^ m) | v
				}
			}
		default:
			if v := n.walk(tgt[0], p, depth+1); v != "" {
				return v
			}
		}
	}
	return ""
}

// forward is a node's verdict on a routed packet (FORWARD's policy is
// ACCEPT).
func (k *fakeKernel) forward(netns string, p packet) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v := k.node(netns).walk("FORWARD", &p, 0); v != "" {
		return v
	}
	return "ACCEPT"
}
