package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cnilab/cnilab/pkg/command"
)

// CrictlVersion is the cri-tools release in the node image. kind's node
// helpers (nodeutils.ImageID, ImageTags) and `kind export logs` run crictl,
// and Debian bookworm has no package for it. sigs.k8s.io/cri-tools v1.34.0
// has no replace directives, so `go install pkg@version` builds it.
const CrictlVersion = "v1.34.0"

// buildCrictl returns the path of a static crictl under dir, building it
// once per version.
func buildCrictl(ctx context.Context, r command.Runner, dir string) (string, error) {
	out := filepath.Join(dir, "crictl-"+CrictlVersion)
	p := filepath.Join(out, "crictl")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	tmp, err := os.MkdirTemp(dir, ".crictl-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	_, err = r.Run(ctx, command.Cmd{Name: "go", Args: []string{"install", "-trimpath",
		"-ldflags", "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=" + CrictlVersion,
		"sigs.k8s.io/cri-tools/cmd/crictl@" + CrictlVersion},
		Env: []string{"CGO_ENABLED=0", "GOBIN=" + tmp, "GOFLAGS=-mod=mod"}})
	if err != nil {
		return "", fmt.Errorf("build crictl %s: %w", CrictlVersion, err)
	}
	if err := os.RemoveAll(out); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return p, nil
}
