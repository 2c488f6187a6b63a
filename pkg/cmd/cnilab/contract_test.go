package cnilab

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
)

// execute runs the root command in process as main does and returns the
// exit code and what a user sees on stdout and stderr.
func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(cli.Streams{Out: &out, Err: &errOut})
	root.SetArgs(args)
	err := root.Execute()
	cli.Print(&errOut, err)
	return cli.Code(err), out.String(), errOut.String()
}

// TestCLIContract: every usage error exits 2 with a one-line reason and the
// command's usage hint; what is valid gets past flag parsing (--help after
// the flags stops the command before it builds anything).
func TestCLIContract(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string // in stderr (reason) for errors, in stdout for help
		hint string // the usage line of the command that refused
	}{
		{[]string{"compare", "--duration", "2s", "--help"}, 0, "--duration duration", ""},
		{[]string{"compare", "--duration", "2m", "--repeats", "3", "--help"}, 0, "", ""},
		{[]string{"compare", "--duration", "30", "--help"}, 0, "", ""},
		{[]string{"compare", "--duration", "-1s"}, 2, `invalid argument "-1s" for "--duration" flag: must be positive`, "cnilab compare [flags]"},
		{[]string{"compare", "--duration", "0s"}, 2, "must be positive", "cnilab compare [flags]"},
		{[]string{"compare", "--duration", "1.5s"}, 2, "whole seconds", "cnilab compare [flags]"},
		{[]string{"compare", "--duration", "soon"}, 2, "want a duration such as 30s or 2m", "cnilab compare [flags]"},
		{[]string{"compare", "--repeats", "-1"}, 2, "must be at least 1", "cnilab compare [flags]"},
		{[]string{"compare", "--repeats", "x"}, 2, "want a whole number", "cnilab compare [flags]"},
		{[]string{"compare", "--bogus"}, 2, "compare: unknown flag: --bogus", "cnilab compare [flags]"},
		{[]string{"compare", "extra"}, 2, `compare: unknown command "extra"`, "cnilab compare [flags]"},
		{[]string{"--colour"}, 2, "unknown flag: --colour", "cnilab [flags]"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`, "cnilab [flags]"},
		{[]string{"compar"}, 2, "did you mean compare?", "cnilab [flags]"},
		{[]string{"list"}, 2, "list: accepts 1 arg(s), received 0", "cnilab list cnis|scenarios|environments|labs"},
		{[]string{"diff", "a"}, 2, "diff: accepts 2 arg(s), received 1", "cnilab diff OLD/results.json NEW/results.json"},
		{[]string{"report"}, 2, "report: requires at least 1 arg(s), only received 0", "cnilab report RESULTS.json|RUN-DIR.."},
		{[]string{"rank", "--colour"}, 2, "rank: unknown flag: --colour", "cnilab rank"},
		{[]string{"run"}, 2, `run: required flag --run not set`, "cnilab run --run ID"},
		{[]string{"images", "bogus"}, 2, `images: unknown command "bogus"`, "cnilab images build|list"},
		{[]string{"doctor", "--provider", "cluster"}, 2, `--provider "cluster"`, ""},
		{[]string{"--help"}, 0, "Measure Kubernetes CNI datapaths", ""},
		{[]string{"diff", "--help"}, 0, "Exit codes: 0 nothing regressed, 1 a regression, 2 bad input", ""},
		{[]string{"report", "--help"}, 0, "Exit codes: 0 written", ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := execute(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if tc.code == 0 {
				if !strings.Contains(stdout, tc.want) {
					t.Errorf("stdout lacks %q:\n%s", tc.want, stdout)
				}
				return
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "cnilab: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("first line %q, want the reason %q", lines[0], tc.want)
			}
			if tc.hint == "" {
				return
			}
			if len(lines) != 2 || !strings.HasPrefix(lines[1], "usage: "+tc.hint) {
				t.Errorf("stderr is not one reason and one usage hint (%q):\n%s", tc.hint, stderr)
			}
		})
	}
}

// TestDeprecatedFolderFlags: --scenarios and --labs still work, say what
// replaces them, and are gone from the help.
func TestDeprecatedFolderFlags(t *testing.T) {
	code, stdout, stderr := execute(t, "list", "scenarios", "--scenarios", "../../../scenarios", "--labs", "../../../labs")
	if code != 0 || !strings.Contains(stdout, "throughput") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"--scenarios has been deprecated, use --scenario-dir", "--labs has been deprecated, use --lab-dir"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if code, _, stderr := execute(t, "list", "scenarios", "--scenario-dir", "/nonexistent"); code != 2 || !strings.Contains(stderr, "--scenario-dir /nonexistent: not a folder") {
		t.Errorf("bad --scenario-dir: exit %d, %s", code, stderr)
	}
	_, help, _ := execute(t, "compare", "--help")
	if !strings.Contains(help, "--scenario-dir string") || strings.Contains(help, "--scenarios ") || strings.Contains(help, "--labs ") {
		t.Errorf("compare --help shows the deprecated names or lacks the new one:\n%s", help)
	}
}

// TestHelpHasNoBacktickValueNames: pflag takes `text` in a usage string
// as the flag's value name, so "--run `cnilab up`" rendered as a value.
func TestHelpHasNoBacktickValueNames(t *testing.T) {
	root := NewRoot(cli.Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q has backticks", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// TestDoctorAgreesWithCompare runs doctor and compare with the same
// provider and labs on a PATH that lacks tools: both exit 3 and name the
// same missing tools, and compare stops before it creates anything.
func TestDoctorAgreesWithCompare(t *testing.T) {
	bin := t.TempDir()
	script := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tools := []string{"iperf3", "iptables-restore", "iptables-save", "iptables", "docker"}
	cases := []struct {
		name     string
		setup    func()
		args     []string
		missing  []string
		notNamed []string
	}{
		{"nothing installed", func() {}, []string{"--provider", "netns", "--cni", "flannel"}, []string{"iperf3", "iptables-restore", "iptables-save", "iptables"}, nil},
		{"iperf3 only", func() { script("iperf3", `echo "iperf 3.16 (cJSON 1.7.15)"`) }, []string{"--provider", "netns", "--cni", "flannel"}, []string{"iptables-restore"}, []string{"iperf3"}},
		{"old iperf3, UDP tests", func() { script("iperf3", `echo "iperf 3.9 (cJSON 1.7.13)"`) }, []string{"--provider", "netns", "--cni", "flannel"}, []string{"iperf3", "3.11"}, nil},
		{"kind without docker", func() {}, []string{"--provider", "kind", "--cni", "flannel"}, []string{"docker"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range tools {
				os.Remove(filepath.Join(bin, n))
			}
			tc.setup()
			t.Setenv("PATH", bin)
			out := t.TempDir()
			dcode, dout, derr := execute(t, append([]string{"doctor"}, tc.args...)...)
			ccode, _, cerr := execute(t, append([]string{"compare", "--out", out}, tc.args...)...)
			if dcode != cli.ExitPrerequisite || ccode != cli.ExitPrerequisite {
				t.Fatalf("doctor exit %d, compare exit %d; want 3 for both\ndoctor: %s%s\ncompare: %s", dcode, ccode, dout, derr, cerr)
			}
			var doctorMissing []string
			for _, l := range strings.Split(dout, "\n") {
				if f := strings.Fields(l); len(f) >= 3 && f[2] == "missing" {
					doctorMissing = append(doctorMissing, l)
				}
			}
			missing := strings.Join(doctorMissing, "\n")
			for _, m := range tc.missing {
				if !strings.Contains(missing, m) {
					t.Errorf("doctor does not report %q missing:\n%s", m, dout)
				}
				if !strings.Contains(cerr, m) {
					t.Errorf("compare does not name %q: %s", m, cerr)
				}
			}
			for _, m := range tc.notNamed {
				if strings.Contains(missing, m) || strings.Contains(strings.SplitN(cerr, "missing prerequisite", 2)[len(strings.SplitN(cerr, "missing prerequisite", 2))-1], m+":") {
					t.Errorf("%q is installed, yet reported missing\ndoctor: %s\ncompare: %s", m, missing, cerr)
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("compare created %d entries in --out before its prerequisite check", len(entries))
			}
		})
	}
}

var _ = errors.New
