package rank

import (
	"io/fs"
	"testing"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/config/configtest"
	"github.com/cnilab/cnilab/scenarios"
)

func FuzzParseEnvironments(f *testing.F) {
	data, err := fs.ReadFile(scenarios.FS, config.EnvironmentsFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	for _, s := range []string{"", "environments: []\n", "environments:\n- name: a\n  criteria:\n  - {name: c, weight: -1, metric: x}\n", "environments: {a: 1}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "scenarios/environments.yaml"
		envs, err := ParseEnvironments(file, data)
		if err == nil && len(envs) == 0 {
			t.Fatal("no environments and no error")
		}
		configtest.Located(t, file, data, err)
	})
}
