package kind

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
)

// Image sources (package images' names).
const (
	SourceOffline  = string(images.SourceOffline)
	SourceUpstream = string(images.SourceUpstream)
)

// Images are the images a kind lab runs.
type Images struct {
	// Source is SourceOffline (built here by `cnilab images build`; never
	// pulled) or SourceUpstream (pinned public images; the CNI chart's own
	// image values apply).
	Source string
	// Node is the kind node image.
	Node string
	// CNIs are the offline CNI images by lab CNI name (config.Lab.CNI),
	// set into the lab's offline_image_values (unused upstream). A CNI not
	// in it has no offline image.
	CNIs map[string]string
	// Bench is the bench image: iperf3 and the cnilab binary.
	Bench string
	// Notes are, per CNI, what a lab on these images records about how
	// they differ from the upstream release.
	Notes map[string][]string
}

// ImagesFrom returns the images of an image set (package images names
// both the offline and the upstream set).
func ImagesFrom(s images.Set) Images {
	return Images{Source: string(s.Source), Node: s.Node, CNIs: s.CNIImages(), Bench: s.Bench, Notes: s.Notes}
}

// loaded are the images kind must load into the nodes of a lab: everything
// but the node image. Offline, that is the CNI's image when the recipe uses
// it (offline_image_values) and the recipe's own offline images; upstream,
// nodes pull the CNI's images.
func (im Images) loaded(def *config.Lab) []string {
	if im.Source != SourceOffline {
		return []string{im.Bench}
	}
	var out []string
	k := def.Kind
	if ref, ok := im.CNIs[def.CNI]; ok && len(k.CNI.OfflineImageValues) > 0 {
		out = append(out, ref)
	}
	for _, path := range slices.Sorted(maps.Keys(k.CNI.OfflineImages)) {
		if ref := k.CNI.OfflineImages[path]; !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return append(out, im.Bench)
}

// imageID is the local ID of a Docker image, or an error saying it is not
// there.
func imageID(ctx context.Context, r command.Runner, image string) (string, error) {
	res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"image", "inspect", "--format", "{{.Id}}", image}})
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(res.Stdout))
	if !strings.HasPrefix(id, "sha256:") {
		return "", fmt.Errorf("docker image inspect %s: unexpected ID %q", image, id)
	}
	return id, nil
}

// missingImages returns the images of want that the Docker engine lacks.
func missingImages(ctx context.Context, r command.Runner, want []string) []string {
	var miss []string
	for _, im := range want {
		if _, err := imageID(ctx, r, im); err != nil {
			miss = append(miss, im)
		}
	}
	return miss
}

// importRetry bounds the retries of one node's image import. Under load
// (seven to nine clusters up on two cores) `ctr images import` has failed
// where a second try a few seconds later works; a failure that persists
// through every attempt is a real one, reported with each attempt's reason.
type importRetry struct {
	// Attempts is how many times an import is tried (at least 1).
	Attempts int
	// Backoff is the wait before the second attempt; each later wait
	// doubles it.
	Backoff time.Duration
	// Sleep waits d or until ctx ends (sleepCtx; tests record the waits).
	Sleep func(ctx context.Context, d time.Duration) error
}

// defaultImportRetry: four attempts, waits of 2, 4 and 8 s.
var defaultImportRetry = importRetry{Attempts: 4, Backoff: 2 * time.Second, Sleep: sleepCtx}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadImages does what `kind load docker-image` does: one `docker save`
// of all images, streamed into every node's containerd (in parallel), each
// node's import retried as retry allows. It fails with every node's
// failure; notes name the imports that needed more than one attempt, with
// the failures before, for the lab's notes (a slow load then says why).
func loadImages(ctx context.Context, r command.Runner, retry importRetry, dir, cluster string, refs, nodeNames []string) (notes []string, err error) {
	tar := filepath.Join(dir, cluster+"-images.tar")
	defer os.Remove(tar)
	if _, err := r.Run(ctx, command.Cmd{Name: "docker", Args: append([]string{"save", "-o", tar}, refs...)}); err != nil {
		return nil, fmt.Errorf("save images: %w", err)
	}
	errs := make([]error, len(nodeNames))
	retried := make([]string, len(nodeNames))
	var wg sync.WaitGroup
	for i, n := range nodeNames {
		wg.Go(func() { retried[i], errs[i] = importInto(ctx, r, retry, n, tar) })
	}
	wg.Wait()
	for _, n := range retried {
		if n != "" {
			notes = append(notes, n)
		}
	}
	return notes, errors.Join(errs...)
}

// importInto imports the archive tar into node's containerd (k8s.io
// namespace, the snapshotter its CRI uses), as kind's LoadImageArchive
// does, but through r so each attempt's stderr is kept: attempt after
// attempt until one succeeds, retry's attempts are used up, or ctx ends.
// note, when a later attempt succeeded, says which and why the earlier
// ones failed.
func importInto(ctx context.Context, r command.Runner, retry importRetry, node, tar string) (note string, err error) {
	attempts := max(retry.Attempts, 1)
	var reasons []string
	snapshotter := ""
	wait := retry.Backoff
	for a := 1; a <= attempts; a++ {
		if a > 1 {
			if err := retry.Sleep(ctx, wait); err != nil {
				reasons = append(reasons, fmt.Sprintf("attempt %d: not started: %v", a, err))
				break
			}
			wait *= 2
		}
		err := func() error {
			if snapshotter == "" {
				res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"exec", node, "containerd", "config", "dump"}})
				if err != nil {
					return err
				}
				if snapshotter, err = parseSnapshotter(res.Stdout); err != nil {
					return err
				}
			}
			f, err := os.Open(tar)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = r.Run(ctx, command.Cmd{Name: "docker", Stdin: f, Args: []string{"exec", "-i", node,
				"ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests", "--snapshotter=" + snapshotter, "-"}})
			return err
		}()
		if err == nil {
			if a > 1 {
				note = fmt.Sprintf("images: import into %s succeeded at attempt %d of %d (%s)", node, a, attempts, strings.Join(reasons, "; "))
			}
			return note, nil
		}
		reasons = append(reasons, fmt.Sprintf("attempt %d: %s", a, failureReason(err)))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("load images into %s: %d of %d attempts failed: %s", node, len(reasons), attempts, strings.Join(reasons, "; "))
}

// failureReason is what one failed attempt says: the exit status and the
// program's whole stderr, when a program ran.
func failureReason(err error) string {
	var ce *command.Error
	if errors.As(err, &ce) {
		why := ce.Cmd + ": " + ce.Err.Error()
		if s := strings.TrimSpace(ce.Stderr); s != "" {
			why += ": stderr: " + strings.Join(strings.Fields(s), " ")
		}
		return why
	}
	return err.Error()
}

// parseSnapshotter reads the snapshotter the node's CRI plugin unpacks
// images with from `containerd config dump`: config version 2 (containerd
// 1.x, the offline node image's 1.6) keeps it under the CRI plugin's
// containerd table, versions 3 and 4 (containerd 2.x) under the CRI images
// plugin. An import into another snapshotter would leave the images
// unusable to the kubelet.
func parseSnapshotter(dump []byte) (string, error) {
	var c struct {
		Version int `toml:"version"`
		Plugins struct {
			CRI struct {
				Containerd struct {
					Snapshotter string `toml:"snapshotter"`
				} `toml:"containerd"`
			} `toml:"io.containerd.grpc.v1.cri"`
			CRIImages struct {
				Snapshotter string `toml:"snapshotter"`
			} `toml:"io.containerd.cri.v1.images"`
		} `toml:"plugins"`
	}
	if _, err := toml.Decode(string(dump), &c); err != nil {
		return "", fmt.Errorf("containerd config dump: %w", err)
	}
	var s string
	switch c.Version {
	case 2:
		s = c.Plugins.CRI.Containerd.Snapshotter
	case 3, 4:
		s = c.Plugins.CRIImages.Snapshotter
	default:
		return "", fmt.Errorf("containerd config dump: config version %d, want 2, 3 or 4", c.Version)
	}
	if s == "" {
		return "", fmt.Errorf("containerd config dump (version %d) names no CRI snapshotter", c.Version)
	}
	return s, nil
}
