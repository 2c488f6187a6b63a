// Package cli holds what every cnilab subcommand shares: output streams,
// exit codes and loading the definition folders.
package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/scenarios"
)

// Exit codes (design §7).
const (
	ExitOK           = 0
	ExitFailed       = 1 // a lab or measurement failed; partial results kept
	ExitInvalid      = 2 // bad input: usage or definitions
	ExitPrerequisite = 3 // something to install first
)

// Streams are where a command writes: results on Out, progress on Err.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// ExitError carries an exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// WithCode wraps err with an exit code.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// Code returns the exit code for err.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	// Commands with their own error types say their code this way.
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	if config.IsInvalid(err) {
		return ExitInvalid
	}
	return ExitFailed
}

// Definitions are the --labs and --scenarios flags.
type Definitions struct {
	LabsDir      string
	ScenariosDir string
}

// AddFlags registers the flags on cmd.
func (d *Definitions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.LabsDir, "labs", "", "folder of lab definitions (default: the embedded labs/)")
	cmd.Flags().StringVar(&d.ScenariosDir, "scenarios", "", "folder of scenario definitions (default: the embedded scenarios/)")
}

// FS returns the lab and scenario folders to read, with their display
// prefixes for error messages.
func (d *Definitions) FS() (labsFS fs.FS, labsName string, scFS fs.FS, scName string, err error) {
	labsFS, labsName = labs.FS, "labs"
	scFS, scName = scenarios.FS, "scenarios"
	if d.LabsDir != "" {
		if st, err := os.Stat(d.LabsDir); err != nil || !st.IsDir() {
			return nil, "", nil, "", WithCode(ExitInvalid, fmt.Errorf("--labs %s: not a folder", d.LabsDir))
		}
		labsFS, labsName = os.DirFS(d.LabsDir), d.LabsDir
	}
	if d.ScenariosDir != "" {
		if st, err := os.Stat(d.ScenariosDir); err != nil || !st.IsDir() {
			return nil, "", nil, "", WithCode(ExitInvalid, fmt.Errorf("--scenarios %s: not a folder", d.ScenariosDir))
		}
		scFS, scName = os.DirFS(d.ScenariosDir), d.ScenariosDir
	}
	return labsFS, labsName, scFS, scName, nil
}

// Load reads and validates the definitions.
func (d *Definitions) Load() (*config.Set, error) {
	lf, ln, sf, sn, err := d.FS()
	if err != nil {
		return nil, err
	}
	set, err := config.Load(lf, ln, sf, sn)
	if err != nil {
		return nil, WithCode(ExitInvalid, err)
	}
	return set, nil
}

// Seconds is a whole-seconds flag that takes what kind, kubectl and helm
// users type ("30s", "2m") as well as a bare number of seconds.
type Seconds struct{ N int }

// String implements pflag.Value.
func (s *Seconds) String() string {
	if s.N == 0 {
		return "0"
	}
	return (time.Duration(s.N) * time.Second).String()
}

// Set implements pflag.Value.
func (s *Seconds) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return fmt.Errorf("%q: a duration cannot be negative", v)
		}
		s.N = n
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 30s or 2m", v)
	}
	if d < 0 || d%time.Second != 0 {
		return fmt.Errorf("%q: want a whole, non-negative number of seconds", v)
	}
	s.N = int(d / time.Second)
	return nil
}

// Type implements pflag.Value.
func (*Seconds) Type() string { return "duration" }
