package cpufocus

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/internal/kindtest"
)

// TestFocusRealContainers: two real containers of one run, as a kind
// lab's node containers are; focusing on one leaves it at Docker's default
// weight and holds the other at the lowest, then restores it.
func TestFocusRealContainers(t *testing.T) {
	kindtest.Require(t, "the cpufocus Docker test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := fmt.Sprintf("cf%d", os.Getpid()%100000)
	r := command.Exec{}
	var names []string
	for _, n := range []string{"a-worker", "b-worker"} {
		name := "cnl-" + run + "-" + n
		if _, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"run", "-d", "--name", name, "--entrypoint", "sleep", images.BenchImage, "120"}}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		t.Cleanup(func() {
			_, _ = r.Run(context.Background(), command.Cmd{Name: "docker", Args: []string{"rm", "-f", name}})
		})
	}
	f := New(r, run)
	what, restore, err := f.Enter(ctx, names[:1])
	if err != nil {
		t.Fatal(err)
	}
	if what != "1 other node containers at the lowest CPU weight" {
		t.Errorf("Enter said %q", what)
	}
	weights := func() []string {
		var out []string
		for _, n := range names {
			out = append(out, weight(t, f.groups[n]))
		}
		return out
	}
	during := weights()
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	after := weights()
	low := "2"
	if strings.HasSuffix(f.groups[names[1]], "cpu.weight") {
		low = "1"
	}
	if during[1] != low || during[0] == low || after[1] != during[0] {
		t.Errorf("weights during the window %v (want the kept one at the default, the other at %s), after %v (want both back)", during, low, after)
	}
}
