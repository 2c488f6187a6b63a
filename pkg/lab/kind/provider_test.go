package kind

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/scenarios"
)

// TestUpUnavailable: labs that cannot run here say why, before any
// cluster is made.
func TestUpUnavailable(t *testing.T) {
	withKind := &config.Lab{Name: "flannel", CNI: "flannel", File: "labs/flannel.yaml",
		Kind: &config.KindLab{CNI: config.KindCNI{Module: "github.com/flannel-io/flannel", OfflineImageValues: []string{"flannel.image"}}}}
	cases := []struct {
		name    string
		def     *config.Lab
		inspect command.FakeResponse
		want    string
	}{
		{"no kind recipe", &config.Lab{Name: "weave", File: "labs/weave.yaml"}, command.FakeResponse{}, "lab weave has no kind recipe (no kind: section in labs/weave.yaml)"},
		{"images not built", withKind, command.FakeResponse{Stderr: "Error: No such image", Err: errors.New("exit status 1")},
			"kind images not built: run `cnilab images build` (missing cnilab/kind-node:v1.34.4, cnilab/flannel:v0.28.10, cnilab/bench:probe-v2)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &command.Fake{Responses: map[string]command.FakeResponse{"docker": tc.inspect}}
			p := &Provider{Images: ImagesFrom(images.Offline()), Runner: f}
			_, err := p.Up(context.Background(), lab.Spec{Def: tc.def, RunID: "r1", Dir: t.TempDir()})
			if !lab.IsUnavailable(err) || err.Error() != tc.want {
				t.Errorf("Up = %v (unavailable %v), want unavailable %q", err, lab.IsUnavailable(err), tc.want)
			}
			for _, c := range f.Calls {
				if c.Name != "docker" || c.Args[0] != "image" {
					t.Errorf("Up ran %s before deciding the lab cannot run", c)
				}
			}
		})
	}
	p := &Provider{Images: ImagesFrom(images.Offline()), Runner: &command.Fake{}}
	if _, err := p.Up(context.Background(), lab.Spec{Def: withKind, RunID: "R1", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "only lower-case") {
		t.Errorf("bad run id: %v", err)
	}
	if _, err := p.Up(context.Background(), lab.Spec{Def: withKind, RunID: "r1"}); err == nil || !strings.Contains(err.Error(), "run directory") {
		t.Errorf("no run dir: %v", err)
	}
}

// TestNoImageSource: offline, a CNI with no offline chart or no offline
// image is "not reproducible here" before anything runs: no docker call,
// no kind call (the provider has no kind client, so creating a cluster
// would panic), nothing in the run directory.
func TestNoImageSource(t *testing.T) {
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	noImage := *set.Labs["kube-router"]
	noImage.CNI = "kube-router-fork"
	cases := []struct {
		def  *config.Lab
		want string
	}{
		{set.Labs["calico"], "not reproducible here: no image source for calico (no registry, sources not served)"},
		{set.Labs["canal"], "not reproducible here: no image source for canal (no registry, sources not served)"},
		{set.Labs["antrea"], "not reproducible here: no image source for antrea (no registry, sources not served)"},
		{set.Labs["weave"], "not reproducible here: no image source for weave (no registry, sources not served)"},
		{&noImage, "not reproducible here: no image source for kube-router-fork (no registry, no offline image for it in the image set)"},
	}
	for _, tc := range cases {
		t.Run(tc.def.Name+"/"+tc.def.CNI, func(t *testing.T) {
			f := &command.Fake{}
			dir := t.TempDir()
			p := &Provider{Images: ImagesFrom(images.Offline()), Runner: f}
			in, err := p.Up(context.Background(), lab.Spec{Def: tc.def, RunID: "r1", Dir: dir})
			if in != nil || !lab.IsUnavailable(err) || err.Error() != tc.want {
				t.Errorf("Up = %v, %v (unavailable %v), want unavailable %q", in, err, lab.IsUnavailable(err), tc.want)
			}
			if len(f.Calls) > 0 {
				t.Errorf("Up ran %v before deciding the lab cannot run", f.Calls)
			}
			if files, _ := os.ReadDir(dir); len(files) > 0 {
				t.Errorf("Up left %v in the run directory", files)
			}
		})
	}
	// Upstream, the nodes pull the CNI's images: calico is not refused
	// for want of an image source.
	p := &Provider{Images: ImagesFrom(images.Upstream())}
	if why := p.noImageSource(set.Labs["calico"]); why != "" {
		t.Errorf("upstream calico: %q", why)
	}
	p.Images = ImagesFrom(images.Offline())
	for _, name := range []string{"flannel", "kube-router"} {
		if why := p.noImageSource(set.Labs[name]); why != "" {
			t.Errorf("offline %s: %q", name, why)
		}
	}
}

func TestImagesLoaded(t *testing.T) {
	flannel := &config.Lab{CNI: "flannel", Kind: &config.KindLab{CNI: config.KindCNI{OfflineImageValues: []string{"flannel.image"}}}}
	kubeRouter := &config.Lab{CNI: "kube-router", Kind: &config.KindLab{CNI: config.KindCNI{OfflineImageValues: []string{"image"}}}}
	cilium := &config.Lab{CNI: "cilium", Kind: &config.KindLab{CNI: config.KindCNI{OfflineImages: map[string]string{
		"operator.image.override": "cnilab/cilium-operator-generic:v1.20.2", "image.override": "cnilab/cilium:v1.20.2"}}}}
	off, up := ImagesFrom(images.Offline()), ImagesFrom(images.Upstream())
	tests := []struct {
		name string
		im   Images
		def  *config.Lab
		want string
	}{
		{"offline flannel", off, flannel, "cnilab/flannel:v0.28.10 cnilab/bench:probe-v2"},
		{"offline kube-router", off, kubeRouter, "cnilab/kube-router:v2.1.0 cnilab/bench:probe-v2"},
		// The recipe's own images, in value-path order.
		{"offline cilium", off, cilium, "cnilab/cilium:v1.20.2 cnilab/cilium-operator-generic:v1.20.2 cnilab/bench:probe-v2"},
		// Upstream, the nodes pull the CNI's images.
		{"upstream flannel", up, flannel, "cnilab/bench:probe-v2"},
		{"upstream cilium", up, cilium, "cnilab/bench:probe-v2"},
	}
	for _, tc := range tests {
		if got := strings.Join(tc.im.loaded(tc.def), " "); got != tc.want {
			t.Errorf("%s loads %q, want %q", tc.name, got, tc.want)
		}
	}
}
