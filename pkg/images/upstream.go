package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// Choice is which set `images build` made, with why; it is recorded in the
// cache dir so later runs (the kind provider, `images list`) use the same.
type Choice struct {
	Source Source    `json:"source"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

const choiceFile = "images-choice.json"

// RecordChoice writes c to cacheDir.
func RecordChoice(cacheDir string, c Choice) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cacheDir, choiceFile), append(b, '\n'), 0o644)
}

// RecordedChoice reads the last recorded choice; ok is false when none was
// recorded.
func RecordedChoice(cacheDir string) (c Choice, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(cacheDir, choiceFile))
	if os.IsNotExist(err) {
		return Choice{}, false, nil
	}
	if err != nil {
		return Choice{}, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Choice{}, false, fmt.Errorf("%s: %w", choiceFile, err)
	}
	if c.Source != SourceOffline && c.Source != SourceUpstream {
		return Choice{}, false, fmt.Errorf("%s: unknown source %q", choiceFile, c.Source)
	}
	return c, true, nil
}

// SetFor returns the set of a source.
func SetFor(s Source) Set {
	if s == SourceUpstream {
		return Upstream()
	}
	return Offline()
}

// probeTimeout bounds auto's registry check.
const probeTimeout = 20 * time.Second

// ProbeUpstream says whether the upstream node image can be pulled: its
// manifest is fetched from the registry within a short bound.
func ProbeUpstream(ctx context.Context, r command.Runner) (ok bool, reason string) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"manifest", "inspect", UpstreamNodeImage}}); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Sprintf("no answer from the registry for %s within %s", UpstreamNodeImage, probeTimeout)
		}
		return false, fmt.Sprintf("%s is not pullable: %v", UpstreamNodeImage, err)
	}
	return true, UpstreamNodeImage + " is pullable"
}

// PullUpstream pulls the upstream set's Docker images (the node image; the
// flannel chart brings its own image references).
func PullUpstream(ctx context.Context, r command.Runner) ([]Built, error) {
	var out []Built
	for _, ref := range []string{UpstreamNodeImage} {
		begin := time.Now()
		if _, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"pull", "-q", ref}}); err != nil {
			return out, fmt.Errorf("pull %s: %w", ref, err)
		}
		info, err := Inspect(ctx, r, ref)
		if err != nil {
			return out, err
		}
		if info == nil {
			return out, fmt.Errorf("pull %s: image absent after pull", ref)
		}
		out = append(out, Built{Ref: ref, Duration: time.Since(begin), Size: info.Size})
	}
	return out, nil
}
