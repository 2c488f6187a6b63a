// Package gobuild compiles every Go program the offline kind image set
// carries — Kubernetes, etcd, CoreDNS, pause, flannel, the CNI plugins and
// cnilab itself — from the Go module proxy, with no registry involved.
//
// Each upstream program is built from a small wrapper module embedded in this
// package (modules/<name>/, files stored with a .txt suffix so the Go tool
// treats them as data rather than as part of cnilab's module). The wrapper
// pins the upstream versions in its go.mod and go.sum, so a build is
// reproducible and needs no `go mod tidy`. Outputs are cached by content
// under CacheDir/bin/<key>/<name>: an unchanged rebuild runs only `go env`
// (and `go list` for cnilab) and never the compiler.
package gobuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/cnilab/cnilab/pkg/command"
)

// Versions of everything Build compiles. The kind node image, the component
// image tags and kubeadm's expectations all follow from these.
const (
	KubernetesVersion = "v1.34.4"
	// EtcdVersion is the module version; EtcdTag is the image tag kubeadm
	// v1.34.4 asks for.
	EtcdVersion    = "v3.6.5"
	EtcdTag        = "3.6.5-0"
	CoreDNSVersion = "v1.12.1"
	// PauseTag is the tag kubeadm expects; the program is cnilab's own.
	PauseTag       = "3.10.1"
	FlannelVersion = "v0.28.10"
	// FlannelCNIPluginVersion is the containernetworking/plugins release that
	// still has plugins/meta/flannel (removed before v1.0.0); its newer home,
	// github.com/flannel-io/cni-plugin, is not served by the module proxy.
	FlannelCNIPluginVersion = "v0.9.1"
	// CNIPluginsVersion is the containernetworking/plugins release for
	// bridge, host-local, loopback and portmap. It accepts cniVersion 0.1.0
	// to 1.1.0, so the 0.4.0 conflist the v0.9.1 flannel plugin needs works.
	CNIPluginsVersion = "v1.10.0"
	// KubeRouterVersion is the only kube-router release the module proxy
	// serves under github.com/cloudnativelabs/kube-router/v2.
	KubeRouterVersion = "v2.1.0"
	// GoBGPVersion is the gobgp CLI built next to kube-router: the version
	// kube-router v2.1.0's go.mod requires, so the CLI speaks its server's
	// gRPC API.
	GoBGPVersion = "v3.23.0"
	// kubeRouterBuildDate is the v2.1.0 tag's time as the module proxy
	// reports it (.info Time), fixed like kubernetesBuildDate.
	kubeRouterBuildDate = "2024-03-02T21:45:54Z"
	// CiliumVersion is github.com/cilium/cilium, built from the module proxy
	// with two stand-in modules (see CiliumNotes).
	CiliumVersion = "v1.20.2"
)

// Options configures Build.
type Options struct {
	// CacheDir holds the built binaries under bin/<key>/; see DefaultCacheDir.
	CacheDir string
	// ModuleRoot is the cnilab main module's root, needed only to build the
	// cnilab binary (the bench image's probe).
	ModuleRoot string
	// Log receives one progress line per build step; nil discards them.
	Log io.Writer
	// Runner runs `go`.
	Runner command.Runner
}

// Binaries maps a binary name to the absolute path of the built file.
type Binaries map[string]string

// DefaultCacheDir is $XDG_CACHE_HOME/cnilab, or ~/.cache/cnilab.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("gobuild: no cache directory: %w", err)
	}
	return filepath.Join(dir, "cnilab"), nil
}

// KubeadmImages is what `kubeadm config images list --kubernetes-version
// v1.34.4` prints, in its order: the component images the node must hold.
func KubeadmImages() []string {
	return []string{
		"registry.k8s.io/kube-apiserver:" + KubernetesVersion,
		"registry.k8s.io/kube-controller-manager:" + KubernetesVersion,
		"registry.k8s.io/kube-scheduler:" + KubernetesVersion,
		"registry.k8s.io/kube-proxy:" + KubernetesVersion,
		"registry.k8s.io/coredns/coredns:" + CoreDNSVersion,
		"registry.k8s.io/pause:" + PauseTag,
		"registry.k8s.io/etcd:" + EtcdTag,
	}
}

// FlannelNotes are the lines the flannel lab records about how its binaries
// differ from upstream's release.
func FlannelNotes() []string {
	return []string{
		"flanneld " + FlannelVersion + " is built with a local stand-in module for " +
			"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc (wired in with a go.mod replace), " +
			"because the Go module proxy does not serve that module's zip; the stand-in declares only what " +
			"the tencent-vpc backend compiles against and every call returns an error, so only that backend " +
			"is unusable (vxlan, host-gw and the others are untouched).",
		"The flannel CNI plugin comes from containernetworking/plugins " + FlannelCNIPluginVersion +
			" (plugins/meta/flannel), not from github.com/flannel-io/cni-plugin, which the proxy does not serve; " +
			"it speaks CNI spec 0.1.0-0.4.0 only, so the conflist must say cniVersion 0.4.0.",
	}
}

// CiliumNotes are the lines the Cilium labs record about how their binaries
// differ from upstream's release.
func CiliumNotes() []string {
	return []string{
		"cilium " + CiliumVersion + " is built from the Go module proxy through a wrapper module: " +
			"github.com/osrg/gobgp/v4 is replaced by v4.7.0 (the pseudo-version Cilium pins is not served; " +
			"it only matters to the BGP control plane, which is off), and sigs.k8s.io/mcs-api/controllers and " +
			"sigs.k8s.io/mcs-api/conformance v0.5.2 (not served) are local stand-ins: controllers declares the " +
			"one constant Cilium uses (DerivedServiceAnnotation), conformance is empty (no binary imports it). " +
			"cilium-envoy (C++, Bazel) cannot be built here at all.",
	}
}

// Build builds the named binaries (all when names is empty) and returns
// their paths. Outputs already in the cache are returned without running the
// compiler; the rest are built, two module builds at a time (each `go build`
// already uses both cores for compiling; overlapping two hides the long
// single-threaded links).
func Build(ctx context.Context, o Options, names ...string) (Binaries, error) {
	if o.CacheDir == "" {
		return nil, errors.New("gobuild: Options.CacheDir is empty")
	}
	if o.Runner == nil {
		return nil, errors.New("gobuild: Options.Runner is nil")
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	cacheDir, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("gobuild: cache dir: %w", err)
	}
	commit, err := kubernetesSourceHash()
	if err != nil {
		return nil, err
	}
	ciliumCommit, err := ciliumSourceHash()
	if err != nil {
		return nil, err
	}
	selected, err := selectGroups(groups(commit, ciliumCommit), names)
	if err != nil {
		return nil, err
	}
	toolchain, err := goToolchain(ctx, o.Runner)
	if err != nil {
		return nil, err
	}

	out := Binaries{}
	var todo []pendingGroup
	for _, g := range selected {
		src, err := groupSource(ctx, o, g)
		if err != nil {
			return nil, err
		}
		p := pendingGroup{group: g, src: src, paths: map[string]string{}}
		for _, b := range g.binaries {
			path := filepath.Join(cacheDir, "bin", binaryKey(toolchain, g, src, b), b.name)
			if isBuilt(path) {
				out[b.name] = path
				continue
			}
			p.missing = append(p.missing, b)
			p.paths[b.name] = path
		}
		if len(p.missing) > 0 {
			todo = append(todo, p)
		} else {
			fmt.Fprintf(logw, "gobuild: %s: cached\n", groupLabel(g))
		}
	}
	if len(todo) == 0 {
		return out, nil
	}

	slices.SortStableFunc(todo, func(a, b pendingGroup) int { return b.group.weight - a.group.weight })
	workers := pool.NewWithResults[map[string]string]().WithContext(ctx).WithMaxGoroutines(2).WithCancelOnError().WithFirstError()
	for _, p := range todo {
		workers.Go(func(ctx context.Context) (map[string]string, error) {
			return buildGroup(ctx, o, logw, cacheDir, p)
		})
	}
	built, err := workers.Wait()
	if err != nil {
		return nil, err
	}
	for _, m := range built {
		for name, path := range m {
			out[name] = path
		}
	}
	return out, nil
}

// pendingGroup is a group with at least one binary missing from the cache.
type pendingGroup struct {
	group   group
	src     groupSources
	missing []binary
	paths   map[string]string // binary name -> final cache path
}

func groupLabel(g group) string {
	var names []string
	for _, b := range g.binaries {
		names = append(names, b.name)
	}
	return strings.Join(names, ", ")
}

// isBuilt reports whether a finished, executable output is at path. Outputs
// are renamed into place only when complete, so existence is enough.
func isBuilt(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// toolchain is what of the Go installation changes the compiler's output.
type toolchain struct {
	GOVERSION, GOOS, GOARCH, GOAMD64 string
}

func goToolchain(ctx context.Context, r command.Runner) (toolchain, error) {
	res, err := r.Run(ctx, command.Cmd{Name: "go", Args: []string{"env", "-json", "GOVERSION", "GOOS", "GOARCH", "GOAMD64"}})
	if err != nil {
		return toolchain{}, fmt.Errorf("gobuild: go env: %w", err)
	}
	var t toolchain
	if err := json.Unmarshal(res.Stdout, &t); err != nil {
		return toolchain{}, fmt.Errorf("gobuild: parse go env -json output %q: %w", res.Stdout, err)
	}
	if t.GOVERSION == "" || t.GOOS == "" || t.GOARCH == "" {
		return toolchain{}, fmt.Errorf("gobuild: go env -json output %q lacks GOVERSION/GOOS/GOARCH", res.Stdout)
	}
	return t, nil
}

// buildGroup builds the group's missing binaries into a scratch directory
// next to the cache and renames each into place, so a reader never sees a
// half-written binary and an interrupted build leaves nothing cached.
func buildGroup(ctx context.Context, o Options, logw io.Writer, cacheDir string, p pendingGroup) (map[string]string, error) {
	g := p.group
	label := strings.Join(binaryNames(p.missing), ", ")
	if err := os.MkdirAll(filepath.Join(cacheDir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	scratch, err := os.MkdirTemp(filepath.Join(cacheDir, "bin"), ".build-")
	if err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	defer os.RemoveAll(scratch)

	dir := o.ModuleRoot
	if g.module != "" {
		dir = filepath.Join(scratch, "module")
		if err := writeModule(g.module, dir); err != nil {
			return nil, err
		}
	} else if dir == "" {
		return nil, errors.New("gobuild: Options.ModuleRoot is empty; it is needed to build cnilab")
	}
	outDir := filepath.Join(scratch, "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}

	args := []string{"-C", dir, "build", "-trimpath", "-buildvcs=false"}
	if g.module != "" {
		// The wrapper is a throwaway copy: let the go command adjust it if
		// this toolchain wants to, instead of failing as -mod=readonly would.
		// The committed go.sum still pins every module's content.
		args = append(args, "-mod=mod")
	}
	if len(g.tags) > 0 {
		args = append(args, "-tags", strings.Join(g.tags, ","))
	}
	args = append(args, "-ldflags", ldflagsArg(g.ldflags))
	var built map[string]string // binary name -> file `go build` writes
	if len(p.missing) == 1 {
		b := p.missing[0]
		args = append(args, "-o", filepath.Join(outDir, b.name), b.pkg)
		built = map[string]string{b.name: filepath.Join(outDir, b.name)}
	} else {
		// With several packages, -o names a directory and each output is
		// named after its package's last path element.
		args = append(args, "-o", outDir+string(filepath.Separator))
		built = map[string]string{}
		for _, b := range p.missing {
			args = append(args, b.pkg)
			built[b.name] = filepath.Join(outDir, filepath.Base(b.pkg))
		}
	}
	cgo := "0"
	if g.cgo {
		cgo = "1"
	}
	fmt.Fprintf(logw, "gobuild: building %s\n", label)
	start := time.Now()
	if _, err := o.Runner.Run(ctx, command.Cmd{Name: "go", Args: args, Env: []string{"CGO_ENABLED=" + cgo}}); err != nil {
		return nil, fmt.Errorf("gobuild: build %s: %w", label, err)
	}
	fmt.Fprintf(logw, "gobuild: built %s in %s\n", label, time.Since(start).Round(100*time.Millisecond))

	result := map[string]string{}
	for _, b := range p.missing {
		from, to := built[b.name], p.paths[b.name]
		if !isBuilt(from) {
			return nil, fmt.Errorf("gobuild: go build %s left no executable at %s", b.pkg, from)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return nil, fmt.Errorf("gobuild: %w", err)
		}
		if err := os.Rename(from, to); err != nil {
			return nil, fmt.Errorf("gobuild: %w", err)
		}
		result[b.name] = to
	}
	return result, nil
}

func binaryNames(bs []binary) []string {
	var names []string
	for _, b := range bs {
		names = append(names, b.name)
	}
	return names
}

// ldflagsArg joins linker flags into the one -ldflags value, quoting the
// values that contain spaces the way cmd/go splits them.
func ldflagsArg(flags []string) string {
	quoted := make([]string, len(flags))
	for i, f := range flags {
		if strings.ContainsAny(f, " \t'\"") {
			f = "'" + f + "'"
		}
		quoted[i] = f
	}
	return strings.Join(quoted, " ")
}
