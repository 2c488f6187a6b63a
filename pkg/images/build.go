package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images/gobuild"
)

// BuildBinaries builds the named Go binaries and returns their paths
// (package gobuild's Build, bound to its options).
type BuildBinaries func(ctx context.Context, names ...string) (Binaries, error)

// Options configure Build.
type Options struct {
	// CacheDir holds rootfs tars, layer tars and the preload store.
	CacheDir string
	Log      io.Writer
	Runner   command.Runner
	Binaries BuildBinaries
	// Force rebuilds and reloads every image even when its content label
	// matches (cached rootfs and layer tars are still reused).
	Force bool
}

// Built is the outcome for one image.
type Built struct {
	Ref string
	// UpToDate means the local image already had this content label and
	// nothing was rebuilt.
	UpToDate bool
	Duration time.Duration
	Size     int64
	Content  string
}

// Report is what Build did, image by image, and how long it all took.
type Report struct {
	Source   Source
	Images   []Built
	Total    time.Duration
	Binaries time.Duration
	Rootfs   time.Duration
}

// DefaultCacheDir is $XDG_CACHE_HOME/cnilab or ~/.cache/cnilab, the same
// directory package gobuild caches binaries in.
func DefaultCacheDir() (string, error) { return gobuild.DefaultCacheDir() }

// GoBinaries binds gobuild.Build to options.
func GoBinaries(o gobuild.Options) BuildBinaries {
	return func(ctx context.Context, names ...string) (Binaries, error) {
		bin, err := gobuild.Build(ctx, o, names...)
		return Binaries(bin), err
	}
}

// preloadProcedure is part of the node's content key: changing how the
// store is filled must rebuild it.
const preloadProcedure = "ctr-import --all-platforms --no-unpack; cri disabled; v1"

// preloadScript starts containerd with only the content and metadata
// plugins that `ctr images import` needs, imports every archive under
// /preload into the k8s.io namespace (CRI's), and lists the result.
const preloadScript = `set -o errexit -o nounset -o pipefail
printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' > /tmp/preload.toml
containerd --config /tmp/preload.toml >/tmp/containerd.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || { cat /tmp/containerd.log >&2; exit 1; }
for t in /preload/*.tar; do ctr -n k8s.io images import --all-platforms --no-unpack "$t" >&2; done
ctr -n k8s.io images ls -q
kill "$pid"
wait "$pid" || true
`

type builder struct {
	o   Options
	log io.Writer
	dir string
}

// Build makes the offline image set and loads it into Docker, skipping
// every image whose local copy carries the same content label.
func Build(ctx context.Context, o Options) (Report, error) { return build(ctx, o, true) }

// BuildBench makes only the bench image (the upstream set has no bench).
func BuildBench(ctx context.Context, o Options) (Report, error) { return build(ctx, o, false) }

func build(ctx context.Context, o Options, full bool) (Report, error) {
	begin := time.Now()
	b := &builder{o: o, log: o.Log, dir: o.CacheDir}
	if b.log == nil {
		b.log = io.Discard
	}
	rep := Report{Source: SourceOffline}
	if err := CheckEngine(ctx, o.Runner); err != nil {
		return rep, err
	}
	for _, d := range []string{"rootfs", "layers", "archives", "preload", "tools"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o755); err != nil {
			return rep, err
		}
	}

	// Binaries and the two root filesystems are independent; run them side
	// by side (mmdebstrap is mostly network and dpkg, go build is CPU).
	var (
		wg                                sync.WaitGroup
		bin                               Binaries
		nodeTar, toolsTar, krTar, cilTar  string
		binErr, nErr, tErr, krErr, cilErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		t := time.Now()
		names := benchBinaries
		if full {
			names = AllBinaries()
		}
		bin, binErr = o.Binaries(ctx, names...)
		if binErr == nil && full {
			var crictl string
			crictl, binErr = buildCrictl(ctx, o.Runner, filepath.Join(b.dir, "tools"))
			bin["crictl"] = crictl
		}
		rep.Binaries = time.Since(t)
	}()
	rootBegin := time.Now()
	go func() {
		defer wg.Done()
		nodeTar, nErr = buildRootfs(ctx, o.Runner, filepath.Join(b.dir, "rootfs"), nodeRootfs)
	}()
	go func() {
		defer wg.Done()
		toolsTar, tErr = buildRootfs(ctx, o.Runner, filepath.Join(b.dir, "rootfs"), toolsRootfs)
		if full && tErr == nil {
			// After tools, not beside it: two mmdebstraps at once only
			// compete for the same two cores and the same mirror.
			krTar, krErr = buildRootfs(ctx, o.Runner, filepath.Join(b.dir, "rootfs"), kubeRouterRootfs)
		}
	}()
	if full {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cilTar, cilErr = buildRootfs(ctx, o.Runner, filepath.Join(b.dir, "rootfs"), ciliumRootfs)
		}()
	}
	wg.Wait()
	rep.Rootfs = time.Since(rootBegin)
	if err := errors.Join(binErr, nErr, tErr, krErr, cilErr); err != nil {
		return rep, err
	}
	fmt.Fprintf(b.log, "binaries ready in %s, root filesystems in %s\n", rep.Binaries.Round(time.Second), rep.Rootfs.Round(time.Second))

	tools := LayerSource{Name: "tools", Tar: toolsTar, Key: toolsRootfs.Key()}
	bench, err := benchSpec(bin, tools)
	if err != nil {
		return rep, err
	}
	if !full {
		r, err := b.ensure(ctx, bench, nil)
		if err != nil {
			return rep, err
		}
		rep.Images = append(rep.Images, r)
		rep.Total = time.Since(begin)
		return rep, nil
	}
	nodeFS := LayerSource{Name: "node-rootfs", Tar: nodeTar, Key: nodeRootfs.Key()}
	components, err := componentSpecs(bin, tools)
	if err != nil {
		return rep, err
	}
	flannel, err := flannelSpec(bin, tools)
	if err != nil {
		return rep, err
	}
	kubeRouter, err := kubeRouterSpec(bin, LayerSource{Name: "kube-router-rootfs", Tar: krTar, Key: kubeRouterRootfs.Key()})
	if err != nil {
		return rep, err
	}
	nt, err := nodeTree(bin)
	if err != nil {
		return rep, err
	}
	base := Spec{Ref: nodeBaseImage, Layers: []LayerSource{nodeFS, {Name: "node-files", Tree: nt}}, Config: nodeConfig()}

	ciliumSrc, err := moduleDir(ctx, o.Runner, CiliumModule, CiliumVersion)
	if err != nil {
		return rep, err
	}
	ciliumBase := LayerSource{Name: "cilium-rootfs", Tar: cilTar, Key: ciliumRootfs.Key()}
	cilium, err := ciliumAgentSpec(bin, ciliumBase, ciliumSrc)
	if err != nil {
		return rep, err
	}
	operator, err := ciliumOperatorSpec(bin, ciliumBase)
	if err != nil {
		return rep, err
	}

	for _, s := range []Spec{flannel, kubeRouter, bench, cilium, operator} {
		r, err := b.ensure(ctx, s, nil)
		if err != nil {
			return rep, err
		}
		rep.Images = append(rep.Images, r)
	}
	r, err := b.ensureNode(ctx, base, components)
	if err != nil {
		return rep, err
	}
	rep.Images = append(rep.Images, r)
	// The preload tar is only read when the node is rebuilt; keep it.
	touch(filepath.Join(b.dir, "layers", "preload-"+preloadKey(nodeFS, components)[:16]+".tar"))
	if err := pruneCache(begin, filepath.Join(b.dir, "layers"), filepath.Join(b.dir, "rootfs")); err != nil {
		return rep, fmt.Errorf("prune cache: %w", err)
	}
	rep.Total = time.Since(begin)
	return rep, nil
}

// ensure loads s unless the local image has its content label. prepare, if
// set, runs first when a build is needed.
func (b *builder) ensure(ctx context.Context, s Spec, prepare func() error) (Built, error) {
	begin := time.Now()
	key := s.ContentKey()
	info, err := Inspect(ctx, b.o.Runner, s.Ref)
	if err != nil {
		return Built{}, err
	}
	if info != nil && info.Content == key && !b.o.Force {
		r := Built{Ref: s.Ref, UpToDate: true, Duration: time.Since(begin), Size: info.Size, Content: key}
		b.logBuilt(r)
		return r, nil
	}
	if prepare != nil {
		if err := prepare(); err != nil {
			return Built{}, err
		}
	}
	archive := filepath.Join(b.dir, "archives", strings.NewReplacer("/", "_", ":", "_").Replace(s.Ref)+".tar")
	if err := WriteArchive(archive, filepath.Join(b.dir, "layers"), s); err != nil {
		return Built{}, err
	}
	defer os.Remove(archive)
	if err := Load(ctx, b.o.Runner, archive); err != nil {
		return Built{}, err
	}
	info, err = Inspect(ctx, b.o.Runner, s.Ref)
	if err != nil {
		return Built{}, err
	}
	if info == nil || info.Content != key {
		return Built{}, fmt.Errorf("%s: docker load did not leave an image with content %s", s.Ref, key[:12])
	}
	r := Built{Ref: s.Ref, Duration: time.Since(begin), Size: info.Size, Content: key}
	b.logBuilt(r)
	return r, nil
}

func (b *builder) logBuilt(r Built) {
	verb := "built"
	if r.UpToDate {
		verb = "up to date"
	}
	fmt.Fprintf(b.log, "%-45s %-10s %7s  %s\n", r.Ref, verb, r.Duration.Round(100*time.Millisecond), HumanSize(r.Size))
}

// preloadKey identifies the containerd store holding the component images:
// it depends on the node's containerd (its rootfs; the import runs with its
// own minimal config) and on the component images, not on cnilab's other
// node files, so editing the entrypoint does not redo the import.
func preloadKey(nodeFS LayerSource, components []Spec) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", preloadProcedure, preloadScript, nodeFS.identity())
	for _, c := range components {
		fmt.Fprintf(h, "%s=%s\x00", c.Ref, c.ContentKey())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ensureNode makes the node image: the base (rootfs + cnilab's files) with
// one more layer holding /var/lib/containerd, filled by running the base
// once and importing the component images into its containerd. Docker
// copies the image's /var into each node's /var volume, so the nodes start
// with the images already imported.
func (b *builder) ensureNode(ctx context.Context, base Spec, components []Spec) (Built, error) {
	key := preloadKey(base.Layers[0], components)
	storeTar := filepath.Join(b.dir, "layers", "preload-"+key[:16]+".tar")
	node := Spec{Ref: NodeImage, Config: nodeConfig(),
		Layers: append(append([]LayerSource(nil), base.Layers...), LayerSource{Name: "preload", Tar: storeTar, Key: key})}
	return b.ensure(ctx, node, func() error {
		if _, err := os.Stat(storeTar); err == nil && !b.o.Force {
			return nil
		}
		if _, err := b.ensure(ctx, base, nil); err != nil {
			return err
		}
		t := time.Now()
		archive := filepath.Join(b.dir, "archives", "components-"+key[:16]+".tar")
		if err := WriteArchive(archive, filepath.Join(b.dir, "layers"), components...); err != nil {
			return err
		}
		defer os.Remove(archive)
		fmt.Fprintf(b.log, "component images written in %s\n", time.Since(t).Round(100*time.Millisecond))
		return b.preload(ctx, archive, storeTar, components)
	})
}

func (b *builder) preload(ctx context.Context, archive, storeTar string, components []Spec) error {
	begin := time.Now()
	store := filepath.Join(b.dir, "preload", "store")
	if err := os.RemoveAll(store); err != nil {
		return err
	}
	if err := os.MkdirAll(store, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(store)
	name := fmt.Sprintf("cnl-images-preload-%d", os.Getpid())
	res, err := b.o.Runner.Run(ctx, command.Cmd{Name: "docker", Args: []string{
		"run", "--rm", "--name", name, "--label", "org.cnilab.role=images-preload",
		"--security-opt", "seccomp=unconfined", "--network", "none",
		"-v", store + ":/var/lib/containerd", "-v", archive + ":/preload/components.tar:ro",
		"--entrypoint", "/bin/bash", nodeBaseImage, "-c", preloadScript,
	}})
	if err != nil {
		return fmt.Errorf("preload component images: %w", err)
	}
	if missing := missingRefs(string(res.Stdout), components); len(missing) > 0 {
		return fmt.Errorf("preload: containerd lists no %s after import (it lists %q)", strings.Join(missing, ", "), strings.TrimSpace(string(res.Stdout)))
	}
	t := NewTree()
	if err := t.HostDir("var/lib/containerd", store); err != nil {
		return err
	}
	if err := t.WriteTarFile(storeTar); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "component images imported into the node's containerd in %s\n", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// missingRefs returns the components `ctr images ls -q` output does not
// name.
func missingRefs(lsOutput string, components []Spec) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(lsOutput, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var missing []string
	for _, c := range components {
		if !have[c.Ref] {
			missing = append(missing, c.Ref)
		}
	}
	return missing
}

// HumanSize prints bytes as docker does (decimal units).
func HumanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
