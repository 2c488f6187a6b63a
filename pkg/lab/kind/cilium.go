package kind

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
)

// CiliumStatus is what cnilab reads from `cilium-dbg status -o json` (the
// agent API's StatusResponse, api/v1/models in the cilium module): the
// agent's own health and its kube-proxy replacement.
type CiliumStatus struct {
	Cilium *struct {
		State string `json:"state"`
		Msg   string `json:"msg"`
	} `json:"cilium"`
	Kubernetes *struct {
		State string `json:"state"`
		Msg   string `json:"msg"`
	} `json:"kubernetes"`
	KubeProxyReplacement *CiliumKPR `json:"kube-proxy-replacement"`
	AttachMode           string     `json:"attach-mode"`
	DatapathMode         string     `json:"datapath-mode"`
	Routing              *struct {
		IntraHost      string `json:"intra-host-routing-mode"`
		InterHost      string `json:"inter-host-routing-mode"`
		TunnelProtocol string `json:"tunnel-protocol"`
	} `json:"routing"`
	Masquerading *struct {
		Enabled bool   `json:"enabled"`
		Mode    string `json:"mode"`
	} `json:"masquerading"`
}

// CiliumKPR is the agent's kube-proxy replacement status.
type CiliumKPR struct {
	// Mode is "True" or "False" (the enum in the agent's API).
	Mode     string   `json:"mode"`
	Devices  []string `json:"devices"`
	Features struct {
		SocketLB *struct {
			Enabled bool `json:"enabled"`
		} `json:"socketLB"`
		BpfSocketLBHostnsOnly bool `json:"bpfSocketLBHostnsOnly"`
		NodePort              *struct {
			Enabled      bool   `json:"enabled"`
			Mode         string `json:"mode"`
			Acceleration string `json:"acceleration"`
			Algorithm    string `json:"algorithm"`
		} `json:"nodePort"`
		HostPort *struct {
			Enabled bool `json:"enabled"`
		} `json:"hostPort"`
		ExternalIPs *struct {
			Enabled bool `json:"enabled"`
		} `json:"externalIPs"`
		SessionAffinity *struct {
			Enabled bool `json:"enabled"`
		} `json:"sessionAffinity"`
		HostReachableServices *struct {
			Enabled   bool     `json:"enabled"`
			Protocols []string `json:"protocols"`
		} `json:"hostReachableServices"`
	} `json:"features"`
}

// ParseCiliumStatus decodes `cilium-dbg status -o json`. Output that is not
// a status object (no cilium section) is an error, never an empty status.
func ParseCiliumStatus(out []byte) (CiliumStatus, error) {
	var s CiliumStatus
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("cilium status: not JSON: %w (output %.200q)", err, out)
	}
	if s.Cilium == nil {
		return s, fmt.Errorf("cilium status: no cilium section in %.200q", out)
	}
	return s, nil
}

// KubeProxyReplacementActive says why the agent is not (yet) serving
// Services in place of kube-proxy, or nil when it is: the agent is Ok, its
// kube-proxy replacement mode is True and its NodePort (the eBPF service
// load balancer) is enabled.
func (s CiliumStatus) KubeProxyReplacementActive() error {
	if s.Cilium.State != "Ok" {
		return fmt.Errorf("cilium agent state %s: %s", s.Cilium.State, s.Cilium.Msg)
	}
	k := s.KubeProxyReplacement
	switch {
	case k == nil:
		return errors.New("cilium status has no kube-proxy-replacement section")
	case k.Mode != "True":
		return fmt.Errorf("cilium kube-proxy replacement mode is %q, not True", k.Mode)
	case k.Features.NodePort == nil || !k.Features.NodePort.Enabled:
		return errors.New("cilium kube-proxy replacement is True but its NodePort (eBPF service LB) is not enabled")
	}
	return nil
}

// SocketLB reports whether connect()-time (socket-level) load balancing is
// on, and whether it is limited to the host network namespace.
func (s CiliumStatus) SocketLB() (on, hostnsOnly bool) {
	k := s.KubeProxyReplacement
	if k == nil || k.Features.SocketLB == nil {
		return false, false
	}
	return k.Features.SocketLB.Enabled, k.Features.BpfSocketLBHostnsOnly
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Summary is one line of what the agent reports about its service datapath.
func (s CiliumStatus) Summary() string {
	var parts []string
	if k := s.KubeProxyReplacement; k != nil {
		parts = append(parts, "KubeProxyReplacement "+k.Mode)
		if len(k.Devices) > 0 {
			parts[0] += " [" + strings.Join(k.Devices, ", ") + "]"
		}
		on, hostns := s.SocketLB()
		sock := "socket LB " + onOff(on)
		if on && hostns {
			sock += " (host netns only)"
		}
		parts = append(parts, sock)
		f := k.Features
		if np := f.NodePort; np != nil {
			d := "NodePort " + onOff(np.Enabled)
			if np.Enabled {
				d += fmt.Sprintf(" (%s, acceleration %s, algorithm %s)", np.Mode, np.Acceleration, np.Algorithm)
			}
			parts = append(parts, d)
		}
		for _, feat := range []struct {
			name string
			on   *bool
		}{
			{"HostPort", boolOf(f.HostPort != nil, func() bool { return f.HostPort.Enabled })},
			{"ExternalIPs", boolOf(f.ExternalIPs != nil, func() bool { return f.ExternalIPs.Enabled })},
			{"session affinity", boolOf(f.SessionAffinity != nil, func() bool { return f.SessionAffinity.Enabled })},
		} {
			if feat.on != nil {
				parts = append(parts, feat.name+" "+onOff(*feat.on))
			}
		}
		if h := f.HostReachableServices; h != nil {
			d := "host-reachable services " + onOff(h.Enabled)
			if h.Enabled && len(h.Protocols) > 0 {
				d += " (" + strings.Join(h.Protocols, ", ") + ")"
			}
			parts = append(parts, d)
		}
	}
	if s.AttachMode != "" {
		parts = append(parts, "attach mode "+s.AttachMode)
	}
	if r := s.Routing; r != nil {
		d := "routing " + r.InterHost
		if r.TunnelProtocol != "" && r.InterHost == "tunnel" {
			d += " " + r.TunnelProtocol
		}
		parts = append(parts, d)
	}
	if m := s.Masquerading; m != nil && m.Enabled {
		parts = append(parts, "masquerading "+m.Mode)
	}
	return strings.Join(parts, ", ")
}

func boolOf(present bool, get func() bool) *bool {
	if !present {
		return nil
	}
	v := get()
	return &v
}

// readyChecks implement config.ReadyChecks: each reads a ready_exec's
// output and returns a one-line description, or why the agent is not ready.
var readyChecks = map[string]func(out []byte) (string, error){
	"cilium-kube-proxy-replacement": func(out []byte) (string, error) {
		s, err := ParseCiliumStatus(out)
		if err != nil {
			return "", err
		}
		if err := s.KubeProxyReplacementActive(); err != nil {
			return "", err
		}
		return s.Summary(), nil
	},
}

// observeAgents records what the agents said at readiness: one note per
// agent, and, when they all agree, the summary beside the datapath.
func observeAgents(in *lab.Instance, k *config.KindLab, agents []AgentStatus) {
	var first string
	same := true
	for i, a := range agents {
		if a.Summary == "" {
			continue
		}
		in.Notes = append(in.Notes, fmt.Sprintf("%s agent %s on %s: %s", k.CNI.Chart, a.Pod, a.Node, a.Summary))
		if i == 0 {
			first = a.Summary
		} else if a.Summary != first {
			same = false
		}
	}
	if first != "" && same {
		in.Datapath += "; " + first
	}
}

// ServiceTranslation is where a connect() to a ClusterIP was translated,
// judged from the socket's kernel peer address (`ss -tn`, which reads
// sock_diag: Cilium's getpeername hook does not rewrite it).
type ServiceTranslation string

const (
	// SocketLevel: the socket itself is connected to the backend, so the
	// connect() was rewritten by the cgroup hook (socket LB).
	SocketLevel ServiceTranslation = "socket-level (connect() rewritten to the backend)"
	// PerPacket: the socket is connected to the ClusterIP and packets are
	// translated on their way (Cilium's tc programs, or kube-proxy's NAT).
	PerPacket ServiceTranslation = "per-packet (socket connected to the ClusterIP)"
)

// ClassifyTranslation reads `ss -tnH` output for the established TCP socket
// whose peer is either the ClusterIP frontend or the backend and says
// which. No such socket, or both, is an error.
func ClassifyTranslation(ssOut string, frontend, backend netip.AddrPort) (ServiceTranslation, error) {
	var toFrontend, toBackend bool
	for _, line := range strings.Split(strings.TrimSpace(ssOut), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "ESTAB" {
			continue
		}
		peer, err := netip.ParseAddrPort(f[4])
		if err != nil {
			return "", fmt.Errorf("ss line %q: peer %q: %w", line, f[4], err)
		}
		switch peer {
		case frontend:
			toFrontend = true
		case backend:
			toBackend = true
		}
	}
	switch {
	case toFrontend && toBackend:
		return "", fmt.Errorf("sockets to both %s and %s in %q", frontend, backend, ssOut)
	case toBackend:
		return SocketLevel, nil
	case toFrontend:
		return PerPacket, nil
	}
	return "", fmt.Errorf("no established socket to %s or %s in %q", frontend, backend, ssOut)
}
