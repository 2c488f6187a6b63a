// Package helm installs and renders Helm charts with the Helm v3 SDK (no
// helm binary): the CNIs' upstream charts and cnilab's own bench chart.
// Charts come from a directory (a Go module in the module cache, for
// offline installs), from files embedded in cnilab, or from a chart
// repository.
package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/postrender"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/cnilab/cnilab/pkg/command"
)

// Chart is a loaded chart.
type Chart = chart.Chart

// LoadDir loads an unpacked chart directory.
func LoadDir(dir string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return ch, nil
}

// LoadFS loads the chart rooted at dir in fsys (a chart embedded in the
// binary).
func LoadFS(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		files = append(files, &loader.BufferedFile{Name: path.Clean(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart %s: %w", dir, err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return ch, nil
}

// moduleDownload is the part of `go mod download -json` output we read.
type moduleDownload struct {
	Path, Version, Dir, Error string
}

// ModuleChartDir returns the directory of the chart at chartDir inside Go
// module mod@version, fetching the module into the module cache (through
// the Go module proxy) if it is not there yet. This is how upstream charts
// reach an offline machine: the CNI's module carries its chart.
func ModuleChartDir(ctx context.Context, r command.Runner, mod, version, chartDir string) (string, error) {
	res, err := r.Run(ctx, command.Cmd{Name: "go", Args: []string{"mod", "download", "-json", mod + "@" + version}})
	var d moduleDownload
	if jerr := json.Unmarshal(res.Stdout, &d); jerr != nil {
		if err != nil {
			return "", fmt.Errorf("download module %s@%s: %w", mod, version, err)
		}
		return "", fmt.Errorf("go mod download %s@%s: unreadable output: %w", mod, version, jerr)
	}
	if d.Error != "" {
		return "", fmt.Errorf("download module %s@%s: %s", mod, version, d.Error)
	}
	if err != nil {
		return "", fmt.Errorf("download module %s@%s: %w", mod, version, err)
	}
	if d.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s named no directory", mod, version)
	}
	return filepath.Join(d.Dir, filepath.FromSlash(chartDir)), nil
}

// Release is one install of a chart.
type Release struct {
	Name, Namespace string
	Values          map[string]any
	// PullNever sets imagePullPolicy: Never on every container the chart
	// renders (offline images are preloaded on the nodes; a pull could
	// only fail), through a post-renderer, since charts rarely expose it.
	PullNever bool
}

func (r Release) postRenderer() postrender.PostRenderer {
	if r.PullNever {
		return PullPolicy("Never")
	}
	return nil
}

// Render renders ch offline, as `helm template` does, for Kubernetes
// kubeVersion (the SDK would otherwise claim v1.20): no cluster is needed.
// It returns the manifests, post-rendered.
func Render(ch *chart.Chart, rel Release, kubeVersion string) (string, error) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", err
	}
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.DryRun, in.DryRunOption, in.ClientOnly, in.Replace = true, "client", true, true
	in.IncludeCRDs = true
	in.ReleaseName, in.Namespace = rel.Name, rel.Namespace
	in.KubeVersion = kv
	in.PostRenderer = rel.postRenderer()
	out, err := in.Run(ch, copyValues(rel.Values))
	if err != nil {
		return "", fmt.Errorf("render %s: %w", ch.Name(), err)
	}
	return out.Manifest, nil
}

// Client installs releases into one cluster.
type Client struct {
	// Kubeconfig is the cluster's kubeconfig file (never the user's).
	Kubeconfig string
	// Context selects a context of Kubeconfig ("" its current one).
	Context string
	// Storage is Helm's release storage driver: "secret" (default) or
	// "memory", which writes no release Secret into the cluster (an
	// existing cluster: cnilab creates only the chart's objects and needs
	// no right on Secrets).
	Storage string
	// CacheDir keeps downloaded chart repository indexes and charts (the
	// run directory), so nothing lands in the user's Helm cache.
	CacheDir string
	// Log receives Helm's debug lines; nil drops them.
	Log func(format string, args ...any)
}

func (c Client) settings() *cli.EnvSettings {
	s := cli.New()
	s.KubeConfig = c.Kubeconfig
	if c.CacheDir != "" {
		s.RepositoryCache = filepath.Join(c.CacheDir, "helm", "repository")
		s.RepositoryConfig = filepath.Join(c.CacheDir, "helm", "repositories.yaml")
	}
	return s
}

func (c Client) config(namespace string) (*action.Configuration, error) {
	logf := c.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	flags := genericclioptions.NewConfigFlags(false)
	kc, ns, kctx := c.Kubeconfig, namespace, c.Context
	flags.KubeConfig, flags.Namespace, flags.Context = &kc, &ns, &kctx
	storage := c.Storage
	if storage == "" {
		storage = "secret"
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, storage, logf); err != nil {
		return nil, fmt.Errorf("helm client for %s: %w", c.Kubeconfig, err)
	}
	return cfg, nil
}

// PullRepo downloads chart name at version from the chart repository
// repoURL (users' machines, --images upstream) and loads it.
func (c Client) PullRepo(repoURL, name, version string) (*chart.Chart, error) {
	cfg, err := c.config("default")
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.RepoURL, in.Version = repoURL, version
	p, err := in.LocateChart(name, c.settings())
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s: %w", name, version, repoURL, err)
	}
	return loader.Load(p)
}

// Install installs ch as rel and returns when the API server has accepted
// every object. It does not wait for readiness: Helm's wait counts a
// DaemonSet ready with maxUnavailable pods missing, so callers check
// readiness themselves. The namespace must exist.
func (c Client) Install(ctx context.Context, ch *chart.Chart, rel Release, timeout time.Duration) error {
	cfg, err := c.config(rel.Namespace)
	if err != nil {
		return err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.Timeout = rel.Name, rel.Namespace, timeout
	in.PostRenderer = rel.postRenderer()
	if _, err := in.RunWithContext(ctx, ch, copyValues(rel.Values)); err != nil {
		return fmt.Errorf("helm install %s (%s %s): %w", rel.Name, ch.Name(), ch.Metadata.Version, err)
	}
	return nil
}

// copyValues deep-copies values so Helm's coalescing never writes into a
// lab definition shared by concurrent installs.
func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	return deepCopy(v).(map[string]any)
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

// WithImage returns a copy of values with <valuePath>.repository and
// <valuePath>.tag set from image ("cnilab/flannel:v0.28.10"), creating the
// maps on the way.
func WithImage(values map[string]any, valuePath, image string) (map[string]any, error) {
	repo, tag, ok := SplitImage(image)
	if !ok {
		return nil, fmt.Errorf("image %q has no tag (offline images are pinned, never :latest by default)", image)
	}
	out := copyValues(values)
	m := out
	for _, k := range strings.Split(valuePath, ".") {
		next, ok := m[k].(map[string]any)
		if !ok {
			if m[k] != nil {
				return nil, fmt.Errorf("values %s: %s is not a map", valuePath, k)
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m["repository"], m["tag"] = repo, tag
	return out, nil
}

// SplitImage splits "host:5000/a/b:tag" into repository and tag; the tag
// is what follows the last ':' after the last '/'.
func SplitImage(image string) (repo, tag string, ok bool) {
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash || colon == len(image)-1 {
		return "", "", false
	}
	return image[:colon], image[colon+1:], true
}

// PullPolicy is a post-renderer that sets imagePullPolicy on every
// container and init container of every workload in the manifests.
type PullPolicy string

// Run implements postrender.PostRenderer.
func (p PullPolicy) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	docs, err := splitDocs(in.String())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			return nil, fmt.Errorf("post-render: %w", err)
		}
		if obj == nil {
			continue
		}
		for _, spec := range podSpecs(obj) {
			for _, key := range []string{"containers", "initContainers"} {
				cs, _ := spec[key].([]any)
				for _, c := range cs {
					if cm, ok := c.(map[string]any); ok {
						cm["imagePullPolicy"] = string(p)
					}
				}
			}
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return &out, nil
}

// podSpecs finds the pod specs of a Pod, of workloads with a pod template
// (Deployment, DaemonSet, StatefulSet, ReplicaSet, Job) and of CronJobs.
func podSpecs(obj map[string]any) []map[string]any {
	get := func(m map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			next, ok := m[k].(map[string]any)
			if !ok {
				return nil
			}
			m = next
		}
		return m
	}
	var specs []map[string]any
	if obj["kind"] == "Pod" {
		if s := get(obj, "spec"); s != nil {
			specs = append(specs, s)
		}
	}
	if s := get(obj, "spec", "template", "spec"); s != nil {
		specs = append(specs, s)
	}
	if s := get(obj, "spec", "jobTemplate", "spec", "template", "spec"); s != nil {
		specs = append(specs, s)
	}
	return specs
}

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(s string) ([]string, error) {
	var docs []string
	var cur strings.Builder
	flush := func() {
		if strings.TrimSpace(stripComments(cur.String())) != "" {
			docs = append(docs, cur.String())
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	if len(docs) == 0 && strings.TrimSpace(s) != "" {
		return nil, errors.New("post-render: no YAML documents")
	}
	return docs, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Docs splits rendered manifests into objects, for tests and checks.
func Docs(manifest string) ([]map[string]any, error) {
	docs, err := splitDocs(manifest)
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			return nil, err
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
	return objs, nil
}
