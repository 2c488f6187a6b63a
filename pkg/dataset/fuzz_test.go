package dataset

import (
	"io/fs"
	"math"
	"testing"

	"github.com/cnilab/cnilab/pkg/config/configtest"
	"github.com/cnilab/cnilab/reports/published"
)

func FuzzParse(f *testing.F) {
	for _, n := range Names(published.FS) {
		data, err := fs.ReadFile(published.FS, n+".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "schema: cnilab.dataset/v1\n", "variants:\n- name: a\n  tests:\n  - {test: dts, throughput_bps: .nan}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "reports/published/fuzz.yaml"
		d, err := Parse(file, data)
		configtest.Located(t, file, data, err)
		if err != nil {
			return
		}
		// An accepted dataset is one the ranking can use: every figure a
		// finite number.
		for _, v := range d.Variants {
			for _, tf := range v.Tests {
				for name, val := range tf.Metrics() {
					if math.IsNaN(val) || math.IsInf(val, 0) {
						t.Fatalf("accepted %s %s %s = %v", v.Name, tf.Test, name, val)
					}
				}
			}
		}
	})
}
