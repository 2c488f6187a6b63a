package kind

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

func agentObjects() []runtime.Object {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "cilium"}}
	objs := []runtime.Object{&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "cilium", Namespace: "kube-system"}, Spec: appsv1.DaemonSetSpec{Selector: sel}}}
	for _, n := range [][2]string{{"cilium-b", "w2"}, {"cilium-a", "w1"}} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n[0], Namespace: "kube-system", Labels: map[string]string{"k8s-app": "cilium"}},
			Spec: corev1.PodSpec{NodeName: n[1]}})
	}
	// Another DaemonSet's pod must not be asked.
	objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "x"}}})
	return objs
}

const (
	statusKPROn  = `{"cilium":{"state":"Ok"},"kube-proxy-replacement":{"mode":"True","devices":["eth0"],"features":{"socketLB":{"enabled":true},"nodePort":{"enabled":true,"mode":"SNAT","acceleration":"Disabled","algorithm":"Random"}}}}`
	statusKPROff = `{"cilium":{"state":"Ok"},"kube-proxy-replacement":{"mode":"False","features":{}}}`
)

func TestAgentsReady(t *testing.T) {
	e := &config.ReadyExec{DaemonSet: "cilium", Container: "cilium-agent", Command: []string{"cilium-dbg", "status", "-o", "json"}, Check: "cilium-kube-proxy-replacement"}
	tests := []struct {
		name    string
		e       *config.ReadyExec
		out     map[string]string // pod -> stdout
		err     error
		wantErr string
	}{
		{"both active", e, map[string]string{"cilium-a": statusKPROn, "cilium-b": statusKPROn}, nil, ""},
		{"one not replacing kube-proxy", e, map[string]string{"cilium-a": statusKPROn, "cilium-b": statusKPROff}, nil, `pod kube-system/cilium-b (node w2): cilium kube-proxy replacement mode is "False"`},
		{"agent down", e, map[string]string{"cilium-a": `{"cilium":{"state":"Failure","msg":"daemon not ready"}}`}, nil, "cilium agent state Failure: daemon not ready"},
		{"not json", e, map[string]string{"cilium-a": "Error: cannot connect"}, nil, "not JSON"},
		{"exec fails", e, nil, &kube.ExitStatus{Code: 1}, "exit status 1"},
		{"expect matches", &config.ReadyExec{DaemonSet: "cilium", Container: "c", Command: []string{"x"}, Expect: `"mode":"True"`},
			map[string]string{"cilium-a": statusKPROn, "cilium-b": statusKPROn}, nil, ""},
		{"expect fails", &config.ReadyExec{DaemonSet: "cilium", Container: "c", Command: []string{"x"}, Expect: `"mode":"True"`},
			map[string]string{"cilium-a": statusKPROff}, nil, "does not match"},
		{"unknown check", &config.ReadyExec{DaemonSet: "cilium", Container: "c", Command: []string{"x"}, Check: "nope"}, nil, nil, `no check "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			run := func(_ context.Context, ns, pod, container string, argv []string) ([]byte, []byte, error) {
				asked = append(asked, pod+"/"+container+" "+strings.Join(argv, " "))
				return []byte(tc.out[pod]), []byte("stderr text"), tc.err
			}
			got, err := AgentsReady(context.Background(), fake.NewClientset(agentObjects()...), run, "kube-system", tc.e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q in it", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Node != "w1" || got[1].Node != "w2" {
				t.Fatalf("statuses %+v: want both agents, sorted by node", got)
			}
			for _, a := range asked {
				if strings.HasPrefix(a, "other/") {
					t.Errorf("asked a pod of another DaemonSet: %s", a)
				}
			}
			if tc.e.Check != "" && !strings.Contains(got[0].Summary, "socket LB on") {
				t.Errorf("summary %q", got[0].Summary)
			}
		})
	}
	if _, err := AgentsReady(context.Background(), fake.NewClientset(), nil, "kube-system", e); err == nil {
		t.Error("no DaemonSet: no error")
	}
}

func TestNoKubeProxy(t *testing.T) {
	tests := []struct {
		name string
		objs []runtime.Object
		want string
	}{
		{"none", []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cilium-x", Namespace: "kube-system"}}}, ""},
		{"kubeadm DaemonSet", []runtime.Object{&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-proxy"}}}}, "DaemonSet kube-system/kube-proxy"},
		{"stray pod elsewhere", []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-abcde", Namespace: "default"}}}, "pod default/kube-proxy-abcde"},
		{"labelled pod", []runtime.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "x", Labels: map[string]string{"k8s-app": "kube-proxy"}}}}, "pod x/p"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NoKubeProxy(context.Background(), fake.NewClientset(tc.objs...))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q in it", err, tc.want)
			}
		})
	}
}

func TestParseCiliumStatusErrors(t *testing.T) {
	for _, in := range []string{"", "Error: Get \"http:///var/run/cilium/cilium.sock/v1/healthz\": dial unix", "{}", `{"kubernetes":{"state":"Ok"}}`, "[1,2]"} {
		if _, err := ParseCiliumStatus([]byte(in)); err == nil {
			t.Errorf("ParseCiliumStatus(%q): no error", in)
		}
	}
	s, err := ParseCiliumStatus([]byte(`{"cilium":{"state":"Ok"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.KubeProxyReplacementActive(); err == nil || !strings.Contains(err.Error(), "no kube-proxy-replacement") {
		t.Errorf("no KPR section: %v", err)
	}
}

// TestParseCiliumStatus reads `cilium-dbg status -o json` as captured from
// a cilium-agent of the kube-proxy-free lab (v1.20.2, socket LB host netns
// only).
func TestParseCiliumStatus(t *testing.T) {
	out, err := os.ReadFile("testdata/cilium-status-kpr-hostns.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseCiliumStatus(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.KubeProxyReplacementActive(); err != nil {
		t.Errorf("captured status: %v", err)
	}
	if on, hostns := s.SocketLB(); !on || !hostns {
		t.Errorf("socket LB on=%v hostns-only=%v, want both (the recipe's socketLB.hostNamespaceOnly)", on, hostns)
	}
	want := "KubeProxyReplacement True [eth0], socket LB on (host netns only), NodePort on (SNAT, acceleration Disabled, algorithm Random), " +
		"HostPort on, ExternalIPs on, session affinity on, attach mode tcx, routing tunnel vxlan, masquerading iptables"
	if got := s.Summary(); got != want {
		t.Errorf("Summary()\n got %s\nwant %s", got, want)
	}
	if !strings.HasPrefix(s.Cilium.Msg, "1.20.2 (v1.20.2-h1:") {
		t.Errorf("agent version %q: want the 1.20.2 stamp with the module hash", s.Cilium.Msg)
	}
	// The same status with the replacement off is not ready.
	off := strings.Replace(string(out), `"mode": "True"`, `"mode": "False"`, 1)
	if off == string(out) {
		t.Fatal("testdata has no \"mode\": \"True\"")
	}
	s, err = ParseCiliumStatus([]byte(off))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.KubeProxyReplacementActive(); err == nil || !strings.Contains(err.Error(), `"False"`) {
		t.Errorf("mode False: %v", err)
	}
}

func TestClassifyTranslation(t *testing.T) {
	fe, be := netip.MustParseAddrPort("10.96.178.77:5201"), netip.MustParseAddrPort("10.244.1.161:5201")
	tests := []struct {
		name, ss string
		want     ServiceTranslation
		wantErr  bool
	}{
		{"per packet", "ESTAB 0      0      10.244.2.17:40112 10.96.178.77:5201\n", PerPacket, false},
		{"socket level", "ESTAB 0 0 172.20.0.6:51234 10.244.1.161:5201\nESTAB 0 0 172.20.0.6:22 172.20.0.1:50000\n", SocketLevel, false},
		{"none", "ESTAB 0 0 172.20.0.6:22 172.20.0.1:50000\n", "", true},
		// Captured from a node: the backend had already closed its end.
		{"close-wait", "CLOSE-WAIT 1      0      10.244.2.237:52630  10.244.1.161:5201 \n", SocketLevel, false},
		{"listener only", "LISTEN 0 128 0.0.0.0:5201 0.0.0.0:*\n", "", true},
		{"both", "ESTAB 0 0 a:1 10.96.178.77:5201\nESTAB 0 0 b:2 10.244.1.161:5201\n", "", true},
		{"garbage peer", "ESTAB 0 0 x y\n", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		got, err := ClassifyTranslation(tc.ss, fe, be)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: %q, %v; want %q (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
