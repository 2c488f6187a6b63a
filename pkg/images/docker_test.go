package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/cnilab/cnilab/pkg/command"
)

// needNodeImage skips (or, under CI=true, fails) unless a Docker engine
// answers and the offline node image has been built.
func needNodeImage(t *testing.T) command.Runner {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("needs Docker and the built node image; skipped under -short")
	}
	r := command.Exec{}
	if err := CheckEngine(t.Context(), r); err != nil {
		if ci {
			t.Fatalf("CI=true and Docker is unusable: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	info, err := Inspect(t.Context(), r, NodeImage)
	if err != nil {
		t.Fatal(err)
	}
	if info == nil {
		if ci {
			t.Fatalf("CI=true and %s is not built: run `cnilab images build` first", NodeImage)
		}
		t.Skipf("%s not built: run `cnilab images build`", NodeImage)
	}
	return r
}

func TestNodeImageContents(t *testing.T) {
	r := needNodeImage(t)
	ctx := t.Context()
	res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"run", "--rm", "--network", "none", "--entrypoint", "cat", NodeImage, "/kind/version"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != KubernetesVersion {
		t.Errorf("/kind/version = %q, want %q", got, KubernetesVersion)
	}
	// The preloaded store: start containerd (no CRI) and list k8s.io.
	script := `printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' > /tmp/c.toml
containerd --config /tmp/c.toml >/dev/null 2>&1 &
for _ in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -n k8s.io images ls -q`
	res, err = r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined",
		"--entrypoint", "/bin/bash", NodeImage, "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	var comps []Spec
	for _, ref := range componentRefs() {
		comps = append(comps, Spec{Ref: ref})
	}
	if missing := missingRefs(string(res.Stdout), comps); len(missing) > 0 {
		t.Errorf("node containerd lacks %v; lists:\n%s", missing, res.Stdout)
	}
	res, err = r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"image", "inspect", "--format", "{{json .Config.Entrypoint}} {{.Config.StopSignal}}", NodeImage}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != `["/usr/local/bin/entrypoint","/sbin/init"] SIGRTMIN+3` {
		t.Errorf("entrypoint and stop signal: %s", got)
	}
}

// TestNodeImageKindCluster creates a one-node kind cluster from the image
// (no CNI) and waits until the control-plane components run: the image's
// entrypoint, systemd units, containerd config and preloaded images all
// have to be right for that.
func TestNodeImageKindCluster(t *testing.T) {
	r := needNodeImage(t)
	name := fmt.Sprintf("cnl-imgtest-%d", os.Getpid())
	kubeconfig := t.TempDir() + "/kubeconfig"
	p := cluster.NewProvider(cluster.ProviderWithDocker())
	t.Cleanup(func() { _ = p.Delete(name, kubeconfig) })
	cfg := &v1alpha4.Cluster{Networking: v1alpha4.Networking{DisableDefaultCNI: true},
		Nodes: []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}}}
	begin := time.Now()
	if err := p.Create(name, cluster.CreateWithV1Alpha4Config(cfg), cluster.CreateWithNodeImage(NodeImage),
		cluster.CreateWithKubeconfigPath(kubeconfig), cluster.CreateWithWaitForReady(0)); err != nil {
		t.Fatalf("kind create: %v", err)
	}
	t.Logf("kind create took %s", time.Since(begin).Round(100*time.Millisecond))
	node := name + "-control-plane"
	// Docker's DNS is published on the gateway and resolv.conf points there;
	// resolving the node's own container name goes through that DNAT.
	res, err := r.Run(t.Context(), command.Cmd{Name: "docker", Args: []string{"exec", node, "cat", "/etc/resolv.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Stdout), "127.0.0.11") || !strings.Contains(string(res.Stdout), "nameserver ") {
		t.Errorf("node resolv.conf not rewritten:\n%s", res.Stdout)
	}
	if _, err := r.Run(t.Context(), command.Cmd{Name: "docker", Args: []string{"exec", node, "getent", "hosts", node}}); err != nil {
		t.Errorf("node cannot resolve its own name through the published DNS: %v", err)
	}
	logs, _ := r.Run(t.Context(), command.Cmd{Name: "docker", Args: []string{"logs", node}})
	t.Logf("entrypoint:\n%s", firstLines(string(logs.Stdout)+string(logs.Stderr), "INFO:", "WARN:"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	want := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
	var last string
	for ctx.Err() == nil {
		res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: []string{"exec", node, "crictl", "ps", "--state", "Running", "-o", "json"}})
		if err == nil {
			last = string(res.Stdout)
			running, perr := runningContainers(res.Stdout)
			if perr != nil {
				t.Fatal(perr)
			}
			ok := true
			for _, w := range want {
				ok = ok && running[w]
			}
			if ok {
				t.Logf("control plane running %s after create began", time.Since(begin).Round(100*time.Millisecond))
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(2 * time.Second)
	}
	out, _ := r.Run(context.Background(), command.Cmd{Name: "docker", Args: []string{"exec", node, "journalctl", "-u", "containerd", "-u", "kubelet", "--no-pager", "-n", "40"}})
	t.Fatalf("control plane not running within 2 min; crictl: %.2000s\njournal:\n%s", last, out.Stdout)
}

// runningContainers parses `crictl ps -o json` into the set of container
// names.
func runningContainers(out []byte) (map[string]bool, error) {
	var ps struct {
		Containers []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(out, &ps); err != nil {
		return nil, fmt.Errorf("parse crictl ps: %w", err)
	}
	names := map[string]bool{}
	for _, c := range ps.Containers {
		names[c.Metadata.Name] = true
	}
	return names, nil
}

func firstLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(strings.TrimSpace(l), p) {
				out = append(out, strings.TrimSpace(l))
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestFlannelAndBenchImages runs what the flannel chart's and the
// kube-router chart's containers and the bench workloads run first.
func TestFlannelAndBenchImages(t *testing.T) {
	r := needNodeImage(t)
	tests := []struct {
		image, script, want string
	}{
		{FlannelImage, "cp -f /flannel /tmp/flannel && test -x /tmp/flannel && test -x /opt/bin/install-conf && /opt/bin/flanneld --version 2>&1", FlannelVersion},
		{FlannelImage, "iptables --version && nft --version", "nf_tables"},
		// charts/kube-router's install-cni init container and agent.
		{KubeRouterImage, "for p in bridge host-local loopback portmap; do test -x /usr/libexec/cni/$p || exit 1; done && command -v install mv cp >/dev/null && /usr/local/bin/kube-router --version 2>&1", KubeRouterVersion},
		{KubeRouterImage, "iptables --version && command -v ipset && ip -V && conntrack --version && gobgp --version", "nf_tables"},
		{BenchImage, "iperf3 --version | head -n1 && busybox ping -c1 -W1 127.0.0.1 >/dev/null && test -x /usr/local/bin/cnilab && echo ok", "ok"},
	}
	for _, tc := range tests {
		res, err := r.Run(t.Context(), command.Cmd{Name: "docker", Args: []string{"run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", tc.image, "-c", tc.script}})
		if err != nil {
			t.Errorf("%s: %s: %v", tc.image, tc.script, err)
			continue
		}
		if !strings.Contains(string(res.Stdout), tc.want) {
			t.Errorf("%s: %s printed %q, want %q in it", tc.image, tc.script, res.Stdout, tc.want)
		}
	}
}
