package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every file's and every image's timestamp, so the same inputs
// give the same layer digests.
var epoch = time.Unix(0, 0).UTC()

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
)

// entry is one path of a Tree. A file's bytes are in data, or in the host
// file src (read when the tar is written; its sha256 is part of the tree's
// identity).
type entry struct {
	kind     entryKind
	mode     int64
	data     []byte
	src      string
	srcHash  string
	srcSize  int64
	link     string
	uid, gid int
}

// Tree is a set of paths that becomes one image layer: directories, files
// and symlinks with explicit modes and root ownership, written in sorted
// order with fixed timestamps. Parent directories are implied (0755).
type Tree struct {
	entries map[string]*entry
}

// NewTree returns an empty Tree.
func NewTree() *Tree { return &Tree{entries: map[string]*entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// Dir adds a directory with the given permission bits (sticky bit allowed,
// e.g. 01777 for /tmp).
func (t *Tree) Dir(p string, mode int64) { t.entries[clean(p)] = &entry{kind: kindDir, mode: mode} }

// File adds a file holding data.
func (t *Tree) File(p string, mode int64, data []byte) {
	t.entries[clean(p)] = &entry{kind: kindFile, mode: mode, data: data}
}

// Symlink adds a symlink p → target.
func (t *Tree) Symlink(p, target string) {
	t.entries[clean(p)] = &entry{kind: kindSymlink, mode: 0o777, link: target}
}

// HostFile adds the host file src at p; its content is hashed now so the
// tree's identity covers it.
func (t *Tree) HostFile(p string, mode int64, src string) error {
	sum, size, err := hashFile(src)
	if err != nil {
		return err
	}
	t.entries[clean(p)] = &entry{kind: kindFile, mode: mode, src: src, srcHash: sum, srcSize: size}
	return nil
}

// HostDir adds everything under the host directory dir below prefix,
// keeping modes (regular files, directories and symlinks; sockets and
// devices are skipped: a containerd store holds none worth keeping).
func (t *Tree) HostDir(prefix, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		dst := path.Join(prefix, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := int64(info.Mode().Perm())
		if info.Mode()&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		switch {
		case d.IsDir():
			t.Dir(dst, perm)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.Symlink(dst, target)
		case info.Mode().IsRegular():
			// Hashing here would read the store twice; HostDir content is
			// identified by the caller's key instead.
			t.entries[clean(dst)] = &entry{kind: kindFile, mode: perm, src: p, srcSize: info.Size()}
		}
		return nil
	})
}

// paths returns every path including implied parents, sorted so parents
// come first.
func (t *Tree) paths() []string {
	all := map[string]bool{}
	for p := range t.entries {
		all[p] = true
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			all[d] = true
		}
	}
	out := make([]string, 0, len(all))
	for p := range all {
		if p != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (t *Tree) get(p string) *entry {
	if e, ok := t.entries[p]; ok {
		return e
	}
	return &entry{kind: kindDir, mode: 0o755}
}

// Identity is a digest of the tree's paths, modes and contents; equal
// identities write equal tars.
func (t *Tree) Identity() string {
	h := sha256.New()
	for _, p := range t.paths() {
		e := t.get(p)
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%s\x00%d:%d\x00", p, e.kind, e.mode, e.link, e.uid, e.gid)
		switch {
		case e.src != "" && e.srcHash != "":
			fmt.Fprintf(h, "sha256:%s\x00", e.srcHash)
		case e.src != "":
			fmt.Fprintf(h, "path:%s:%d\x00", e.src, e.srcSize)
		default:
			s := sha256.Sum256(e.data)
			fmt.Fprintf(h, "sha256:%x\x00", s)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteTar writes the tree as an uncompressed tar.
func (t *Tree) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, p := range t.paths() {
		e := t.get(p)
		hdr := &tar.Header{Name: p, Mode: e.mode, Uid: e.uid, Gid: e.gid, Uname: "root", Gname: "root",
			ModTime: epoch, Format: tar.FormatPAX}
		if e.uid != 0 || e.gid != 0 {
			hdr.Uname, hdr.Gname = "", ""
		}
		switch e.kind {
		case kindDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case kindSymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case kindFile:
			hdr.Typeflag = tar.TypeReg
			if e.src == "" {
				hdr.Size = int64(len(e.data))
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := tw.Write(e.data); err != nil {
					return err
				}
				continue
			}
			if err := copyHostFile(tw, hdr, e.src); err != nil {
				return fmt.Errorf("layer %s: %w", p, err)
			}
		}
	}
	return tw.Close()
}

func copyHostFile(tw *tar.Writer, hdr *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("%s changed size while being read", src)
	}
	return nil
}

// WriteTarFile writes the tree to path (through a temporary file, so a
// crash never leaves a half layer behind).
func (t *Tree) WriteTarFile(p string) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := t.WriteTar(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// tarLayer is an uncompressed layer backed by a tar file. It is stored
// uncompressed in the docker-save archive: docker load and containerd's
// importer both detect compression by content, and skipping gzip saves
// tens of seconds per build on two cores.
type tarLayer struct {
	path   string
	diffID v1.Hash
	size   int64
}

var _ v1.Layer = (*tarLayer)(nil)

// LayerFromTar returns the uncompressed layer stored in the tar file p.
func LayerFromTar(p string) (v1.Layer, error) {
	sum, size, err := hashFile(p)
	if err != nil {
		return nil, err
	}
	return &tarLayer{path: p, diffID: v1.Hash{Algorithm: "sha256", Hex: sum}, size: size}, nil
}

func (l *tarLayer) Digest() (v1.Hash, error)           { return l.diffID, nil }
func (l *tarLayer) DiffID() (v1.Hash, error)           { return l.diffID, nil }
func (l *tarLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *tarLayer) Uncompressed() (io.ReadCloser, error) {
	return os.Open(l.path)
}
func (l *tarLayer) Size() (int64, error)                { return l.size, nil }
func (l *tarLayer) MediaType() (types.MediaType, error) { return types.DockerUncompressedLayer, nil }
