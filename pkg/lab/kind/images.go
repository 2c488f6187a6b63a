package kind

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

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

// loadImages does what `kind load docker-image` does: one `docker save`
// of all images, streamed into every node's containerd.
func loadImages(ctx context.Context, r command.Runner, dir, cluster string, refs []string, ns []nodes.Node) error {
	tar := filepath.Join(dir, cluster+"-images.tar")
	defer os.Remove(tar)
	if _, err := r.Run(ctx, command.Cmd{Name: "docker", Args: append([]string{"save", "-o", tar}, refs...)}); err != nil {
		return fmt.Errorf("save images: %w", err)
	}
	errs := make(chan error, len(ns))
	for _, n := range ns {
		go func() {
			f, err := os.Open(tar)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			if err := nodeutils.LoadImageArchive(n, f); err != nil {
				errs <- fmt.Errorf("load images into %s: %w", n, err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range ns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
