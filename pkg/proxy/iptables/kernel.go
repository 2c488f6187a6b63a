package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
)

// Kernel is where rules go: the iptables of one or more network namespaces.
// ExecKernel drives the real iptables binaries; Fake keeps tables in memory.
type Kernel interface {
	// Restore loads an iptables-restore payload with --noflush, all or
	// nothing.
	Restore(ctx context.Context, netns string, payload []byte) error
	// EnsureRule makes sure rule exists in table/chain, inserting it first
	// in the chain when missing (iptables -C, then -I).
	EnsureRule(ctx context.Context, netns, table, chain string, rule []string) error
	// DeleteRule removes rule if present.
	DeleteRule(ctx context.Context, netns, table, chain string, rule []string) error
	// Save returns iptables-save output for one table.
	Save(ctx context.Context, netns, table string) ([]byte, error)
}

// ExecKernel runs iptables-restore, iptables and iptables-save through a
// command.Runner inside the given namespace.
type ExecKernel struct {
	Runner command.Runner
	// Prefix selects the binaries: "iptables" (the system default; nf_tables
	// backend here) or "iptables-legacy".
	Prefix string
}

func (k ExecKernel) bin(suffix string) string {
	p := k.Prefix
	if p == "" {
		p = "iptables"
	}
	return p + suffix
}

// Restore implements Kernel. -w waits for the xtables lock like kube-proxy.
func (k ExecKernel) Restore(ctx context.Context, netns string, payload []byte) error {
	_, err := k.Runner.Run(ctx, command.Cmd{Name: k.bin("-restore"), Args: []string{"-w", "5", "--noflush"}, Netns: netns, Stdin: bytes.NewReader(payload)})
	return err
}

// EnsureRule implements Kernel.
func (k ExecKernel) EnsureRule(ctx context.Context, netns, table, chain string, rule []string) error {
	exists, err := k.check(ctx, netns, table, chain, rule)
	if err != nil || exists {
		return err
	}
	_, err = k.Runner.Run(ctx, command.Cmd{Name: k.bin(""), Args: append([]string{"-w", "5", "-t", table, "-I", chain}, rule...), Netns: netns})
	return err
}

// DeleteRule implements Kernel.
func (k ExecKernel) DeleteRule(ctx context.Context, netns, table, chain string, rule []string) error {
	exists, err := k.check(ctx, netns, table, chain, rule)
	if err != nil || !exists {
		return err
	}
	_, err = k.Runner.Run(ctx, command.Cmd{Name: k.bin(""), Args: append([]string{"-w", "5", "-t", table, "-D", chain}, rule...), Netns: netns})
	return err
}

// check runs iptables -C: exit 1 means "no such rule"; anything else that
// fails (missing chain, bad syntax) is an error, not an absence.
func (k ExecKernel) check(ctx context.Context, netns, table, chain string, rule []string) (bool, error) {
	_, err := k.Runner.Run(ctx, command.Cmd{Name: k.bin(""), Args: append([]string{"-w", "5", "-t", table, "-C", chain}, rule...), Netns: netns})
	if err == nil {
		return true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil
	}
	return false, err
}

// Save implements Kernel.
func (k ExecKernel) Save(ctx context.Context, netns, table string) ([]byte, error) {
	res, err := k.Runner.Run(ctx, command.Cmd{Name: k.bin("-save"), Args: []string{"-t", table}, Netns: netns})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// CountSaved counts what kube-proxy owns in iptables-save output: rules in
// KUBE-* chains, jumps from built-in chains into them, and KUBE-* chains.
func CountSaved(save []byte) (rules, chains int, err error) {
	sawTable := false
	for _, l := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			sawTable = true
		case strings.HasPrefix(l, ":KUBE-"):
			chains++
		case strings.HasPrefix(l, "-A KUBE-"):
			rules++
		case strings.HasPrefix(l, "-A ") && strings.Contains(l, " -j KUBE-"):
			rules++
		}
	}
	if !sawTable {
		return 0, 0, fmt.Errorf("iptables-save output has no table header")
	}
	return rules, chains, nil
}
