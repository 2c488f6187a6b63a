// Package kindhost prepares a machine for cnilab's kind provider: a Docker
// engine that answers and runs privileged containers, and inotify limits
// high enough for several clusters at once. Detect reads the machine,
// PlanFor decides what to change and why, Apply changes it. Every program
// runs through a command.Runner and every file through System, so the
// decisions are tested with fakes.
//
// The rule the plan keeps: a Docker engine that already answers and runs
// `docker run --privileged` is never touched.
package kindhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/kindhost/capspec"
)

// Paths and names kind-host uses on the host.
const (
	DaemonJSON  = "/etc/docker/daemon.json"
	WrapperPath = "/usr/local/sbin/cnl-runc"
	// RuntimeName is the name the wrapper is registered under in daemon.json.
	RuntimeName = "cnl"
	// OwnerLabel is a daemon label kind-host writes into daemon.json: it
	// marks a Docker configuration kind-host wrote, which it may rewrite
	// later. Docker shows it in `docker info` too.
	OwnerLabel  = "io.cnilab.kind-host=1"
	DockerdLog  = "/var/log/cnilab-dockerd.log"
	DockerdPID  = "/var/run/docker.pid"
	SysctlFile  = "/etc/sysctl.d/60-cnilab-kind.conf"
	inotifyDir  = "/proc/sys/fs/inotify/"
	statusPath  = "/proc/self/status"
	lastCapPath = "/proc/sys/kernel/cap_last_cap"
)

// Inotify limits kind's known-issues page recommends for several clusters.
const (
	WantInotifyInstances = 512
	WantInotifyWatches   = 524288
)

// System is the host as kind-host sees it: programs, files and identity.
type System struct {
	Run       command.Runner
	ReadFile  func(string) ([]byte, error)
	WriteFile func(string, []byte, os.FileMode) error
	LookPath  func(string) (string, error)
	Euid      func() int
	// Systemd reports whether systemd is the init system, so Docker is
	// started as its unit rather than by hand.
	Systemd func() bool
	// EngineTimeout bounds each `docker info`.
	EngineTimeout time.Duration
	// Source is the cnilab module directory the wrapper is built from
	// (empty when cnilab runs outside its source tree), GoBinary the go
	// command that builds it.
	Source   string
	GoBinary string
}

// Real is this machine.
func Real() System {
	return System{
		Run:       command.Exec{},
		ReadFile:  os.ReadFile,
		WriteFile: writeFileAtomic,
		LookPath:  exec.LookPath,
		Euid:      os.Geteuid,
		Systemd: func() bool {
			fi, err := os.Stat("/run/systemd/system")
			return err == nil && fi.IsDir()
		},
		EngineTimeout: 10 * time.Second,
		Source:        findSource(),
		GoBinary:      findGo(),
	}
}

// findSource returns the working directory when it is the root of the
// cnilab module (as under `make kind-host`).
func findSource() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(wd, "go.mod"))
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(first) != "module "+modulePath {
		return ""
	}
	if _, err := os.Stat(filepath.Join(wd, "cmd", "cnl-runc")); err != nil {
		return ""
	}
	return wd
}

const modulePath = "github.com/cnilab/cnilab"

func findGo() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return ""
}

// Engine is what `docker info` says about a Docker engine that answered.
type Engine struct {
	ServerVersion  string
	CgroupDriver   string
	CgroupVersion  string
	DefaultRuntime string
	Runtimes       []string
	Labels         []string
}

// OwnedByKindHost reports whether the engine runs with the configuration
// kind-host wrote.
func (e Engine) OwnedByKindHost() bool {
	for _, l := range e.Labels {
		if l == OwnerLabel {
			return true
		}
	}
	return false
}

// Caps is root's capability bounding set against what a privileged
// container asks for.
type Caps struct {
	Bounding capspec.Set
	LastCap  int
	// Missing are the capabilities `docker run --privileged` requests (every
	// capability up to cap_last_cap) that the bounding set lacks.
	Missing []string
}

// Privileged is the outcome of a real `docker run --privileged` and
// `docker exec --privileged` of a one-file probe image.
type Privileged struct {
	Checked bool
	RunOK   bool
	ExecOK  bool
	// CapsError is true when a failure carries runc's "unable to apply caps"
	// signature: the bounding-set gap, which the wrapper fixes.
	CapsError bool
	Detail    string
}

// OK is true when privileged containers start and privileged execs run.
func (p Privileged) OK() bool { return p.Checked && p.RunOK && p.ExecOK }

// DaemonConfig is what kind-host knows of /etc/docker/daemon.json.
type DaemonConfig struct {
	Exists bool
	// Owned is true when the file carries kind-host's OwnerLabel.
	Owned bool
	// RegistersWrapper is true when it registers the wrapper as the default
	// runtime.
	RegistersWrapper bool
	DefaultRuntime   string
	Raw              map[string]json.RawMessage
}

// Host is everything Detect found.
type Host struct {
	Root      bool
	DockerCLI string // path, empty when absent
	Dockerd   string // path, empty when absent
	AptGet    string
	Go        string // go command the wrapper is built with
	Source    string // cnilab source tree the wrapper is built from
	// DockerdPID is a running dockerd's pid from its pid file, 0 if none.
	DockerdPID int
	Systemd    bool
	Engine     *Engine // nil when no engine answered
	EngineErr  string  // why no engine answered
	Privileged Privileged
	Caps       Caps
	// WrapperInstalled is true when the wrapper binary is at WrapperPath.
	WrapperInstalled bool
	Daemon           DaemonConfig
	InotifyInstances int
	InotifyWatches   int
}

// Detect reads the machine. With probe it also runs a privileged container
// when an engine answers (a second or two); without it Privileged.Checked
// stays false.
func Detect(ctx context.Context, sys System, probe bool) (Host, error) {
	h := Host{Root: sys.Euid() == 0}
	look := func(name string, alt ...string) string {
		if p, err := sys.LookPath(name); err == nil {
			return p
		}
		for _, a := range alt {
			if _, err := sys.ReadFile(a); err == nil || !errors.Is(err, fs.ErrNotExist) {
				return a
			}
		}
		return ""
	}
	h.DockerCLI = look("docker")
	h.Dockerd = look("dockerd", "/usr/sbin/dockerd", "/usr/bin/dockerd")
	h.AptGet = look("apt-get")
	h.Go = sys.GoBinary
	h.Source = sys.Source
	if sys.Systemd != nil {
		h.Systemd = sys.Systemd()
	}

	statusData, err := sys.ReadFile(statusPath)
	if err != nil {
		return Host{}, err
	}
	st, err := capspec.ParseStatus(strings.NewReader(string(statusData)))
	if err != nil {
		return Host{}, fmt.Errorf("%s: %w", statusPath, err)
	}
	lastData, err := sys.ReadFile(lastCapPath)
	if err != nil {
		return Host{}, err
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(lastData)))
	if err != nil {
		return Host{}, fmt.Errorf("%s: %w", lastCapPath, err)
	}
	h.Caps = Caps{Bounding: st.Bounding, LastCap: last, Missing: st.Bounding.Missing(last)}

	if h.InotifyInstances, err = readInt(sys, inotifyDir+"max_user_instances"); err != nil {
		return Host{}, err
	}
	if h.InotifyWatches, err = readInt(sys, inotifyDir+"max_user_watches"); err != nil {
		return Host{}, err
	}

	if _, err := sys.ReadFile(WrapperPath); err == nil {
		h.WrapperInstalled = true
	}
	if h.Daemon, err = readDaemonConfig(sys); err != nil {
		return Host{}, err
	}

	h.DockerdPID = runningDockerd(sys)

	if h.DockerCLI != "" {
		h.Engine, h.EngineErr = engineInfo(ctx, sys)
		if h.Engine != nil && probe {
			h.Privileged = CheckPrivileged(ctx, sys)
		}
	} else {
		h.EngineErr = "no docker command"
	}
	return h, nil
}

// runningDockerd returns the pid in dockerd's pid file when that process is
// alive and is dockerd.
func runningDockerd(sys System) int {
	b, err := sys.ReadFile(DockerdPID)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	comm, err := sys.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
		return 0
	}
	return pid
}

func readInt(sys System, path string) (int, error) {
	b, err := sys.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func readDaemonConfig(sys System) (DaemonConfig, error) {
	b, err := sys.ReadFile(DaemonJSON)
	if errors.Is(err, fs.ErrNotExist) {
		return DaemonConfig{}, nil
	}
	if err != nil {
		return DaemonConfig{}, err
	}
	dc := DaemonConfig{Exists: true}
	if err := json.Unmarshal(b, &dc.Raw); err != nil {
		return DaemonConfig{}, fmt.Errorf("%s: %w", DaemonJSON, err)
	}
	var labels []string
	if raw, ok := dc.Raw["labels"]; ok {
		if err := json.Unmarshal(raw, &labels); err != nil {
			return DaemonConfig{}, fmt.Errorf("%s: labels: %w", DaemonJSON, err)
		}
	}
	for _, l := range labels {
		if l == OwnerLabel {
			dc.Owned = true
		}
	}
	if raw, ok := dc.Raw["default-runtime"]; ok {
		if err := json.Unmarshal(raw, &dc.DefaultRuntime); err != nil {
			return DaemonConfig{}, fmt.Errorf("%s: default-runtime: %w", DaemonJSON, err)
		}
	}
	var runtimes map[string]struct {
		Path string `json:"path"`
	}
	if raw, ok := dc.Raw["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return DaemonConfig{}, fmt.Errorf("%s: runtimes: %w", DaemonJSON, err)
		}
	}
	dc.RegistersWrapper = dc.DefaultRuntime == RuntimeName && runtimes[RuntimeName].Path == WrapperPath
	return dc, nil
}

// dockerInfo is the part of `docker info --format '{{json .}}'` kind-host
// reads.
type dockerInfo struct {
	ServerVersion  string
	CgroupDriver   string
	CgroupVersion  string
	DefaultRuntime string
	Runtimes       map[string]json.RawMessage
	Labels         []string
	ServerErrors   []string
}

// engineInfo asks the engine, bounded by sys.EngineTimeout. A nil engine
// comes with the reason.
func engineInfo(ctx context.Context, sys System) (*Engine, string) {
	timeout := sys.EngineTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := sys.Run.Run(ctx, command.Cmd{Name: "docker", Args: []string{"info", "--format", "{{json .}}"}})
	if err != nil {
		var ce *command.Error
		if errors.As(err, &ce) {
			if s := strings.TrimSpace(ce.Stderr); s != "" {
				return nil, lastLine(s)
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Sprintf("docker info did not answer within %s", timeout)
		}
		return nil, err.Error()
	}
	var info dockerInfo
	if err := json.Unmarshal(res.Stdout, &info); err != nil {
		return nil, fmt.Sprintf("docker info: %v", err)
	}
	if len(info.ServerErrors) > 0 {
		return nil, strings.Join(info.ServerErrors, "; ")
	}
	if info.ServerVersion == "" {
		return nil, "docker info reports no server version"
	}
	e := &Engine{ServerVersion: info.ServerVersion, CgroupDriver: info.CgroupDriver, CgroupVersion: info.CgroupVersion,
		DefaultRuntime: info.DefaultRuntime, Labels: info.Labels}
	for name := range info.Runtimes {
		e.Runtimes = append(e.Runtimes, name)
	}
	sortStrings(e.Runtimes)
	return e, ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
