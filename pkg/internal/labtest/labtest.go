// Package labtest builds real netns labs for the scenario packages' tests:
// it skips without root (or a missing tool), and tears every lab down when
// the test ends.
package labtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/scenarios"
)

// Labs builds labs by name under one run id.
type Labs struct {
	t     testing.TB
	p     *netns.Provider
	set   *config.Set
	runID string
}

// New skips the test unless it runs as root with the given tools, and
// returns a builder for labs named by their embedded definitions.
func New(t testing.TB, tools ...string) *Labs {
	t.Helper()
	testenv.Kernel(t, "builds network-namespace labs")
	testenv.Tools(t, tools...)
	caps, err := kernelcap.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &Labs{t: t, p: netns.New(caps, command.Exec{}), set: set, runID: "t" + hex.EncodeToString(b[:])}
}

// Up builds the named lab (2 nodes × podsPerNode) and removes it when the
// test ends.
func (l *Labs) Up(name string, podsPerNode int) *lab.Instance {
	l.t.Helper()
	in, err := l.p.Up(context.Background(), lab.Spec{Def: l.set.Labs[name], RunID: l.runID, Nodes: 2, PodsPerNode: podsPerNode})
	if err != nil {
		l.t.Fatalf("up %s: %v", name, err)
	}
	l.t.Cleanup(func() {
		if err := l.p.Down(context.Background(), in); err != nil {
			l.t.Errorf("down %s: %v", name, err)
		}
	})
	return in
}
