package kind

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
)

// ValuesData is what a recipe's chart values may name with a template:
// {{ .Cluster }} and {{ .ControlPlane }}.
type ValuesData struct {
	// Cluster is the kind cluster's name.
	Cluster string
	// ControlPlane is its control-plane node, <cluster>-control-plane: the
	// node's hostname, its container's name on kind's Docker network, and a
	// name in the API server's certificate.
	ControlPlane string
}

// ValuesFor is the template data of a kind cluster.
func ValuesFor(cluster string) ValuesData {
	return ValuesData{Cluster: cluster, ControlPlane: cluster + "-control-plane"}
}

// ChartValues are the values the CNI chart is installed with: the recipe's
// values with their templates filled in, and, offline, the offline image
// values, the offline images and the offline-only values on top. cniImage
// is the image set's CNI image for offline_image_values.
func ChartValues(k *config.KindLab, d ValuesData, offline bool, cniImage string) (map[string]any, error) {
	c := k.CNI
	values, err := renderValues(c.Values, d)
	if err != nil {
		return nil, fmt.Errorf("chart values of %s: %w", c.Chart, err)
	}
	if !offline {
		return values, nil
	}
	extra, err := renderValues(c.OfflineValues, d)
	if err != nil {
		return nil, fmt.Errorf("offline chart values of %s: %w", c.Chart, err)
	}
	mergeValues(values, extra)
	for _, path := range c.OfflineImageValues {
		if values, err = helm.WithImage(values, path, cniImage); err != nil {
			return nil, err
		}
	}
	for _, path := range slices.Sorted(maps.Keys(c.OfflineImages)) {
		if err := setValue(values, path, c.OfflineImages[path]); err != nil {
			return nil, err
		}
	}
	return values, nil
}

// renderValues deep-copies values, executing every string that holds a
// template with d. An unknown field or a malformed template is an error,
// never an empty string in the chart.
func renderValues(values map[string]any, d ValuesData) (map[string]any, error) {
	out, err := renderValue(values, d, "")
	if err != nil {
		return nil, err
	}
	if out == nil {
		return map[string]any{}, nil
	}
	return out.(map[string]any), nil
}

func renderValue(v any, d ValuesData, at string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			r, err := renderValue(e, d, strings.TrimPrefix(at+"."+k, "."))
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			r, err := renderValue(e, d, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			l[i] = r
		}
		return l, nil
	case string:
		if !strings.Contains(t, "{{") {
			return t, nil
		}
		tpl, err := template.New(at).Option("missingkey=error").Parse(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		var b strings.Builder
		if err := tpl.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return b.String(), nil
	case nil:
		return nil, nil
	default:
		return t, nil
	}
}

// mergeValues merges src into dst: maps merge key by key, anything else in
// src replaces dst's.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			mergeValues(dm, sm)
			continue
		}
		dst[k] = sv
	}
}

// setValue sets values[a][b][c] = v for path a.b.c, creating maps on the
// way; a non-map in the way is an error.
func setValue(values map[string]any, path string, v any) error {
	keys := strings.Split(path, ".")
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			if m[k] != nil {
				return fmt.Errorf("values %s: %s is not a map", path, k)
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
	return nil
}
