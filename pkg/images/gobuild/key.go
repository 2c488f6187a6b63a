package gobuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/pkg/command"
)

// modulesFS holds the wrapper modules. Every file carries a .txt suffix that
// writeModule strips: a real go.mod would make each directory a separate
// module, which go:embed refuses, and real .go files would be compiled as
// part of cnilab.
//
//go:embed modules
var modulesFS embed.FS

const embeddedSuffix = ".txt"

// moduleFile is one file of a wrapper module, as written to disk.
type moduleFile struct {
	path    string // slash-separated, relative to the module root, suffix stripped
	content []byte
}

// moduleFiles returns the wrapper module's files sorted by path.
func moduleFiles(module string) ([]moduleFile, error) {
	root := path.Join("modules", module)
	var files []moduleFile
	err := fs.WalkDir(modulesFS, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, embeddedSuffix) {
			return fmt.Errorf("embedded module file %s lacks the %s suffix", p, embeddedSuffix)
		}
		content, err := modulesFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), embeddedSuffix)
		files = append(files, moduleFile{path: rel, content: content})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gobuild: wrapper module %s: %w", module, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("gobuild: wrapper module %s is not embedded", module)
	}
	slices.SortFunc(files, func(a, b moduleFile) int { return strings.Compare(a.path, b.path) })
	return files, nil
}

// writeModule writes the wrapper module into dir.
func writeModule(module, dir string) error {
	files, err := moduleFiles(module)
	if err != nil {
		return err
	}
	for _, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("gobuild: %w", err)
		}
		if err := os.WriteFile(dst, f.content, 0o644); err != nil {
			return fmt.Errorf("gobuild: %w", err)
		}
	}
	return nil
}

// groupSources is the content digest of what a group is built from.
type groupSources struct {
	digest string
}

// groupSource digests the embedded wrapper module, or cnilab's own sources
// for the main-module group.
func groupSource(ctx context.Context, o Options, g group) (groupSources, error) {
	if g.module == "" {
		if o.ModuleRoot == "" {
			return groupSources{}, fmt.Errorf("gobuild: Options.ModuleRoot is empty; it is needed to build %s", groupLabel(g))
		}
		d, err := mainModuleDigest(ctx, o.Runner, o.ModuleRoot)
		return groupSources{digest: d}, err
	}
	files, err := moduleFiles(g.module)
	if err != nil {
		return groupSources{}, err
	}
	return groupSources{digest: digestFiles(files)}, nil
}

// digestFiles hashes (path, content) pairs in the order given.
func digestFiles(files []moduleFile) string {
	h := sha256.New()
	for _, f := range files {
		sum := sha256.Sum256(f.content)
		fmt.Fprintf(h, "%s\x00%x\n", f.path, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// binaryKey is the cache key of one output: everything that changes the
// bytes `go build` writes. Two builds with the same key produce the same
// binary (-trimpath, fixed version stamps, no VCS stamping).
func binaryKey(t toolchain, g group, src groupSources, b binary) string {
	h := sha256.New()
	fmt.Fprintf(h, "gobuild key v1\n")
	fmt.Fprintf(h, "toolchain %s %s %s %s\n", t.GOVERSION, t.GOOS, t.GOARCH, t.GOAMD64)
	fmt.Fprintf(h, "module %q source %s\n", g.module, src.digest)
	fmt.Fprintf(h, "versions %q\n", g.versions)
	fmt.Fprintf(h, "cgo %t tags %q\n", g.cgo, g.tags)
	fmt.Fprintf(h, "ldflags %q\n", g.ldflags)
	fmt.Fprintf(h, "binary %q package %q\n", b.name, b.pkg)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// kubernetesSourceHash is k8s.io/kubernetes's go.sum hash in the embedded
// wrapper module; it stands in for the git commit in the version stamp.
func kubernetesSourceHash() (string, error) {
	return moduleSourceHash("kubernetes", "k8s.io/kubernetes", KubernetesVersion)
}

// ciliumSourceHash is github.com/cilium/cilium's go.sum hash, Cilium's
// revision stamp.
func ciliumSourceHash() (string, error) {
	return moduleSourceHash("cilium", "github.com/cilium/cilium", CiliumVersion)
}

// moduleSourceHash is the h1: content hash of path@version in the go.sum of
// the embedded wrapper module.
func moduleSourceHash(module, path, version string) (string, error) {
	sum, err := modulesFS.ReadFile("modules/" + module + "/go.sum" + embeddedSuffix)
	if err != nil {
		return "", fmt.Errorf("gobuild: %w", err)
	}
	prefix := path + " " + version + " h1:"
	sc := bufio.NewScanner(bytes.NewReader(sum))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, path+" "+version+" "), nil
		}
	}
	return "", fmt.Errorf("gobuild: the %s wrapper's go.sum has no %q line", module, prefix)
}

// mainModuleDigest hashes cnilab's sources: every .go file, go.mod and
// go.sum under root, plus the files cnilab's packages embed (go list names
// them exactly), leaving out run output (reports/), built binaries (bin/)
// and dot directories such as .git.
func mainModuleDigest(ctx context.Context, r command.Runner, root string) (string, error) {
	// go list prints symlink-free directories; resolve root the same way.
	root, err := filepath.Abs(root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return "", fmt.Errorf("gobuild: %w", err)
	}
	paths := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "reports" || rel == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && (strings.HasSuffix(d.Name(), ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			paths[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("gobuild: walk %s: %w", root, err)
	}
	if !paths["go.mod"] {
		return "", fmt.Errorf("gobuild: %s has no go.mod; Options.ModuleRoot must be cnilab's module root", root)
	}
	embedded, err := mainModuleEmbeds(ctx, r, root)
	if err != nil {
		return "", err
	}
	for _, p := range embedded {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	slices.Sort(sorted)
	h := sha256.New()
	for _, p := range sorted {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return "", fmt.Errorf("gobuild: %w", err)
		}
		fh := sha256.New()
		_, err = io.Copy(fh, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("gobuild: read %s: %w", p, err)
		}
		fmt.Fprintf(h, "%s\x00%x\n", p, fh.Sum(nil))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mainModuleEmbeds lists, relative to root, the files that the main-module
// packages cnilab links embed.
func mainModuleEmbeds(ctx context.Context, r command.Runner, root string) ([]string, error) {
	const format = `{{if and .Module .Module.Main}}{{.Dir}}{{range .EmbedFiles}}{{"\t"}}{{.}}{{end}}{{end}}`
	res, err := r.Run(ctx, command.Cmd{Name: "go", Args: []string{"-C", root, "list", "-deps", "-f", format, "./cmd/cnilab"}})
	if err != nil {
		return nil, fmt.Errorf("gobuild: list cnilab's embedded files: %w", err)
	}
	var out []string
	packages := 0
	sc := bufio.NewScanner(bytes.NewReader(res.Stdout))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue // a dependency outside the main module
		}
		fields := strings.Split(line, "\t")
		dir := fields[0]
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("gobuild: go list printed %q, want an absolute package directory first", line)
		}
		packages++
		for _, f := range fields[1:] {
			rel, err := filepath.Rel(root, filepath.Join(dir, f))
			if err != nil || strings.HasPrefix(rel, "..") {
				return nil, fmt.Errorf("gobuild: embedded file %s of %s lies outside %s", f, dir, root)
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	if packages == 0 {
		return nil, fmt.Errorf("gobuild: go list -deps ./cmd/cnilab in %s named no main-module package", root)
	}
	return out, nil
}
