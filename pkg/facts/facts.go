// Package facts holds the capability facts of a CNI (from labs/*.yaml), each
// with the source it was taken from. Ranking reads them; nothing here is
// measured.
package facts

import (
	"strconv"
	"strings"
)

// Fact is one capability statement with its source.
type Fact struct {
	// Value is the fact: "yes", "no", "partial", or a short value.
	Value  string `yaml:"value" json:"value"`
	Source string `yaml:"source" json:"source"`
	Note   string `yaml:"note,omitempty" json:"note,omitempty"`
}

// Capabilities are the facts the ranking understands. A missing fact is
// unknown, which is not the same as "no".
type Capabilities struct {
	NetworkPolicy        *Fact `yaml:"network_policy,omitempty" json:"network_policy,omitempty"`
	L7Policy             *Fact `yaml:"l7_policy,omitempty" json:"l7_policy,omitempty"`
	EncryptionWireGuard  *Fact `yaml:"encryption_wireguard,omitempty" json:"encryption_wireguard,omitempty"`
	EncryptionIPsec      *Fact `yaml:"encryption_ipsec,omitempty" json:"encryption_ipsec,omitempty"`
	KubeProxyReplacement *Fact `yaml:"kube_proxy_replacement,omitempty" json:"kube_proxy_replacement,omitempty"`
	Observability        *Fact `yaml:"observability,omitempty" json:"observability,omitempty"`
	TroubleshootingCLI   *Fact `yaml:"troubleshooting_cli,omitempty" json:"troubleshooting_cli,omitempty"`
	BGP                  *Fact `yaml:"bgp,omitempty" json:"bgp,omitempty"`
	Architectures        *Fact `yaml:"architectures,omitempty" json:"architectures,omitempty"`
	Maintained           *Fact `yaml:"maintained,omitempty" json:"maintained,omitempty"`
	InstallObjects       *Fact `yaml:"install_objects,omitempty" json:"install_objects,omitempty"`
	InstallSteps         *Fact `yaml:"install_steps,omitempty" json:"install_steps,omitempty"`
}

// Names lists the facts the ranking understands, in display order.
var Names = []string{
	"network_policy", "l7_policy", "encryption_wireguard", "encryption_ipsec",
	"kube_proxy_replacement", "observability", "troubleshooting_cli", "bgp",
	"architectures", "maintained", "install_objects", "install_steps",
}

// field returns the slot of a fact by its YAML name, or nil if unknown.
func (c *Capabilities) field(name string) **Fact {
	switch name {
	case "network_policy":
		return &c.NetworkPolicy
	case "l7_policy":
		return &c.L7Policy
	case "encryption_wireguard":
		return &c.EncryptionWireGuard
	case "encryption_ipsec":
		return &c.EncryptionIPsec
	case "kube_proxy_replacement":
		return &c.KubeProxyReplacement
	case "observability":
		return &c.Observability
	case "troubleshooting_cli":
		return &c.TroubleshootingCLI
	case "bgp":
		return &c.BGP
	case "architectures":
		return &c.Architectures
	case "maintained":
		return &c.Maintained
	case "install_objects":
		return &c.InstallObjects
	case "install_steps":
		return &c.InstallSteps
	}
	return nil
}

// Known reports whether name is a fact the ranking understands.
func Known(name string) bool { return (&Capabilities{}).field(name) != nil }

// Get returns a fact by name; nil means unknown (or not a fact name).
func (c *Capabilities) Get(name string) *Fact {
	if p := c.field(name); p != nil {
		return *p
	}
	return nil
}

// Set stores a fact by name; it reports false for an unknown name.
func (c *Capabilities) Set(name string, f *Fact) bool {
	p := c.field(name)
	if p == nil {
		return false
	}
	*p = f
	return true
}

// Empty reports whether no fact is known.
func (c *Capabilities) Empty() bool {
	for _, n := range Names {
		if c.Get(n) != nil {
			return false
		}
	}
	return true
}

// List returns the fact's value as a list ("amd64, arm64" -> [amd64 arm64]).
func (f *Fact) List() []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, s := range strings.Split(f.Value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Number returns the fact's value as a number (install_objects: "3").
func (f *Fact) Number() (float64, bool) {
	if f == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(f.Value), 64)
	return v, err == nil
}
