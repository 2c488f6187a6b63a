package kindhost

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/kindhost/capspec"
)

const thisHostStatus = "CapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"

// engineInfoJSON is `docker info --format '{{json .}}'` from this machine,
// trimmed to the fields kind-host reads plus a few it ignores.
const engineInfoJSON = `{"ID":"X","Containers":0,"ServerVersion":"20.10.24+dfsg1","CgroupDriver":"cgroupfs","CgroupVersion":"1","DefaultRuntime":"cnl","Runtimes":{"cnl":{"path":"/usr/local/sbin/cnl-runc"},"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"}},"Labels":["io.cnilab.kind-host=1"],"ClientInfo":{"Version":"28.2.2"}}`

// noEngineJSON is what the same command prints (exit 1) with no daemon.
const noEngineJSON = `{"ID":"","ServerVersion":"","Runtimes":null,"DefaultRuntime":"","ClientInfo":{"Version":"28.2.2"}}`

type fakeFS struct {
	mu    sync.Mutex
	files map[string]string
}

func (f *fakeFS) read(p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.files[p]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (f *fakeFS) write(p string, b []byte, _ os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[p] = string(b)
	return nil
}

// fakeSystem is this machine with docker.io installed and no engine
// running, unless the test changes it.
func fakeSystem(runner command.Runner) (System, *fakeFS) {
	files := &fakeFS{files: map[string]string{
		statusPath:                        thisHostStatus,
		lastCapPath:                       "40\n",
		inotifyDir + "max_user_instances": "128\n",
		inotifyDir + "max_user_watches":   "192536\n",
	}}
	paths := map[string]string{"docker": "/usr/local/bin/docker", "dockerd": "/usr/sbin/dockerd", "apt-get": "/usr/bin/apt-get"}
	return System{
		Run:       runner,
		ReadFile:  files.read,
		WriteFile: files.write,
		LookPath: func(n string) (string, error) {
			if p, ok := paths[n]; ok {
				return p, nil
			}
			return "", errors.New("not found")
		},
		Euid:     func() int { return 0 },
		Systemd:  func() bool { return false },
		Source:   "/src/cnilab",
		GoBinary: "/usr/local/go/bin/go",
	}, files
}

func dockerResponder(info string, infoErr error) *command.Fake {
	return &command.Fake{Responses: map[string]command.FakeResponse{
		"docker": {Func: func(c command.Cmd) (command.Result, error) {
			if len(c.Args) > 0 && c.Args[0] == "info" {
				if infoErr != nil {
					return command.Result{Stdout: []byte(info)}, &command.Error{Cmd: c.String(), Stdout: info, Stderr: infoErr.Error(), Err: errors.New("exit status 1")}
				}
				return command.Result{Stdout: []byte(info)}, nil
			}
			return command.Result{}, nil
		}},
	}}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name      string
		info      string
		infoErr   error
		engine    *Engine
		engineErr string
	}{
		{"no engine", noEngineJSON, errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"), nil,
			"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"},
		{"engine", engineInfoJSON, nil, &Engine{ServerVersion: "20.10.24+dfsg1", CgroupDriver: "cgroupfs", CgroupVersion: "1", DefaultRuntime: "cnl",
			Runtimes: []string{"cnl", "io.containerd.runc.v2", "runc"}, Labels: []string{OwnerLabel}}, ""},
		{"answer without a server", noEngineJSON, nil, nil, "docker info reports no server version"},
		{"not JSON", "Server: oops", nil, nil, "docker info: invalid character 'S' looking for beginning of value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sys, _ := fakeSystem(dockerResponder(c.info, c.infoErr))
			h, err := Detect(context.Background(), sys, false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Engine, c.engine) || h.EngineErr != c.engineErr {
				t.Errorf("engine %+v (%q), want %+v (%q)", h.Engine, h.EngineErr, c.engine, c.engineErr)
			}
			if !reflect.DeepEqual(h.Caps.Missing, []string{"CAP_SYS_RESOURCE"}) || h.Caps.Bounding != capspec.Set(0x1fffeffffff) {
				t.Errorf("caps %+v", h.Caps)
			}
			if h.InotifyInstances != 128 || h.InotifyWatches != 192536 || !h.Root || h.Dockerd != "/usr/sbin/dockerd" {
				t.Errorf("host %+v", h)
			}
		})
	}
}

func TestDetectRefusesUnreadableFacts(t *testing.T) {
	for _, path := range []string{statusPath, lastCapPath, inotifyDir + "max_user_instances"} {
		sys, files := fakeSystem(dockerResponder(engineInfoJSON, nil))
		files.files[path] = "garbage"
		if _, err := Detect(context.Background(), sys, false); err == nil {
			t.Errorf("%s unparsable: no error", path)
		}
	}
	sys, files := fakeSystem(dockerResponder(engineInfoJSON, nil))
	files.files[DaemonJSON] = "{"
	if _, err := Detect(context.Background(), sys, false); err == nil {
		t.Error("broken daemon.json: no error")
	}
}

func TestDetectDaemonConfig(t *testing.T) {
	cases := []struct {
		name string
		file string
		want DaemonConfig
	}{
		{"ours", `{"default-runtime":"cnl","labels":["io.cnilab.kind-host=1"],"runtimes":{"cnl":{"path":"/usr/local/sbin/cnl-runc"}}}`,
			DaemonConfig{Exists: true, Owned: true, RegistersWrapper: true, DefaultRuntime: "cnl"}},
		{"a user's", `{"log-driver":"journald"}`, DaemonConfig{Exists: true}},
		{"a user's with another default runtime", `{"default-runtime":"crun","runtimes":{"crun":{"path":"/usr/bin/crun"}}}`, DaemonConfig{Exists: true, DefaultRuntime: "crun"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sys, files := fakeSystem(dockerResponder(noEngineJSON, errors.New("no daemon")))
			files.files[DaemonJSON] = c.file
			h, err := Detect(context.Background(), sys, false)
			if err != nil {
				t.Fatal(err)
			}
			got := h.Daemon
			got.Raw = nil
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%+v, want %+v", got, c.want)
			}
		})
	}
}

// base is this machine before kind-host: docker.io installed, no engine,
// the CAP_SYS_RESOURCE gap, inotify at Debian's defaults.
func base() Host {
	return Host{Root: true, DockerCLI: "/usr/local/bin/docker", Dockerd: "/usr/sbin/dockerd", AptGet: "/usr/bin/apt-get", Go: "/usr/local/go/bin/go", Source: "/src",
		EngineErr:        "Cannot connect to the Docker daemon",
		Caps:             Caps{Bounding: 0x1fffeffffff, LastCap: 40, Missing: []string{"CAP_SYS_RESOURCE"}},
		InotifyInstances: 128, InotifyWatches: 192536}
}

func kinds(p Plan) []ActionKind {
	var out []ActionKind
	for _, a := range p.Actions {
		out = append(out, a.Kind)
	}
	return out
}

func TestPlanFor(t *testing.T) {
	engine := &Engine{ServerVersion: "24.0.7", DefaultRuntime: "runc"}
	ownEngine := &Engine{ServerVersion: "20.10.24", DefaultRuntime: "runc", Labels: []string{OwnerLabel}}
	capsFail := Privileged{Checked: true, CapsError: true, Detail: "docker run --privileged: unable to apply caps: operation not permitted"}
	works := Privileged{Checked: true, RunOK: true, ExecOK: true}
	cases := []struct {
		name     string
		edit     func(*Host)
		want     []ActionKind
		blockers []string // substrings, one per blocker
	}{
		{"this machine: installed, not running", func(*Host) {},
			[]ActionKind{InstallWrapper, ConfigureDaemon, StartDockerd, VerifyDocker, RaiseInotify}, nil},
		{"docker absent", func(h *Host) { h.DockerCLI, h.Dockerd = "", "" },
			[]ActionKind{InstallDocker, InstallWrapper, ConfigureDaemon, StartDockerd, VerifyDocker, RaiseInotify}, nil},
		{"no gap: no wrapper", func(h *Host) { h.Caps.Missing = nil },
			[]ActionKind{StartDockerd, VerifyDocker, RaiseInotify}, nil},
		{"wrapper configured already: only start", func(h *Host) {
			h.Daemon = DaemonConfig{Exists: true, Owned: true, RegistersWrapper: true, DefaultRuntime: RuntimeName}
			h.InotifyInstances, h.InotifyWatches = 512, 524288
		}, []ActionKind{InstallWrapper, StartDockerd, VerifyDocker}, nil},
		{"dockerd running but not answering yet", func(h *Host) { h.DockerdPID = 42; h.Caps.Missing = nil },
			[]ActionKind{WaitDockerd, VerifyDocker, RaiseInotify}, nil},
		{"a user's daemon.json is merged", func(h *Host) { h.Daemon = DaemonConfig{Exists: true} },
			[]ActionKind{InstallWrapper, ConfigureDaemon, StartDockerd, VerifyDocker, RaiseInotify}, nil},
		{"a user's default runtime is not replaced", func(h *Host) { h.Daemon = DaemonConfig{Exists: true, DefaultRuntime: "crun"} },
			[]ActionKind{InstallWrapper, StartDockerd, VerifyDocker, RaiseInotify}, []string{`default-runtime "crun"`}},
		{"working engine: Docker untouched", func(h *Host) { h.Engine, h.Privileged = engine, works },
			[]ActionKind{RaiseInotify}, nil},
		{"working engine, limits fine: nothing", func(h *Host) {
			h.Engine, h.Privileged = engine, works
			h.InotifyInstances, h.InotifyWatches = 8192, 1048576
		}, nil, nil},
		{"a user's engine failing on caps: say what to do, change nothing", func(h *Host) { h.Engine, h.Privileged = engine, capsFail },
			[]ActionKind{RaiseInotify}, []string{"does not reconfigure a Docker it did not set up"}},
		{"kind-host's own engine failing on caps: reconfigure and restart", func(h *Host) {
			h.Engine, h.Privileged, h.DockerdPID = ownEngine, capsFail, 42
			h.Daemon = DaemonConfig{Exists: true, Owned: true}
		}, []ActionKind{InstallWrapper, ConfigureDaemon, StopDockerd, StartDockerd, VerifyDocker, RaiseInotify}, nil},
		{"engine failing otherwise", func(h *Host) {
			h.Engine, h.Privileged = engine, Privileged{Checked: true, Detail: "docker run: no space left"}
		}, []ActionKind{RaiseInotify}, []string{"no space left"}},
		{"not root: nothing, and why", func(h *Host) { h.Root = false }, nil,
			[]string{"run kind-host as root", "raise them as root"}},
		{"no apt-get", func(h *Host) { h.DockerCLI, h.AptGet = "", "" }, []ActionKind{RaiseInotify}, []string{"install Docker"}},
		{"no source tree for the wrapper", func(h *Host) { h.Source = "" },
			[]ActionKind{StartDockerd, VerifyDocker, RaiseInotify}, []string{"cannot be built here"}},
		{"systemd host", func(h *Host) { h.Systemd = true; h.Caps.Missing = nil },
			[]ActionKind{StartDockerd, VerifyDocker, RaiseInotify}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base()
			c.edit(&h)
			p := PlanFor(h)
			if got := kinds(p); !reflect.DeepEqual(got, c.want) {
				t.Errorf("actions %v, want %v", got, c.want)
			}
			if len(p.Blockers) != len(c.blockers) {
				t.Fatalf("blockers %q, want %d", p.Blockers, len(c.blockers))
			}
			for i, b := range c.blockers {
				if !strings.Contains(p.Blockers[i], b) {
					t.Errorf("blocker %q lacks %q", p.Blockers[i], b)
				}
			}
			for _, a := range p.Actions {
				if a.What == "" || a.Why == "" {
					t.Errorf("action %s without what or why", a.Kind)
				}
			}
		})
	}
}

func TestPlanStartsWithSystemctlUnderSystemd(t *testing.T) {
	h := base()
	h.Systemd = true
	for _, a := range PlanFor(h).Actions {
		if a.Kind == StartDockerd && a.What != "systemctl start docker" {
			t.Errorf("start under systemd: %q", a.What)
		}
	}
}

// TestApply runs this machine's plan against fakes and checks the commands
// and files, in order.
func TestApply(t *testing.T) {
	var mu sync.Mutex
	started := false
	var calls []string
	record := func(c command.Cmd) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c.String())
	}
	fake := &command.Fake{Responses: map[string]command.FakeResponse{
		"docker": {Func: func(c command.Cmd) (command.Result, error) {
			record(c)
			if c.Args[0] == "info" {
				if !started {
					return command.Result{}, &command.Error{Cmd: c.String(), Stderr: "Cannot connect", Err: errors.New("exit status 1")}
				}
				return command.Result{Stdout: []byte(engineInfoJSON)}, nil
			}
			if c.Args[0] == "import" {
				b, _ := io.ReadAll(c.Stdin)
				if len(b) == 0 {
					t.Error("docker import without a layer")
				}
			}
			if c.Args[0] == "run" && c.Args[1] == "--rm" || c.Args[0] == "exec" {
				return command.Result{Stdout: []byte("CapEff=0000003ffeffffff\n")}, nil
			}
			return command.Result{}, nil
		}},
		"sh": {Func: func(c command.Cmd) (command.Result, error) {
			record(c)
			started = true
			return command.Result{}, nil
		}},
		"/usr/local/go/bin/go": {Func: func(c command.Cmd) (command.Result, error) { record(c); return command.Result{}, nil }},
		"mv":                   {Func: func(c command.Cmd) (command.Result, error) { record(c); return command.Result{}, nil }},
		"sysctl":               {Func: func(c command.Cmd) (command.Result, error) { record(c); return command.Result{}, nil }},
	}}
	sys, files := fakeSystem(fake)
	// The build writes the wrapper; the fake go does not, so it is there.
	files.files[WrapperPath] = "\x7fELF wrapper"
	h, err := Detect(context.Background(), sys, false)
	if err != nil {
		t.Fatal(err)
	}
	h.WrapperInstalled = false
	calls = nil // Detect's own docker info
	plan := PlanFor(h)
	if err := Apply(context.Background(), sys, h, plan, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/usr/local/go/bin/go -C /src/cnilab build -trimpath -o /usr/local/sbin/cnl-runc.cnl-new ./cmd/cnl-runc",
		"mv -f /usr/local/sbin/cnl-runc.cnl-new /usr/local/sbin/cnl-runc",
		"sh -c setsid nohup dockerd --config-file /etc/docker/daemon.json </dev/null >>/var/log/cnilab-dockerd.log 2>&1 &",
		"docker info --format {{json .}}",
	}
	for i, w := range want {
		if i >= len(calls) || calls[i] != w {
			t.Fatalf("call %d: got %q, want %q\nall: %q", i, calls, w, calls)
		}
	}
	rest := strings.Join(calls[len(want):], "\n")
	for _, w := range []string{"docker import", "docker run --rm --privileged", "docker exec --privileged", "docker rm -f cnl-kindhost-probe-exec-", "docker rmi -f cnl-kindhost-probe:v1-",
		"sysctl -w fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288"} {
		if !strings.Contains(rest, w) {
			t.Errorf("no %q in\n%s", w, rest)
		}
	}
	var cfg struct {
		DefaultRuntime string                       `json:"default-runtime"`
		Runtimes       map[string]map[string]string `json:"runtimes"`
		Labels         []string                     `json:"labels"`
	}
	if err := json.Unmarshal([]byte(files.files[DaemonJSON]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultRuntime != "cnl" || cfg.Runtimes["cnl"]["path"] != WrapperPath || !reflect.DeepEqual(cfg.Labels, []string{OwnerLabel}) {
		t.Errorf("daemon.json %s", files.files[DaemonJSON])
	}
	if !strings.Contains(files.files[SysctlFile], "fs.inotify.max_user_instances = 512") {
		t.Errorf("%s: %q", SysctlFile, files.files[SysctlFile])
	}
}

func TestConfigureDaemonKeepsAUsersSettings(t *testing.T) {
	sys, files := fakeSystem(&command.Fake{})
	user := `{"log-driver":"journald","labels":["site=lab"],"runtimes":{"crun":{"path":"/usr/bin/crun"}}}`
	files.files[DaemonJSON] = user
	dc, err := readDaemonConfig(sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := configureDaemon(sys, dc); err != nil {
		t.Fatal(err)
	}
	if files.files[DaemonJSON+".cnilab-orig"] != user {
		t.Errorf("original not kept: %q", files.files[DaemonJSON+".cnilab-orig"])
	}
	after, err := readDaemonConfig(sys)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Owned || !after.RegistersWrapper {
		t.Errorf("%+v", after)
	}
	for _, w := range []string{`"log-driver": "journald"`, `"site=lab"`, `"crun"`, `"/usr/local/sbin/cnl-runc"`} {
		if !strings.Contains(files.files[DaemonJSON], w) {
			t.Errorf("daemon.json lacks %s:\n%s", w, files.files[DaemonJSON])
		}
	}
	// Rewriting kind-host's own file adds nothing twice and keeps no backup of it.
	delete(files.files, DaemonJSON+".cnilab-orig")
	if err := configureDaemon(sys, after); err != nil {
		t.Fatal(err)
	}
	if strings.Count(files.files[DaemonJSON], OwnerLabel) != 1 {
		t.Errorf("label twice:\n%s", files.files[DaemonJSON])
	}
	if _, ok := files.files[DaemonJSON+".cnilab-orig"]; ok {
		t.Error("backed up kind-host's own file")
	}
}

func TestCheckPrivilegedSeesTheCapsSignature(t *testing.T) {
	fake := &command.Fake{Responses: map[string]command.FakeResponse{
		"docker": {Func: func(c command.Cmd) (command.Result, error) {
			if c.Args[0] == "run" {
				msg := "docker: Error response from daemon: failed to create shim: OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted: unknown."
				return command.Result{}, &command.Error{Cmd: c.String(), Stderr: msg, Err: errors.New("exit status 125")}
			}
			return command.Result{}, nil
		}},
	}}
	sys, files := fakeSystem(fake)
	files.files[WrapperPath] = "\x7fELF"
	p := CheckPrivileged(context.Background(), sys)
	if !p.Checked || p.RunOK || !p.CapsError || p.OK() {
		t.Errorf("%+v", p)
	}
}

// TestThisHost runs kind-host's detection and its privileged check for real:
// after `make kind-host` the plan must leave Docker alone and both
// `docker run --privileged` and `docker exec --privileged` must work.
func TestThisHost(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts Docker containers")
	}
	ci := os.Getenv("CI") == "true"
	sys := Real()
	h, err := Detect(context.Background(), sys, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.Engine == nil {
		if ci {
			t.Fatalf("CI=true and no Docker engine answers (%s): `make kind-host` should have started one", h.EngineErr)
		}
		t.Skipf("no Docker engine answers (%s): run `make kind-host`", h.EngineErr)
	}
	if !h.Privileged.OK() {
		t.Fatalf("privileged containers fail: %s", h.Privileged.Detail)
	}
	for _, a := range PlanFor(h).Actions {
		switch a.Kind {
		case InstallDocker, InstallWrapper, ConfigureDaemon, StopDockerd, StartDockerd:
			t.Errorf("working engine, yet the plan would %s: %s", a.Kind, a.What)
		}
	}
}
