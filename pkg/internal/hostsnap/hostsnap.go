// Package hostsnap prints the host network namespace's configuration the way
// the tools show it, so tests can prove cnilab never changed it.
package hostsnap

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var comment = regexp.MustCompile(`(?m)^#.*$`)

// Take returns `ip -d link`, addresses, every routing table, iptables-save
// and `nft list ruleset` of the caller's namespace (the host's, in tests).
// A tool that is missing is left out and logged.
func Take(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"ip", "-d", "link"}, {"ip", "addr"}, {"ip", "route", "show", "table", "all"}, {"iptables-save"}, {"nft", "list", "ruleset"}} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Logf("%v: %v (left out of the snapshot)", args, err)
			continue
		}
		// iptables-save stamps the time in comments.
		out = comment.ReplaceAll(out, nil)
		fmt.Fprintf(&b, "== %v\n%s", args, out)
	}
	return b.String()
}
