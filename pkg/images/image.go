package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// defaultPath is the PATH every image is given (kubeadm's static pods run
// bare command names).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LayerSource is one layer of an image spec: a tar file already on disk
// (a mmdebstrap rootfs, identified by its build key) or a Tree.
type LayerSource struct {
	// Name is used for the cached tar file name.
	Name string
	// Tar is an existing tar file; Key identifies its content.
	Tar, Key string
	Tree     *Tree
}

func (s LayerSource) identity() string {
	if s.Tree != nil {
		return "tree:" + s.Tree.Identity()
	}
	return "tar:" + s.Key
}

// Spec describes one image: layers bottom to top plus its runtime config.
type Spec struct {
	Ref    string
	Layers []LayerSource
	Config v1.Config
	// Extra is mixed into the content key for inputs that are not layers
	// (for example the procedure that made a layer).
	Extra string
}

// ContentKey is the sha256 of everything the image is built from: its
// name, config and each layer's identity. It becomes the ContentLabel.
func (s Spec) ContentKey() string {
	h := sha256.New()
	cfg, _ := json.Marshal(s.Config) // a v1.Config always marshals
	fmt.Fprintf(h, "ref=%s\x00config=%s\x00extra=%s\x00", s.Ref, cfg, s.Extra)
	for _, l := range s.Layers {
		fmt.Fprintf(h, "layer=%s\x00", l.identity())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// image builds the v1.Image for s, writing Tree layers as tar files under
// dir. The config carries the content label and fixed timestamps.
func (s Spec) image(dir string) (v1.Image, error) {
	var layers []v1.Layer
	for _, src := range s.Layers {
		p := src.Tar
		if src.Tree != nil {
			p = filepath.Join(dir, fmt.Sprintf("layer-%s-%s.tar", src.Name, src.Tree.Identity()[:16]))
			if _, err := os.Stat(p); err != nil {
				if err := src.Tree.WriteTarFile(p); err != nil {
					return nil, fmt.Errorf("%s: layer %s: %w", s.Ref, src.Name, err)
				}
			}
		}
		touch(p)
		l, err := LayerFromTar(p)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", s.Ref, src.Name, err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.History = nil
	cf.Config = s.Config
	cf.Config.Labels = map[string]string{}
	for k, v := range s.Config.Labels {
		cf.Config.Labels[k] = v
	}
	cf.Config.Labels[ContentLabel] = s.ContentKey()
	return mutate.ConfigFile(img, cf)
}

// touch marks a cached file as used by this build (pruneCache keeps it).
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now) // a failure only makes the file prunable
}

// pruneCache removes cached tars in dirs that this build did not use
// (older than since), so edits do not pile up layers.
func pruneCache(since time.Time, dirs ...string) error {
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(since) {
				continue
			}
			if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteArchive writes the specs as one docker-save tar (shared layers
// stored once), with each image tagged by its Ref.
func WriteArchive(path, layerDir string, specs ...Spec) error {
	refs := map[name.Reference]v1.Image{}
	for _, s := range specs {
		ref, err := name.ParseReference(s.Ref)
		if err != nil {
			return fmt.Errorf("image name %q: %w", s.Ref, err)
		}
		img, err := s.image(layerDir)
		if err != nil {
			return err
		}
		refs[ref] = img
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
