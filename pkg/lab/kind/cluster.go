package kind

import (
	"fmt"
	"regexp"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/cnilab/cnilab/pkg/config"
)

// NamePrefix starts the name of every kind cluster cnilab creates, so
// List and DownAll find them (and leave other kind clusters alone).
const NamePrefix = "cnl-"

// maxClusterName keeps node names valid: kind names node containers
// <cluster>-control-plane (14 more characters) and uses them as hostnames
// and Kubernetes node names, which are DNS labels of at most 63.
const maxClusterName = 63 - len("-control-plane")

var clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ClusterName is the kind cluster of one lab in one run: cnl-<run>-<lab>.
// kind itself accepts [a-z0-9.-]; dots and over-long names would make
// invalid hostnames, so they are refused here.
func ClusterName(runID, lab string) (string, error) {
	name := NamePrefix + runID + "-" + lab
	if !clusterNameRE.MatchString(name) {
		return "", fmt.Errorf("cluster name %q: only lower-case letters, digits and '-' make a valid node hostname", name)
	}
	if len(name) > maxClusterName {
		return "", fmt.Errorf("cluster name %q is %d characters; kind's node names (<name>-control-plane) need it at most %d", name, len(name), maxClusterName)
	}
	return name, nil
}

// Topology: one control plane (the only shape kind can build offline:
// several control planes need its load-balancer image) and two workers, so
// cross-node pairs run worker to worker and never share the control
// plane's node.
const workers = 2

// ClusterConfig is the v1alpha4 cluster for a lab's kind section, every
// node on nodeImage (kind never pulls an image that is present locally).
// The default CNI is always disabled: the lab installs the real one.
func ClusterConfig(k *config.KindLab, nodeImage string) *v1alpha4.Cluster {
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:    []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: nodeImage}},
		Networking: v1alpha4.Networking{
			IPFamily:          v1alpha4.IPv4Family,
			PodSubnet:         k.PodSubnet,
			ServiceSubnet:     k.ServiceSubnet,
			DisableDefaultCNI: true,
			// "none" has no exported constant; kind accepts it and has
			// kubeadm skip the kube-proxy addon.
			KubeProxyMode: v1alpha4.ProxyMode(k.KindMode()),
		},
	}
	for range workers {
		c.Nodes = append(c.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: nodeImage})
	}
	return c
}
