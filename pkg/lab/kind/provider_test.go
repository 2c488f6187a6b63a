package kind

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab"
)

// TestUpUnavailable: labs that cannot run here say why, before any
// cluster is made.
func TestUpUnavailable(t *testing.T) {
	withKind := &config.Lab{Name: "flannel", File: "labs/flannel.yaml", Kind: &config.KindLab{CNI: config.KindCNI{OfflineImageValues: []string{"flannel.image"}}}}
	cases := []struct {
		name    string
		def     *config.Lab
		inspect command.FakeResponse
		want    string
	}{
		{"no kind recipe", &config.Lab{Name: "weave", File: "labs/weave.yaml"}, command.FakeResponse{}, "lab weave has no kind recipe (no kind: section in labs/weave.yaml)"},
		{"images not built", withKind, command.FakeResponse{Stderr: "Error: No such image", Err: errors.New("exit status 1")},
			"kind images not built: run `cnilab images build` (missing cnilab/kind-node:v1.34.4, cnilab/flannel:v0.28.10, cnilab/bench:probe-v1)"},
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

func TestImagesLoaded(t *testing.T) {
	flannel := &config.KindLab{CNI: config.KindCNI{OfflineImageValues: []string{"flannel.image"}}}
	cilium := &config.KindLab{CNI: config.KindCNI{OfflineImages: map[string]string{
		"operator.image.override": "cnilab/cilium-operator-generic:v1.20.2", "image.override": "cnilab/cilium:v1.20.2"}}}
	off, up := ImagesFrom(images.Offline()), ImagesFrom(images.Upstream())
	tests := []struct {
		name string
		im   Images
		k    *config.KindLab
		want string
	}{
		{"offline flannel", off, flannel, "cnilab/flannel:v0.28.10 cnilab/bench:probe-v1"},
		// The recipe's own images, in value-path order; not the flannel image.
		{"offline cilium", off, cilium, "cnilab/cilium:v1.20.2 cnilab/cilium-operator-generic:v1.20.2 cnilab/bench:probe-v1"},
		// Upstream, the nodes pull the CNI's images.
		{"upstream flannel", up, flannel, "cnilab/bench:probe-v1"},
		{"upstream cilium", up, cilium, "cnilab/bench:probe-v1"},
	}
	for _, tc := range tests {
		if got := strings.Join(tc.im.loaded(tc.k), " "); got != tc.want {
			t.Errorf("%s loads %q, want %q", tc.name, got, tc.want)
		}
	}
}
