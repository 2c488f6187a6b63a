package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
)

// ImageInfo is what cnilab reads back from `docker image inspect`.
type ImageInfo struct {
	ID     string
	Size   int64
	Labels map[string]string
	// Content is the ContentLabel value, empty for images cnilab did not
	// build.
	Content string
}

// ErrNoEngine means no Docker engine answered.
var ErrNoEngine = errors.New("no Docker engine answers")

// Inspect returns the local image ref, or nil when the store has no such
// image. Any other failure (no engine, unparsable output) is an error.
func Inspect(ctx context.Context, r command.Runner, ref string) (*ImageInfo, error) {
	res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"image", "inspect", "--format", "{{json .}}", ref}})
	if err != nil {
		var ce *command.Error
		if errors.As(err, &ce) && isNoSuchImage(ce.Stderr) {
			return nil, nil
		}
		if errors.As(err, &ce) && isNoEngine(ce.Stderr) {
			return nil, fmt.Errorf("%w: %v", ErrNoEngine, err)
		}
		return nil, err
	}
	return parseInspect(res.Stdout)
}

func isNoSuchImage(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "no such image") || strings.Contains(s, "no such object")
}

func isNoEngine(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "cannot connect to the docker daemon") || strings.Contains(s, "is the docker daemon running") ||
		strings.Contains(s, "permission denied while trying to connect")
}

func parseInspect(out []byte) (*ImageInfo, error) {
	var raw struct {
		ID     string `json:"Id"`
		Size   *int64 `json:"Size"`
		Config *struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("parse docker image inspect: %w", err)
	}
	if raw.ID == "" || raw.Size == nil {
		return nil, fmt.Errorf("parse docker image inspect: no Id or Size in %.200q", out)
	}
	info := &ImageInfo{ID: raw.ID, Size: *raw.Size}
	if raw.Config != nil {
		info.Labels = raw.Config.Labels
		info.Content = raw.Config.Labels[ContentLabel]
	}
	return info, nil
}

// CheckEngine fails with ErrNoEngine unless `docker version` reaches a
// server.
func CheckEngine(ctx context.Context, r command.Runner) error {
	res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"version", "--format", "{{.Server.Version}}"}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	if strings.TrimSpace(string(res.Stdout)) == "" {
		return fmt.Errorf("%w: docker version printed no server version", ErrNoEngine)
	}
	return nil
}

// Load runs `docker load -i tarPath`.
func Load(ctx context.Context, r command.Runner, tarPath string) error {
	_, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"load", "-q", "-i", tarPath}})
	return err
}
