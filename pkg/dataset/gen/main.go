// Command gen regenerates reports/published/infrabuilder-{2024,2020}.yaml
// from the per-run CSVs in shared/published-benchmarks. Run it from the
// repository root: go run ./pkg/dataset/gen
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cnilab/cnilab/pkg/dataset"
)

func main() {
	csvDir := flag.String("csv", "../shared/published-benchmarks", "directory holding infrabuilder-*-runs.csv")
	outDir := flag.String("out", "reports/published", "directory the dataset YAML files are written to")
	flag.Parse()
	if err := run(*csvDir, *outDir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(csvDir, outDir string) error {
	for _, ed := range []struct {
		csv, out string
		gen      func(io.Reader) (*dataset.Dataset, error)
	}{
		{"infrabuilder-2024-runs.csv", "infrabuilder-2024.yaml", dataset.Generate2024},
		{"infrabuilder-2020-runs.csv", "infrabuilder-2020.yaml", dataset.Generate2020},
	} {
		f, err := os.Open(filepath.Join(csvDir, ed.csv))
		if err != nil {
			return err
		}
		d, err := ed.gen(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", ed.csv, err)
		}
		data, err := dataset.Marshal(d)
		if err != nil {
			return err
		}
		// The written file must read back: the generator never emits a
		// dataset the loader would reject.
		if _, err := dataset.Parse(ed.out, data); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(outDir, ed.out), data, 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d variants)\n", filepath.Join(outDir, ed.out), len(d.Variants))
	}
	return nil
}
