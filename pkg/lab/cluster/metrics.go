package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// metricsGroup is the resource metrics API (metrics-server).
const metricsGroup = "metrics.k8s.io"

// metricsState says why the CNI's footprint cannot come from the metrics
// API, "" when it can: the API must be served and readable.
func (p *Provider) metricsState(ctx context.Context) string {
	groups, err := p.cs.Discovery().ServerGroups()
	if err != nil {
		return "not available: API discovery failed: " + err.Error()
	}
	served := false
	for _, g := range groups.Groups {
		if g.Name == metricsGroup {
			served = true
		}
	}
	if !served {
		return "not available: no metrics API (metrics.k8s.io is not served; metrics-server provides it)"
	}
	if err := CheckAccess(ctx, p.cs, []Permission{{Verb: "list", Group: metricsGroup, Resource: "pods", Why: "the CNI's footprint"}}); err != nil {
		return "not available: " + err.Error()
	}
	return ""
}

// podMetricsList is the part of metrics.k8s.io/v1beta1 PodMetricsList
// read here.
type podMetricsList struct {
	Items []struct {
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Window     string            `json:"window"`
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// agentUsage sums the CPU (cores) and memory (bytes) of the pods whose
// names start with one of prefixes, from a PodMetricsList. A quantity
// that does not parse is an error, never a zero.
func agentUsage(raw []byte, prefixes []string) (cores, bytes float64, pods int, window string, err error) {
	var l podMetricsList
	if err := json.Unmarshal(raw, &l); err != nil {
		return 0, 0, 0, "", fmt.Errorf("PodMetricsList: %w", err)
	}
	for _, it := range l.Items {
		match := false
		for _, pre := range prefixes {
			if strings.HasPrefix(it.Metadata.Name, pre+"-") {
				match = true
			}
		}
		if !match {
			continue
		}
		pods++
		window = it.Window
		for _, c := range it.Containers {
			cpu, err := resource.ParseQuantity(c.Usage["cpu"])
			if err != nil {
				return 0, 0, 0, "", fmt.Errorf("pod %s container %s cpu %q: %w", it.Metadata.Name, c.Name, c.Usage["cpu"], err)
			}
			mem, err := resource.ParseQuantity(c.Usage["memory"])
			if err != nil {
				return 0, 0, 0, "", fmt.Errorf("pod %s container %s memory %q: %w", it.Metadata.Name, c.Name, c.Usage["memory"], err)
			}
			cores += cpu.AsApproximateFloat64()
			bytes += mem.AsApproximateFloat64()
		}
	}
	if pods == 0 {
		return 0, 0, 0, "", errors.New("no pod of the CNI in the metrics API's answer")
	}
	return cores, bytes, pods, window, nil
}

// metricsSnapshot reads the CNI agents' usage from the metrics API once.
func (p *Provider) metricsSnapshot(ctx context.Context, d *Detection) (string, error) {
	var cores, mem float64
	var pods int
	var window string
	for _, c := range d.Components {
		if c.Name == "kube-proxy" {
			continue
		}
		raw, err := p.cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/" + c.Namespace + "/pods").DoRaw(ctx)
		if err != nil {
			return "", err
		}
		cc, mm, n, w, err := agentUsage(raw, []string{c.Name})
		if err != nil {
			return "", fmt.Errorf("%s %s/%s: %w", c.Kind, c.Namespace, c.Name, err)
		}
		cores, mem, pods, window = cores+cc, mem+mm, pods+n, w
	}
	return fmt.Sprintf("CNI footprint at lab up, source metrics.k8s.io (metrics-server's own window %s): %.0f mCPU, %.1f MiB over %d pods", window, cores*1000, mem/(1<<20), pods), nil
}
