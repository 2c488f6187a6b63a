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
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// ExitError carries an exit code and, for a usage error, the hint that
// follows the reason.
type ExitError struct {
	Code int
	Err  error
	// Hint is the command's usage line, printed under a usage error.
	Hint string
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

// Usage makes err a usage error of cmd: exit 2, a one-line reason naming
// the command, and cmd's usage line as the hint.
func Usage(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Hint != "" {
		return err
	}
	reason := strings.Join(strings.Fields(strings.SplitN(err.Error(), "\n", 2)[0]), " ")
	if cmd.HasParent() {
		reason = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": " + reason
	}
	return &ExitError{Code: ExitInvalid, Err: errors.New(reason),
		Hint: fmt.Sprintf("usage: %s (%s --help for more)", cmd.UseLine(), cmd.CommandPath())}
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
	if config.IsInvalid(err) {
		return ExitInvalid
	}
	return ExitFailed
}

// Print writes err as cnilab reports it on stderr: "cnilab: reason", then
// the usage hint of a usage error.
func Print(w io.Writer, err error) {
	if err == nil {
		return
	}
	fmt.Fprintln(w, "cnilab:", err)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Hint != "" {
		fmt.Fprintln(w, ee.Hint)
	}
}

// Harden makes every usage error in root's command tree exit 2 with a
// reason and a usage hint: bad flags and flag values (root's flag error
// function, which subcommands inherit), argument-count errors and missing
// required flags (each command's Args wrapped; cobra checks Args before
// required flags), and unknown subcommands (a group command without Run
// would otherwise print its help and exit 0).
func Harden(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return Usage(c, err) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		// pflag's warnings (a deprecated flag) go to stderr; cobra would
		// print them on its "out", which is the command's stdout.
		c.Flags().SetOutput(root.ErrOrStderr())
		if c.DisableFlagParsing {
			return // the command parses its own arguments (probe)
		}
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = subcommandArgs
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		args := c.Args
		if args == nil {
			args = cobra.NoArgs
			if c.Name() == "help" {
				args = cobra.ArbitraryArgs // cobra's own: help TOPIC
			}
		}
		c.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return Usage(c, err)
			}
			return Usage(c, requiredFlags(c))
		}
	}
	walk(root)
}

// subcommandArgs rejects what is not a subcommand of a group command,
// suggesting the nearest ones.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q (commands: %s)", args[0], strings.Join(names, ", "))
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg = fmt.Sprintf("unknown command %q: did you mean %s?", args[0], strings.Join(s, " or "))
	}
	return errors.New(msg)
}

// requiredFlags is cobra's missing-required-flag check, run where its
// error can be made a usage error.
func requiredFlags(c *cobra.Command) error {
	var missing []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if req := f.Annotations[cobra.BashCompOneRequiredFlag]; len(req) > 0 && req[0] == "true" && !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return fmt.Errorf("required flag %s not set", strings.Join(missing, ", "))
	}
	return nil
}

// Definitions are the --lab-dir and --scenario-dir flags.
type Definitions struct {
	LabsDir      string
	ScenariosDir string
}

// AddFlags registers the flags on cmd. --labs and --scenarios were their
// names until 0.x; --scenarios was one letter from --scenario (names), so
// both folder flags end in -dir now and the old names stay one release as
// deprecated aliases.
func (d *Definitions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.LabsDir, "lab-dir", "", "folder of lab definitions, one YAML per lab (default: the embedded labs/)")
	f.StringVar(&d.ScenariosDir, "scenario-dir", "", "folder of scenario definitions and environments.yaml (default: the embedded scenarios/)")
	f.StringVar(&d.LabsDir, "labs", "", "")
	f.StringVar(&d.ScenariosDir, "scenarios", "", "")
	_ = f.MarkDeprecated("labs", "use --lab-dir")
	_ = f.MarkDeprecated("scenarios", "use --scenario-dir (--scenario takes scenario names)")
}

// FS returns the lab and scenario folders to read, with their display
// prefixes for error messages.
func (d *Definitions) FS() (labsFS fs.FS, labsName string, scFS fs.FS, scName string, err error) {
	labsFS, labsName = labs.FS, "labs"
	scFS, scName = scenarios.FS, "scenarios"
	if d.LabsDir != "" {
		if st, err := os.Stat(d.LabsDir); err != nil || !st.IsDir() {
			return nil, "", nil, "", WithCode(ExitInvalid, fmt.Errorf("--lab-dir %s: not a folder", d.LabsDir))
		}
		labsFS, labsName = os.DirFS(d.LabsDir), d.LabsDir
	}
	if d.ScenariosDir != "" {
		if st, err := os.Stat(d.ScenariosDir); err != nil || !st.IsDir() {
			return nil, "", nil, "", WithCode(ExitInvalid, fmt.Errorf("--scenario-dir %s: not a folder", d.ScenariosDir))
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

// Seconds is a whole-seconds flag that takes Go durations, as kind,
// kubectl and helm users type them ("30s", "2m"), and bare seconds. Zero
// and negative values are usage errors; unset, N stays 0 (the profile's).
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
	d, err := time.ParseDuration(v)
	if n, aerr := strconv.Atoi(v); aerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil:
		return errors.New("want a duration such as 30s or 2m")
	case d <= 0:
		return errors.New("must be positive")
	case d%time.Second != 0:
		return errors.New("want whole seconds (iperf3 counts its windows in seconds)")
	case d > 24*time.Hour:
		return errors.New("more than a day per window")
	}
	s.N = int(d / time.Second)
	return nil
}

// Type implements pflag.Value.
func (*Seconds) Type() string { return "duration" }

// Count is a flag for a number of things that must be at least one;
// unset, N stays 0 (the profile's).
type Count struct{ N int }

// String implements pflag.Value.
func (c *Count) String() string { return strconv.Itoa(c.N) }

// Set implements pflag.Value.
func (c *Count) Set(v string) error {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return errors.New("want a whole number")
	case n < 1:
		return errors.New("must be at least 1")
	}
	c.N = n
	return nil
}

// Type implements pflag.Value.
func (*Count) Type() string { return "int" }

// SplitList reads a comma-separated flag value ("host, flannel,,cilium"):
// items trimmed, empty ones dropped.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
