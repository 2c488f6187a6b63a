package kind

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestDecodeManifest(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string // kind/namespace/name
		err        string
	}{
		{"documents", "---\n# a comment\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: kube-system}\n---\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: kube-system}\n",
			[]string{"ServiceAccount/kube-system/a", "DaemonSet/kube-system/agent"}, ""},
		// Weave Net's release manifest is one List.
		{"list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: weave-net, namespace: kube-system}\n- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: weave-net}\n",
			[]string{"ServiceAccount/kube-system/weave-net", "ClusterRole//weave-net"}, ""},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", nil, "without apiVersion/kind"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", nil, "ConfigMap without a name"},
		{"empty", "# nothing\n", nil, "no YAML documents"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := decodeManifest([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFetchManifest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/m.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"))
	}))
	defer srv.Close()
	body, err := fetchManifest(context.Background(), srv.Client(), srv.URL+"/v1/m.yaml")
	if err != nil || !strings.Contains(string(body), "kind: Namespace") {
		t.Errorf("fetch = %q, %v", body, err)
	}
	if _, err := fetchManifest(context.Background(), srv.Client(), srv.URL+"/v2/m.yaml"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing manifest: %v", err)
	}
}
