package kuberouter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cnilab/cnilab/pkg/command"
)

// Node is a node namespace the controller programs.
type Node struct {
	Name string
	// Netns is the path of its network namespace.
	Netns string
}

// Config is what a controller needs.
type Config struct {
	Runner  command.Runner
	Nodes   []Node
	Cluster Cluster
	// IPTables is the binary prefix ("iptables", the system default, or
	// "iptables-legacy"); it must be the one the lab's service proxy uses.
	IPTables string
	// Version names a sync (kube-router: its start in Unix nanoseconds);
	// tests fix it.
	Version func() string
}

type nodeState struct {
	installed bool
	chains    []string
	sets      []string
}

// Controller is one kube-router agent per node, as one loop: every change
// to the policies requests a full sync of every node; requests coalesce
// (a queue of one, as kube-router's), so a burst of K policies costs a few
// syncs, not K.
type Controller struct {
	cfg Config

	mu       sync.Mutex
	policies map[string]*networkingv1.NetworkPolicy
	lastErr  error
	// requested counts policy changes; synced the changes a finished
	// sync covered (Wait).
	requested, synced uint64

	syncMu sync.Mutex // one sync at a time
	state  map[string]*nodeState

	requests chan struct{}
	stop     chan struct{}
	done     chan struct{}
	changed  *sync.Cond
}

// New returns a controller; Start programs the nodes and starts its loop.
func New(cfg Config) *Controller {
	if cfg.IPTables == "" {
		cfg.IPTables = "iptables"
	}
	if cfg.Version == nil {
		cfg.Version = func() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }
	}
	c := &Controller{cfg: cfg, policies: map[string]*networkingv1.NetworkPolicy{}, state: map[string]*nodeState{},
		requests: make(chan struct{}, 1)}
	c.changed = sync.NewCond(&c.mu)
	for _, n := range cfg.Nodes {
		c.state[n.Name] = &nodeState{}
	}
	return c
}

// Start removes whatever a previous controller left in the nodes, runs
// the first sync (every pod gets its chain; with no policy all traffic
// passes through KUBE-NWPLCY-DEFAULT) and starts the sync loop.
func (c *Controller) Start(ctx context.Context) error {
	for _, n := range c.cfg.Nodes {
		if err := c.remove(ctx, n); err != nil {
			return err
		}
	}
	if err := c.Sync(ctx); err != nil {
		return err
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop()
	return nil
}

func (c *Controller) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.requests:
			c.mu.Lock()
			upTo := c.requested
			c.mu.Unlock()
			err := c.Sync(context.Background())
			c.mu.Lock()
			c.lastErr = err
			c.synced = max(c.synced, upTo)
			c.changed.Broadcast()
			c.mu.Unlock()
		}
	}
}

func (c *Controller) request() error {
	c.mu.Lock()
	c.requested++
	err := c.lastErr
	c.mu.Unlock()
	select {
	case c.requests <- struct{}{}:
	default:
	}
	if err != nil {
		return fmt.Errorf("the model's last sync failed: %w", err)
	}
	return nil
}

// Wait blocks until every change made so far is programmed (or ctx ends)
// and returns the last sync's error.
func (c *Controller) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	want := c.requested
	for c.synced < want && ctx.Err() == nil {
		c.changed.Wait()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return c.lastErr
}

// Apply creates or replaces a policy and requests a sync; it returns
// without waiting for it, as the API server does. A failed earlier sync is
// returned.
func (c *Controller) Apply(np *networkingv1.NetworkPolicy) error {
	c.mu.Lock()
	c.policies[np.Namespace+"/"+np.Name] = np.DeepCopy()
	c.mu.Unlock()
	return c.request()
}

// Delete removes a policy (a missing one is not an error).
func (c *Controller) Delete(namespace, name string) error {
	c.mu.Lock()
	delete(c.policies, namespace+"/"+name)
	c.mu.Unlock()
	return c.request()
}

// DeleteMatching removes the policies of namespaces whose labels the
// selector matches.
func (c *Controller) DeleteMatching(namespaces []string, selector string) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("label selector %q: %w", selector, err)
	}
	c.mu.Lock()
	for k, np := range c.policies {
		for _, ns := range namespaces {
			if np.Namespace == ns && sel.Matches(labels.Set(np.Labels)) {
				delete(c.policies, k)
			}
		}
	}
	c.mu.Unlock()
	return c.request()
}

// Policies are the stored policies (copies), for tests and reports.
func (c *Controller) Policies() []*networkingv1.NetworkPolicy {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*networkingv1.NetworkPolicy, 0, len(c.policies))
	for _, np := range c.policies {
		out = append(out, np.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// Sync programs every node from the current policies now: per node, the
// ipsets (restore), the filter chains (one iptables-restore), then the
// sets no rule uses any more (destroyed).
func (c *Controller) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	policies := c.Policies()
	version := c.cfg.Version()
	var errs []error
	for _, n := range c.cfg.Nodes {
		if err := c.syncNode(ctx, n, policies, version); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) syncNode(ctx context.Context, n Node, policies []*networkingv1.NetworkPolicy, version string) error {
	st := c.state[n.Name]
	prog, err := Compile(c.cfg.Cluster, policies, n.Name, version)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: "ipset", Args: []string{"restore", "-exist"}, Netns: n.Netns,
		Stdin: bytes.NewReader(SetRestore(prog))}); err != nil {
		return err
	}
	if _, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: c.cfg.IPTables + "-restore", Args: []string{"-w", "5", "--noflush"}, Netns: n.Netns,
		Stdin: bytes.NewReader(FilterRestore(prog, st.chains, st.installed))}); err != nil {
		return err
	}
	st.installed, st.chains = true, prog.Chains
	current := map[string]bool{}
	for _, s := range prog.SetNames() {
		current[s] = true
	}
	var stale []string
	for _, s := range st.sets {
		if !current[s] {
			stale = append(stale, s)
		}
	}
	st.sets = prog.SetNames()
	if len(stale) > 0 {
		var b strings.Builder
		for _, s := range stale {
			fmt.Fprintf(&b, "destroy %s\n", s)
		}
		if _, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: "ipset", Args: []string{"restore", "-exist"}, Netns: n.Netns,
			Stdin: strings.NewReader(b.String())}); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the loop and removes every chain, jump and set of the
// controller from every node.
func (c *Controller) Close(ctx context.Context) error {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop = nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var errs []error
	for _, n := range c.cfg.Nodes {
		if err := c.remove(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
		}
		c.state[n.Name] = &nodeState{}
	}
	return errors.Join(errs...)
}

// owned reports whether a chain or set name is the controller's.
func ownedChain(name string) bool {
	return strings.HasPrefix(name, PodChainPrefix) || strings.HasPrefix(name, PolicyChainPrefix) ||
		name == InputChain || name == ForwardChain || name == OutputChain
}

func ownedSet(name string) bool {
	return strings.HasPrefix(name, SrcSetPrefix) || strings.HasPrefix(name, DstSetPrefix) || strings.HasPrefix(name, TmpSetPrefix)
}

// RemovalRestore is the iptables-restore --noflush payload that removes
// what iptables-save shows of the controller: the built-in chains' jumps,
// then its chains, flushed and deleted. nil when nothing is there.
func RemovalRestore(save []byte) []byte {
	var chains, jumps []string
	for _, l := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			if ownedChain(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(l, "-A INPUT "), strings.HasPrefix(l, "-A FORWARD "), strings.HasPrefix(l, "-A OUTPUT "):
			for _, t := range topLevel {
				if strings.HasSuffix(l, " -j "+t.Chain) {
					jumps = append(jumps, "-D"+l[2:])
				}
			}
		}
	}
	if len(chains) == 0 && len(jumps) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, c := range chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, j := range jumps {
		b.WriteString(j + "\n")
	}
	for _, c := range chains {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// remove takes the controller's jumps, chains and sets out of one node, as
// found in the kernel (so leftovers of an earlier process go too).
// KUBE-NWPLCY-DEFAULT is among the chains (prefix KUBE-NWPLCY-).
func (c *Controller) remove(ctx context.Context, n Node) error {
	res, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: c.cfg.IPTables + "-save", Args: []string{"-t", "filter"}, Netns: n.Netns})
	if err != nil {
		return err
	}
	if payload := RemovalRestore(res.Stdout); payload != nil {
		if _, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: c.cfg.IPTables + "-restore", Args: []string{"-w", "5", "--noflush"}, Netns: n.Netns,
			Stdin: bytes.NewReader(payload)}); err != nil {
			return err
		}
	}
	res, err = c.cfg.Runner.Run(ctx, command.Cmd{Name: "ipset", Args: []string{"list", "-n"}, Netns: n.Netns})
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, name := range strings.Fields(string(res.Stdout)) {
		if ownedSet(name) {
			fmt.Fprintf(&b, "destroy %s\n", name)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err = c.cfg.Runner.Run(ctx, command.Cmd{Name: "ipset", Args: []string{"restore", "-exist"}, Netns: n.Netns, Stdin: strings.NewReader(b.String())})
	return err
}

// Counts reads what the controller programmed on a node from the kernel,
// counted as cnilab counts the real agent on kind: filter rules and chains
// of KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*; KUBE-SRC-/KUBE-DST- sets
// and their members.
func (c *Controller) Counts(ctx context.Context, node string) (map[string]float64, string, error) {
	var n *Node
	for i := range c.cfg.Nodes {
		if c.cfg.Nodes[i].Name == node {
			n = &c.cfg.Nodes[i]
		}
	}
	if n == nil {
		return nil, "", fmt.Errorf("no node %s in the model", node)
	}
	save, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: c.cfg.IPTables + "-save", Args: []string{"-t", "filter"}, Netns: n.Netns})
	if err != nil {
		return nil, "", err
	}
	counts, err := CountRules(save.Stdout)
	if err != nil {
		return nil, "", err
	}
	list, err := c.cfg.Runner.Run(ctx, command.Cmd{Name: "ipset", Args: []string{"list", "-t"}, Netns: n.Netns})
	if err != nil {
		return nil, "", err
	}
	sets, members, err := CountSets(list.Stdout)
	if err != nil {
		return nil, "", err
	}
	counts["ipsets"], counts["ipset_members"] = sets, members
	return counts, fmt.Sprintf("%s-save -t filter and ipset list -t in node %s (the kube-router model's)", c.cfg.IPTables, node), nil
}

// CountRules counts kube-router's filter rules and chains in iptables-save
// output.
func CountRules(save []byte) (map[string]float64, error) {
	rules, chains, table := 0.0, 0.0, false
	for _, l := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(l, "*filter"):
			table = true
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			if ownedChain(name) {
				chains++
			}
		case strings.HasPrefix(l, "-A "):
			name, _, _ := strings.Cut(l[3:], " ")
			if ownedChain(name) {
				rules++
			}
		}
	}
	if !table {
		return nil, errors.New("iptables-save output has no filter table")
	}
	return map[string]float64{"iptables_rules": rules, "iptables_chains": chains}, nil
}

// CountSets counts KUBE-SRC-/KUBE-DST- sets and their members in `ipset
// list -t` (headers only).
func CountSets(out []byte) (sets, members float64, err error) {
	mine := false
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if name, ok := strings.CutPrefix(l, "Name: "); ok {
			mine = strings.HasPrefix(name, SrcSetPrefix) || strings.HasPrefix(name, DstSetPrefix)
			if mine {
				sets++
			}
			continue
		}
		if v, ok := strings.CutPrefix(l, "Number of entries: "); ok && mine {
			k, err := strconv.Atoi(v)
			if err != nil {
				return 0, 0, fmt.Errorf("ipset list: %q: %w", l, err)
			}
			members += float64(k)
		}
	}
	return sets, members, nil
}
