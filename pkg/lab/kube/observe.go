package kube

import (
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// KubeProxyMode reads the mode from kube-proxy's configuration (the
// kube-system/kube-proxy ConfigMap's config.conf); kube-proxy's default on
// Linux is iptables.
func KubeProxyMode(configConf string) (string, error) {
	var c struct {
		Kind string `json:"kind"`
		Mode string `json:"mode"`
	}
	if err := yaml.Unmarshal([]byte(configConf), &c); err != nil {
		return "", fmt.Errorf("kube-proxy config: %w", err)
	}
	if c.Kind != "KubeProxyConfiguration" {
		return "", fmt.Errorf("kube-proxy config is a %q, not a KubeProxyConfiguration", c.Kind)
	}
	if c.Mode == "" {
		return "iptables", nil
	}
	return c.Mode, nil
}

// ParseMTU reads /sys/class/net/<if>/mtu.
func ParseMTU(out string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n < 68 || n > 65535 {
		return 0, fmt.Errorf("MTU %q is not a number in 68..65535", strings.TrimSpace(out))
	}
	return n, nil
}
