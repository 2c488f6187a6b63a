package config_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/config/configtest"
	"github.com/cnilab/cnilab/scenarios"
)

// seedFiles adds every *.yaml of fsys (the shipped definitions) and a few
// malformed shapes to the corpus; testdata/fuzz/<target> adds the
// regression seeds of crashers found before.
func seedFiles(f *testing.F, fsys fs.FS, skip string) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil || len(names) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, n := range names {
		if n == skip {
			continue
		}
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "# only a comment\n", "---\n", "name: [\n", "name: x\nname: y\n", "\tname: x\n", "a: !!binary zz\n", "- 1\n- 2\n"} {
		f.Add([]byte(s))
	}
}

func FuzzParseLab(f *testing.F) {
	seedFiles(f, labs.FS, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "labs/fuzz.yaml"
		l, err := config.ParseLab(file, data)
		if err == nil && l == nil {
			t.Fatal("no lab and no error")
		}
		configtest.Located(t, file, data, err)
	})
}

func FuzzParseScenario(f *testing.F) {
	seedFiles(f, scenarios.FS, config.EnvironmentsFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "scenarios/fuzz.yaml"
		s, err := config.ParseScenario(file, data)
		if err == nil && s == nil {
			t.Fatal("no scenario and no error")
		}
		configtest.Located(t, file, data, err)
	})
}

// A value of the wrong type names its file, line and field, like every
// other definition error.
func TestTypeErrorNamesField(t *testing.T) {
	data := []byte("name: throughput\nkind: throughput\ntests: [dts]\nstreams: many\nprofiles:\n  quick: {duration_s: 1, repeats: 3}\n")
	_, err := config.ParseScenario("scenarios/x.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "scenarios/x.yaml:4: streams: ") {
		t.Fatalf("got %v, want scenarios/x.yaml:4: streams: ...", err)
	}
}
