// Package facts holds the capability facts of a CNI (from labs/*.yaml), each
// with the source it was taken from. Ranking reads them; nothing here is
// measured.
package facts

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
