package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// maxManifest bounds one downloaded manifest: Calico-family manifests carry
// their CRDs and run to a few MB; anything far larger is not a manifest.
const maxManifest = 32 << 20

// fieldManager owns what cnilab applies (server-side apply).
const fieldManager = "cnilab"

// applyManifests downloads each manifest (users' machines: the CNIs that
// publish manifests, not charts) and server-side applies its objects in
// order. Server-side apply, because the large CRDs these manifests carry
// exceed the annotation limit a client-side apply writes.
func applyManifests(ctx context.Context, cfg *rest.Config, urls []string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	client := &http.Client{Timeout: 2 * time.Minute}
	for _, u := range urls {
		body, err := fetchManifest(ctx, client, u)
		if err != nil {
			return err
		}
		objs, err := decodeManifest(body)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", u, err)
		}
		for _, o := range objs {
			if err := applyObject(ctx, dyn, mapper, o); err != nil {
				return fmt.Errorf("manifest %s: %s %s: %w", u, o.GetKind(), o.GetName(), err)
			}
		}
	}
	return nil
}

func fetchManifest(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download manifest: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download manifest %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("download manifest %s: %w", url, err)
	}
	if len(body) > maxManifest {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", url, maxManifest)
	}
	return body, nil
}

// decodeManifest splits a multi-document manifest into objects, expanding
// `kind: List` documents (Weave Net publishes one) into their items.
func decodeManifest(body []byte) ([]*unstructured.Unstructured, error) {
	docs, err := helm.Docs(string(body))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	var add func(m map[string]any) error
	add = func(m map[string]any) error {
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return fmt.Errorf("an object without apiVersion/kind: %.80v", m)
		}
		if u.IsList() {
			items, _ := m["items"].([]any)
			for _, it := range items {
				im, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("%s item is not an object", u.GetKind())
				}
				if err := add(im); err != nil {
					return err
				}
			}
			return nil
		}
		if u.GetName() == "" {
			return fmt.Errorf("%s without a name", u.GetKind())
		}
		out = append(out, u)
		return nil
	}
	for _, d := range docs {
		if err := add(d); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no objects")
	}
	return out, nil
}

// applyObject server-side applies one object. A kind the API server does
// not know yet (a custom resource whose CRD this manifest created a moment
// ago) is retried for a while with fresh discovery.
func applyObject(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	var m *meta.RESTMapping
	err := kube.Poll(ctx, "API resource for "+gvk.String(), 30*time.Second, time.Second, func(context.Context) error {
		var err error
		if m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			mapper.Reset()
		}
		return err
	})
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		ri = dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}
