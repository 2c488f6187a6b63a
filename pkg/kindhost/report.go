package kindhost

import (
	"fmt"
	"io"
	"strings"
)

// Check is one line of a host report: a name, ok or not, and the detail.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Checks describes h for `cnilab doctor` and `cnilab kind-host`.
func (h Host) Checks() []Check {
	var out []Check
	switch {
	case h.Engine != nil:
		e := h.Engine
		detail := fmt.Sprintf("Docker %s, cgroup driver %s, cgroup v%s, default runtime %s", e.ServerVersion, e.CgroupDriver, e.CgroupVersion, e.DefaultRuntime)
		if e.OwnedByKindHost() {
			detail += " (configured by kind-host)"
		}
		out = append(out, Check{"docker engine", true, detail})
	case h.DockerCLI == "":
		out = append(out, Check{"docker engine", false, "Docker is not installed"})
	default:
		out = append(out, Check{"docker engine", false, "no engine answers: " + h.EngineErr})
	}
	if h.Engine != nil && (h.Privileged.Checked || h.Privileged.Detail != "") {
		out = append(out, Check{"docker --privileged", h.Privileged.OK(), h.Privileged.Detail})
	}
	bnd := fmt.Sprintf("CapBnd %016x", uint64(h.Caps.Bounding))
	if len(h.Caps.Missing) == 0 {
		out = append(out, Check{"capability bounding set", true, bnd + ": every capability --privileged requests"})
	} else {
		wrapped := h.Engine != nil && h.Engine.DefaultRuntime == RuntimeName && h.WrapperInstalled
		var wrapper string
		switch {
		case wrapped:
			wrapper = "Docker's default runtime is the wrapper " + WrapperPath + ", which removes it from every spec"
		case h.WrapperInstalled:
			wrapper = "the wrapper " + WrapperPath + " is installed but is not the running engine's default runtime"
		default:
			wrapper = "the wrapper " + WrapperPath + " is not installed"
		}
		out = append(out, Check{"capability bounding set", wrapped,
			fmt.Sprintf("%s lacks %s, which --privileged requests; %s", bnd, strings.Join(h.Caps.Missing, ", "), wrapper)})
	}
	out = append(out, Check{"inotify limits", h.InotifyInstances >= WantInotifyInstances && h.InotifyWatches >= WantInotifyWatches,
		fmt.Sprintf("max_user_instances %d (want ≥%d), max_user_watches %d (want ≥%d)", h.InotifyInstances, WantInotifyInstances, h.InotifyWatches, WantInotifyWatches)})
	return out
}

// Write prints the plan: one line per action with its reason, then what it
// will not do and what it leaves alone.
func (p Plan) Write(w io.Writer) {
	if p.Empty() && len(p.Blockers) == 0 {
		fmt.Fprintln(w, "kind-host plan: nothing to do")
	} else if !p.Empty() {
		fmt.Fprintln(w, "kind-host plan:")
	}
	for i, a := range p.Actions {
		fmt.Fprintf(w, "  %d. %s: %s\n     why: %s\n", i+1, a.Kind, a.What, a.Why)
	}
	for _, b := range p.Blockers {
		fmt.Fprintf(w, "  not done: %s\n", b)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
