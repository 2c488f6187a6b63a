package compare

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
)

// countingProvider brings labs "up" after a delay and records what it
// did; a lab named in fail fails.
type countingProvider struct {
	mu       sync.Mutex
	ups, dns []string
	fail     string
}

func (p *countingProvider) Name() string { return "fake" }
func (p *countingProvider) Up(ctx context.Context, s lab.Spec) (*lab.Instance, error) {
	time.Sleep(20 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ups = append(p.ups, s.Def.Name)
	if s.Def.Name == p.fail {
		return nil, errors.New("no room")
	}
	return &lab.Instance{Name: s.Def.Name, UpSteps: &results.UpSteps{CreateSeconds: 0.01}}, nil
}
func (p *countingProvider) Down(_ context.Context, in *lab.Instance) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dns = append(p.dns, in.Name)
	return nil
}
func (p *countingProvider) List(context.Context) ([]string, error)    { return nil, nil }
func (p *countingProvider) DownAll(context.Context) ([]string, error) { return nil, nil }

func TestProvisionAlone(t *testing.T) {
	specs := []lab.Spec{{Def: &config.Lab{Name: "a"}}, {Def: &config.Lab{Name: "b"}}}
	var log strings.Builder
	p := &countingProvider{}
	solo, err := provisionAlone(context.Background(), p, specs, "b", &log)
	if err != nil {
		t.Fatal(err)
	}
	if solo.Lab != "b" || solo.UpSeconds < 0.02 || solo.Error != "" || solo.UpSteps == nil {
		t.Errorf("solo %+v", solo)
	}
	if strings.Join(p.ups, ",") != "b" || strings.Join(p.dns, ",") != "b" {
		t.Errorf("up %v down %v: want b alone, brought up and removed", p.ups, p.dns)
	}
	// A failed solo lab is recorded, the run goes on, there is no ratio.
	f := &countingProvider{fail: "a"}
	solo, err = provisionAlone(context.Background(), f, specs, "a", &log)
	if err != nil || solo.Error == "" || len(f.dns) != 0 {
		t.Errorf("failed solo: %+v, %v, downs %v", solo, err, f.dns)
	}
	if r := (results.Provisioning{WallSeconds: 10, Solo: solo}).Ratio(); r != 0 {
		t.Errorf("ratio %v against a failed solo lab", r)
	}
	if r := (results.Provisioning{WallSeconds: 15, Solo: &results.SoloUp{UpSeconds: 10}}).Ratio(); r != 1.5 {
		t.Errorf("ratio %v, want 1.5", r)
	}
}

func TestValidateSoloBaseline(t *testing.T) {
	set := &config.Set{Labs: map[string]*config.Lab{"flannel": {Name: "flannel"}, "cilium": {Name: "cilium"}}, Scenarios: map[string]*config.Scenario{}}
	for _, tc := range []struct {
		solo, runID, want string
	}{
		{"flannel", "", ""},
		{"calico", "", "not one of the compared labs"},
		{"flannel", "abc123", "already up"},
	} {
		o := Options{Set: set, Labs: []string{"flannel", "cilium"}, SoloBaseline: tc.solo, RunID: tc.runID}
		err := o.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("solo %q run %q: %v, want %q", tc.solo, tc.runID, err, tc.want)
		}
	}
}
