package kindhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// Bounds of the waits in Apply.
const (
	engineStartTimeout = 90 * time.Second
	dockerdStopTimeout = 60 * time.Second
	pollInterval       = 250 * time.Millisecond
)

// Apply carries out plan on h, in order, logging each step to log. It stops
// at the first failure. A plan with blockers is applied as far as it goes;
// the caller reports the blockers.
func Apply(ctx context.Context, sys System, h Host, plan Plan, log io.Writer) error {
	for _, a := range plan.Actions {
		begin := time.Now()
		fmt.Fprintf(log, "kind-host: %s: %s\n", a.Kind, a.What)
		if err := apply(ctx, sys, h, a); err != nil {
			return fmt.Errorf("%s: %w", a.Kind, err)
		}
		fmt.Fprintf(log, "kind-host: %s done in %s\n", a.Kind, time.Since(begin).Round(10*time.Millisecond))
	}
	return nil
}

func apply(ctx context.Context, sys System, h Host, a Action) error {
	run := func(name string, args ...string) error {
		_, err := sys.Run.Run(ctx, command.Cmd{Name: name, Args: args, Env: []string{"DEBIAN_FRONTEND=noninteractive"}})
		return err
	}
	switch a.Kind {
	case InstallDocker:
		if err := run("apt-get", "update", "-qq"); err != nil {
			return err
		}
		return run("apt-get", "install", "-y", "-qq", "docker.io")
	case InstallWrapper:
		return installWrapper(ctx, sys)
	case ConfigureDaemon:
		return configureDaemon(sys, h.Daemon)
	case StopDockerd:
		return stopDockerd(ctx, sys)
	case StartDockerd:
		if h.Systemd {
			if err := run("systemctl", "start", "docker"); err != nil {
				return err
			}
		} else {
			// setsid + nohup + redirections: dockerd outlives cnilab and
			// holds none of its pipes, so the sh returns at once.
			cmdline := "setsid nohup dockerd"
			if _, err := sys.ReadFile(DaemonJSON); err == nil {
				cmdline += " --config-file " + DaemonJSON
			}
			cmdline += " </dev/null >>" + DockerdLog + " 2>&1 &"
			if err := run("sh", "-c", cmdline); err != nil {
				return err
			}
		}
		return waitEngine(ctx, sys)
	case WaitDockerd:
		return waitEngine(ctx, sys)
	case RaiseInotify:
		inst := max(h.InotifyInstances, WantInotifyInstances)
		watches := max(h.InotifyWatches, WantInotifyWatches)
		if err := run("sysctl", "-w", "fs.inotify.max_user_instances="+strconv.Itoa(inst), "fs.inotify.max_user_watches="+strconv.Itoa(watches)); err != nil {
			return err
		}
		conf := fmt.Sprintf("# Written by `cnilab kind-host`: kind clusters each hold inotify instances.\nfs.inotify.max_user_instances = %d\nfs.inotify.max_user_watches = %d\n", inst, watches)
		return sys.WriteFile(SysctlFile, []byte(conf), 0o644)
	case VerifyDocker:
		p := CheckPrivileged(ctx, sys)
		if !p.OK() {
			return errors.New(p.Detail)
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// buildWrapper builds cmd/cnl-runc from sys.Source into out, statically.
func buildWrapper(ctx context.Context, sys System, out string) error {
	if sys.Source == "" || sys.GoBinary == "" {
		return errors.New("no cnilab source tree or go command to build the wrapper with")
	}
	_, err := sys.Run.Run(ctx, command.Cmd{Name: sys.GoBinary, Args: []string{"-C", sys.Source, "build", "-trimpath", "-o", out, "./cmd/cnl-runc"}, Env: []string{"CGO_ENABLED=0"}})
	return err
}

// installWrapper builds the wrapper beside its final path and renames it
// into place, so a runc call in flight never execs half a binary.
func installWrapper(ctx context.Context, sys System) error {
	tmp := WrapperPath + ".cnl-new"
	if err := buildWrapper(ctx, sys, tmp); err != nil {
		return err
	}
	_, err := sys.Run.Run(ctx, command.Cmd{Name: "mv", Args: []string{"-f", tmp, WrapperPath}})
	return err
}

// configureDaemon adds the wrapper runtime, the default runtime and
// kind-host's label to daemon.json, keeping every other setting. A file
// kind-host did not write is saved next to it first.
func configureDaemon(sys System, dc DaemonConfig) error {
	cfg := map[string]any{}
	for k, v := range dc.Raw {
		cfg[k] = v
	}
	if dc.Exists && !dc.Owned {
		orig, err := sys.ReadFile(DaemonJSON)
		if err != nil {
			return err
		}
		if err := sys.WriteFile(DaemonJSON+".cnilab-orig", orig, 0o644); err != nil {
			return err
		}
	}
	runtimes := map[string]json.RawMessage{}
	if raw, ok := dc.Raw["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return fmt.Errorf("%s: runtimes: %w", DaemonJSON, err)
		}
	}
	runtimes[RuntimeName] = json.RawMessage(`{"path":` + strconv.Quote(WrapperPath) + `}`)
	cfg["runtimes"] = runtimes
	cfg["default-runtime"] = RuntimeName
	var labels []string
	if raw, ok := dc.Raw["labels"]; ok {
		if err := json.Unmarshal(raw, &labels); err != nil {
			return fmt.Errorf("%s: labels: %w", DaemonJSON, err)
		}
	}
	has := false
	for _, l := range labels {
		has = has || l == OwnerLabel
	}
	if !has {
		labels = append(labels, OwnerLabel)
	}
	cfg["labels"] = labels
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := sys.WriteFile(DaemonJSON, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return nil
}

// stopDockerd stops the dockerd in the pid file and waits until it is gone.
func stopDockerd(ctx context.Context, sys System) error {
	pid := runningDockerd(sys)
	if pid == 0 {
		return nil
	}
	if _, err := sys.Run.Run(ctx, command.Cmd{Name: "kill", Args: []string{"-TERM", strconv.Itoa(pid)}}); err != nil {
		return err
	}
	deadline := time.Now().Add(dockerdStopTimeout)
	for runningDockerd(sys) == pid {
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd (pid %d) still running %s after SIGTERM", pid, dockerdStopTimeout)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
	return nil
}

// waitEngine polls `docker info` until it answers, bounded.
func waitEngine(ctx context.Context, sys System) error {
	deadline := time.Now().Add(engineStartTimeout)
	for {
		e, why := engineInfo(ctx, sys)
		if e != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no Docker engine answered within %s (%s); see %s", engineStartTimeout, why, DockerdLog)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, creating the directory when needed.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".cnl-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func sortStrings(s []string) { sort.Strings(s) }
