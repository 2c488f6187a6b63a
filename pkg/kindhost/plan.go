package kindhost

import (
	"fmt"
	"strings"
)

// ActionKind names one change kind-host makes.
type ActionKind string

const (
	InstallDocker   ActionKind = "install-docker"
	InstallWrapper  ActionKind = "install-wrapper"
	ConfigureDaemon ActionKind = "configure-daemon"
	StopDockerd     ActionKind = "stop-dockerd"
	StartDockerd    ActionKind = "start-dockerd"
	WaitDockerd     ActionKind = "wait-dockerd"
	RaiseInotify    ActionKind = "raise-inotify"
	VerifyDocker    ActionKind = "verify-privileged"
)

// Action is one step of a plan and why it is there.
type Action struct {
	Kind ActionKind
	What string
	Why  string
}

// Plan is what kind-host would do on a host. Blockers are what it will not
// do and what the user can do instead; Notes are what it leaves alone.
type Plan struct {
	Actions  []Action
	Blockers []string
	Notes    []string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

// Has reports whether the plan holds an action of kind k.
func (p Plan) Has(k ActionKind) bool {
	for _, a := range p.Actions {
		if a.Kind == k {
			return true
		}
	}
	return false
}

// PlanFor decides what kind-host does on h. It never touches an engine that
// answers and runs privileged containers, and it only reconfigures an
// engine that fails with the capability signature when kind-host set that
// engine up itself.
func PlanFor(h Host) Plan {
	var p Plan
	add := func(k ActionKind, what, why string) {
		p.Actions = append(p.Actions, Action{Kind: k, What: what, Why: why})
	}
	gap := len(h.Caps.Missing) > 0
	gapText := strings.Join(h.Caps.Missing, ", ")
	wrapperSteps := func(restart bool) {
		if h.Go == "" || h.Source == "" {
			p.Blockers = append(p.Blockers, fmt.Sprintf("the runtime wrapper is needed (root's bounding set lacks %s) but cannot be built here: run kind-host from the cnilab source tree with Go installed", gapText))
			return
		}
		add(InstallWrapper, "go build -o "+WrapperPath+" ./cmd/cnl-runc",
			fmt.Sprintf("root's capability bounding set lacks %s, which `docker run --privileged` and `docker exec --privileged` request; the wrapper removes it from the OCI spec before runc", gapText))
		if !h.Daemon.RegistersWrapper || !h.Daemon.Owned {
			if h.Daemon.Exists && !h.Daemon.Owned && h.Daemon.DefaultRuntime != "" && h.Daemon.DefaultRuntime != RuntimeName {
				p.Blockers = append(p.Blockers, fmt.Sprintf("%s sets default-runtime %q; kind-host will not replace it: register %s as a runtime and make it the default yourself", DaemonJSON, h.Daemon.DefaultRuntime, WrapperPath))
				return
			}
			what := "write " + DaemonJSON
			if h.Daemon.Exists && !h.Daemon.Owned {
				what = "add to " + DaemonJSON + " (original kept as " + DaemonJSON + ".cnilab-orig)"
			}
			add(ConfigureDaemon, what+`: runtime "cnl" = `+WrapperPath+`, "default-runtime": "cnl", label `+OwnerLabel,
				"make the wrapper Docker's default runtime, so kind's node containers and execs go through it")
		}
		if restart {
			add(StopDockerd, "stop the dockerd kind-host started", "dockerd reads "+DaemonJSON+" only at start")
		}
	}
	start := func(why string) {
		if h.Systemd {
			add(StartDockerd, "systemctl start docker", why)
		} else {
			add(StartDockerd, "nohup dockerd --config-file "+DaemonJSON+" >"+DockerdLog+" 2>&1 & (wait until `docker info` answers)", why+"; there is no systemd to start it")
		}
	}
	verify := func() {
		add(VerifyDocker, "docker run --rm --privileged and docker exec --privileged of a one-file "+ProbeImage+" image, removed afterwards",
			"kind runs every node container and every in-node command privileged")
	}

	switch {
	case h.Engine != nil && h.Privileged.OK():
		p.Notes = append(p.Notes, fmt.Sprintf("Docker %s answers and runs privileged containers: left as it is", h.Engine.ServerVersion))
	case h.Engine != nil && !h.Privileged.Checked:
		if gap && h.Engine.DefaultRuntime != RuntimeName {
			p.Notes = append(p.Notes, fmt.Sprintf("Docker %s answers; privileged containers were not checked (%s). Root's bounding set lacks %s, so `docker run --privileged` will likely fail with %q", h.Engine.ServerVersion, h.Privileged.Detail, gapText, capsSignature))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("Docker %s answers; privileged containers were not checked (%s): left as it is", h.Engine.ServerVersion, h.Privileged.Detail))
		}
	case h.Engine != nil && h.Privileged.CapsError && gap:
		owned := h.Engine.OwnedByKindHost() || h.Daemon.Owned
		if !owned {
			p.Blockers = append(p.Blockers, fmt.Sprintf(
				"Docker %s answers but `docker run --privileged` fails (%s): root's bounding set lacks %s. kind-host does not reconfigure a Docker it did not set up. To fix it: go build -o %s ./cmd/cnl-runc; add {\"runtimes\": {\"cnl\": {\"path\": \"%s\"}}, \"default-runtime\": \"cnl\"} to %s; restart dockerd",
				h.Engine.ServerVersion, capsSignature, gapText, WrapperPath, WrapperPath, DaemonJSON))
			break
		}
		if !h.Root {
			p.Blockers = append(p.Blockers, "the Docker kind-host configured needs the runtime wrapper: run kind-host as root")
			break
		}
		wrapperSteps(true)
		start("restart with the wrapper as the default runtime")
		verify()
	case h.Engine != nil:
		p.Blockers = append(p.Blockers, fmt.Sprintf("Docker %s answers but privileged containers fail: %s", h.Engine.ServerVersion, h.Privileged.Detail))
	default:
		if !h.Root {
			p.Blockers = append(p.Blockers, fmt.Sprintf("no Docker engine answers (%s): run kind-host as root to install and start one", h.EngineErr))
			break
		}
		if h.DockerCLI == "" || h.Dockerd == "" {
			if h.AptGet == "" {
				p.Blockers = append(p.Blockers, "Docker is not installed and there is no apt-get: install Docker")
				break
			}
			add(InstallDocker, "apt-get install -y docker.io", "no docker command or dockerd on this host")
		}
		if gap {
			wrapperSteps(false)
		}
		if h.DockerdPID > 0 {
			add(WaitDockerd, fmt.Sprintf("wait until dockerd (pid %d) answers", h.DockerdPID), "dockerd is running but does not answer yet ("+h.EngineErr+")")
		} else {
			start("no Docker engine answers (" + h.EngineErr + ")")
		}
		verify()
	}

	if h.InotifyInstances < WantInotifyInstances || h.InotifyWatches < WantInotifyWatches {
		if h.Root {
			add(RaiseInotify, fmt.Sprintf("sysctl fs.inotify.max_user_instances=%d fs.inotify.max_user_watches=%d (and %s)",
				max(h.InotifyInstances, WantInotifyInstances), max(h.InotifyWatches, WantInotifyWatches), SysctlFile),
				fmt.Sprintf("max_user_instances %d / max_user_watches %d cap how many kind clusters run at once (kind recommends %d / %d)",
					h.InotifyInstances, h.InotifyWatches, WantInotifyInstances, WantInotifyWatches))
		} else {
			p.Blockers = append(p.Blockers, fmt.Sprintf("fs.inotify.max_user_instances=%d max_user_watches=%d are below %d/%d: raise them as root", h.InotifyInstances, h.InotifyWatches, WantInotifyInstances, WantInotifyWatches))
		}
	}
	return p
}
