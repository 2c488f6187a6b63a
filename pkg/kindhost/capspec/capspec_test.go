package capspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const statusHere = `Name:	cat
Umask:	0022
State:	R (running)
CapInh:	0000000000000000
CapPrm:	000001fffeffffff
CapEff:	000001fffeffffff
CapBnd:	000001fffeffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
`

func TestParseStatus(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		bnd     Set
		missing []string // for cap_last_cap 40
		wantErr bool
	}{
		{"this host: no CAP_SYS_RESOURCE", statusHere, 0x1fffeffffff, []string{"CAP_SYS_RESOURCE"}, false},
		{"full set", strings.ReplaceAll(statusHere, "000001fffeffffff", "000001ffffffffff"), 0x1ffffffffff, nil, false},
		{"no CapBnd line", strings.Replace(statusHere, "CapBnd:\t000001fffeffffff\n", "", 1), 0, nil, true},
		{"bad hex", strings.Replace(statusHere, "CapBnd:\t000001fffeffffff", "CapBnd:\tzz", 1), 0, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := ParseStatus(strings.NewReader(c.in))
			if c.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Bounding != c.bnd {
				t.Errorf("bounding %x, want %x", st.Bounding, c.bnd)
			}
			if got := st.Bounding.Missing(40); !reflect.DeepEqual(got, c.missing) {
				t.Errorf("missing %v, want %v", got, c.missing)
			}
		})
	}
}

func TestName(t *testing.T) {
	for bit, want := range map[int]string{0: "CAP_CHOWN", 21: "CAP_SYS_ADMIN", 24: "CAP_SYS_RESOURCE", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE", 41: "CAP_41"} {
		if got := Name(bit); got != want {
			t.Errorf("Name(%d) = %s, want %s", bit, got, want)
		}
	}
}

func capsOf(t *testing.T, data []byte, doc Document) map[string][]string {
	t.Helper()
	var v struct {
		Process struct {
			Capabilities map[string][]string `json:"capabilities"`
		} `json:"process"`
		Capabilities map[string][]string `json:"capabilities"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if doc == Process {
		return v.Capabilities
	}
	return v.Process.Capabilities
}

// others decodes everything but the capabilities, numbers kept exact.
func others(t *testing.T, data []byte, doc Document) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if doc == Process {
		delete(m, "capabilities")
	} else {
		delete(m["process"].(map[string]any), "capabilities")
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestStrip(t *testing.T) {
	drop := map[string]bool{"CAP_SYS_RESOURCE": true}
	cases := []struct {
		file        string
		doc         Document
		wantRemoved []string
		sets        int // capability sets that must remain, without the dropped caps
	}{
		{"config-privileged.json", Bundle, []string{"CAP_SYS_RESOURCE"}, 4},
		{"process-exec-privileged.json", Process, []string{"CAP_SYS_RESOURCE"}, 5},
		{"config-default.json", Bundle, nil, 3},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			out, removed, err := Strip(in, c.doc, drop)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(removed, c.wantRemoved) {
				t.Errorf("removed %v, want %v", removed, c.wantRemoved)
			}
			if c.wantRemoved == nil && string(out) != string(in) {
				t.Error("a spec without the capability was rewritten")
			}
			before, after := capsOf(t, in, c.doc), capsOf(t, out, c.doc)
			if len(after) != c.sets {
				t.Errorf("%d capability sets after, want %d", len(after), c.sets)
			}
			for set, list := range after {
				var want []string
				for _, cap := range before[set] {
					if !drop[cap] {
						want = append(want, cap)
					}
				}
				if !reflect.DeepEqual(list, want) {
					t.Errorf("%s: %v, want %v", set, list, want)
				}
			}
			if a, b := others(t, out, c.doc), others(t, in, c.doc); a != b {
				t.Errorf("other fields changed:\n%s\nwant\n%s", a, b)
			}
		})
	}
}

func TestStripErrors(t *testing.T) {
	drop := map[string]bool{"CAP_SYS_RESOURCE": true}
	for _, c := range []struct {
		name string
		in   string
		doc  Document
	}{
		{"not JSON", "{", Bundle},
		{"capabilities not an object", `{"capabilities": []}`, Process},
		{"set not a list", `{"process": {"capabilities": {"bounding": "CAP_SYS_RESOURCE"}}}`, Bundle},
	} {
		if _, _, err := Strip([]byte(c.in), c.doc, drop); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	// No process, no capabilities: nothing to do, not an error.
	for _, in := range []string{`{"ociVersion": "1.0.2"}`, `{"process": {"args": ["sh"]}}`} {
		out, removed, err := Strip([]byte(in), Bundle, drop)
		if err != nil || removed != nil || string(out) != in {
			t.Errorf("%s: %s %v %v", in, out, removed, err)
		}
	}
}

func TestStripFile(t *testing.T) {
	in, err := os.ReadFile("testdata/config-privileged.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := StripFile(path, Bundle, map[string]bool{"CAP_SYS_RESOURCE": true})
	if err != nil || len(removed) != 1 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	out, _ := os.ReadFile(path)
	if strings.Contains(string(out), "CAP_SYS_RESOURCE") {
		t.Error("CAP_SYS_RESOURCE still in the file")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestRuncSpecFiles(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []SpecFile
	}{
		{"containerd-shim create", []string{"--root", "/var/run/docker/runtime-runc/moby", "--log", "/run/x/log.json", "--log-format", "json", "create", "--bundle", "/run/b", "--pid-file", "/run/b/init.pid", "abc"},
			[]SpecFile{{"/run/b/config.json", Bundle}}},
		{"systemd-cgroup flag, -b", []string{"--systemd-cgroup", "create", "-b", "/run/b", "abc"}, []SpecFile{{"/run/b/config.json", Bundle}}},
		{"--bundle=", []string{"run", "--bundle=/run/b", "-d", "abc"}, []SpecFile{{"/run/b/config.json", Bundle}}},
		{"create without --bundle uses the working directory", []string{"create", "abc"}, []SpecFile{{"config.json", Bundle}}},
		{"exec --process", []string{"--root", "/r", "--log", "/l", "--log-format", "json", "exec", "--process", "/tmp/runc-process123", "--detach", "--pid-file", "/p", "abc"},
			[]SpecFile{{"/tmp/runc-process123", Process}}},
		{"exec -p=", []string{"exec", "-p=/tmp/p.json", "abc"}, []SpecFile{{"/tmp/p.json", Process}}},
		{"exec without --process", []string{"exec", "-t", "abc", "sh"}, nil},
		{"exec: the command's own flags are not runc's", []string{"exec", "abc", "tool", "--process", "/etc/passwd"}, nil},
		{"an option's value that looks like an option", []string{"exec", "--env", "-p", "--process", "/tmp/p.json", "abc"}, []SpecFile{{"/tmp/p.json", Process}}},
		{"global value equal to a subcommand", []string{"--root", "create", "state", "abc"}, nil},
		{"start", []string{"--root", "/r", "start", "abc"}, nil},
		{"delete", []string{"delete", "--force", "abc"}, nil},
		{"features", []string{"features"}, nil},
		{"no args", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RuncSpecFiles(c.args); !reflect.DeepEqual(got, c.want) {
				t.Errorf("RuncSpecFiles(%q) = %v, want %v", c.args, got, c.want)
			}
		})
	}
}
