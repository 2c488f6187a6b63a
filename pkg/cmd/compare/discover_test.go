package compare

import (
	"slices"
	"testing"
)

// TestLabsOfNamespaces: `compare --run ID` finds the run's labs by their
// first node's namespace; pods, other nodes, services-scale's topology and
// other runs' labs are not labs of it.
func TestLabsOfNamespaces(t *testing.T) {
	names := []string{
		"cnl-abc123-flannel-n1", "cnl-abc123-flannel-n1-p2", "cnl-abc123-flannel-n2", "cnl-abc123-flannel-fabric",
		"cnl-abc123-host-n1", "cnl-abc123-host-n2", "cnl-abc123-kube-router-n1",
		"cnl-abc123-ss-client", "cnl-abc123-ss-server", "cnl-fff000-cilium-n1", "cnl-abc1234-calico-n1",
	}
	got := labsOfNamespaces("abc123", names)
	if want := []string{"host", "flannel", "kube-router"}; !slices.Equal(got, want) {
		t.Errorf("labs %v, want %v", got, want)
	}
}
