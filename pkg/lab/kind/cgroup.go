package kind

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/lab"
)

// cgroupDumpScript prints, in one `docker exec` per node, the files the
// footprint needs from the node container's cgroups: the node's own
// (the container's cgroup is the root of its private cgroup namespace)
// and every kubepods pod-level cgroup, whatever the cgroup driver names
// them (kubelet-kubepods-burstable-pod<uid>.slice with systemd,
// pod<uid> with cgroupfs). cgroup v1 reads cpuacct.usage,
// memory.usage_in_bytes and memory.stat; v2 reads cpu.stat, memory.current
// and memory.stat. head -v frames each file as "==> path <==". A pod that
// goes away between find and head only loses its own file, so the exit
// status is not the verdict: parseNodeCgroups is.
const cgroupDumpScript = `cd /sys/fs/cgroup || exit 1
set --
if [ -e cgroup.controllers ]; then
  for d in . $(find . -mindepth 1 -type d -name '*pod*'); do set -- "$@" "$d/cpu.stat" "$d/memory.current" "$d/memory.stat"; done
else
  for d in cpuacct $(find cpuacct -mindepth 1 -type d -name '*pod*'); do set -- "$@" "$d/cpuacct.usage"; done
  for d in memory $(find memory -mindepth 1 -type d -name '*pod*'); do set -- "$@" "$d/memory.usage_in_bytes" "$d/memory.stat"; done
fi
head -v -n 200 -- "$@"
exit 0
`

// parseDump splits head -v output into file contents by path.
func parseDump(out string) (map[string]string, error) {
	files := map[string]string{}
	cur := ""
	var b strings.Builder
	flush := func() {
		if cur != "" {
			files[cur] = strings.TrimSpace(b.String())
		}
		b.Reset()
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "==> ") && strings.HasSuffix(line, " <==") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(line, "==> "), " <==")
			if _, dup := files[cur]; dup {
				return nil, fmt.Errorf("cgroup dump lists %s twice", cur)
			}
			continue
		}
		if cur == "" {
			if strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("cgroup dump: %q before the first file header", line)
			}
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	flush()
	if len(files) == 0 {
		return nil, errors.New("cgroup dump holds no file")
	}
	return files, nil
}

// parseCounter reads a file holding one non-negative integer
// (cpuacct.usage, memory.usage_in_bytes, memory.current).
func parseCounter(data string) (float64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(data), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want one counter, got %q", data)
	}
	return float64(v), nil
}

// parseKeyValues reads "key value" lines (memory.stat, cpu.stat).
func parseKeyValues(data string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %q: want key value", line)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		out[f[0]] = float64(v)
	}
	return out, nil
}

// workingSet is usage minus inactive file pages, never below zero: the
// kubelet's (cAdvisor's) container_memory_working_set_bytes.
func workingSet(usage, inactiveFile float64) float64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// podUIDRE finds the pod UID in a pod-level cgroup's name; the systemd
// driver writes its dashes as underscores. Static pods (etcd, the API
// server) are named by their 32-hex config hash instead.
var podUIDRE = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(\.slice)?$`)

// podUIDOf returns the UID of a pod-level cgroup directory, "" for any
// other directory (kubepods, its QoS slices).
func podUIDOf(dir string) string {
	m := podUIDRE.FindStringSubmatch(path.Base(dir))
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "_", "-")
}

// nodeCgroups is one node's reading: the node container as a whole and
// every pod-level cgroup by pod UID.
type nodeCgroups struct {
	Node lab.Usage
	Pods map[string]lab.Usage
	// Incomplete are pod cgroups with CPU but no memory figures or the
	// reverse (a pod going away mid-dump): an error only for a pod the
	// footprint counts.
	Incomplete map[string]string
}

// parseNodeCgroups reads a node's cgroup dump, v1 or v2 by the files it
// holds. The node's own figures must be there; a pod cgroup with only
// half of its figures is listed as incomplete, never filled with a zero.
func parseNodeCgroups(out string) (nodeCgroups, error) {
	files, err := parseDump(out)
	if err != nil {
		return nodeCgroups{}, err
	}
	if _, v2 := files["./cpu.stat"]; v2 {
		clean := make(map[string]string, len(files))
		for f, data := range files {
			clean[path.Clean(f)] = data
		}
		return parseV2(clean)
	}
	return parseV1(files)
}

type partial struct {
	cpu, mem bool
	lab.Usage
}

// collect turns per-directory partial usages into the node and its pods;
// root is the directory key of the node itself.
func collect(dirs map[string]*partial, root string) (nodeCgroups, error) {
	n := nodeCgroups{Pods: map[string]lab.Usage{}, Incomplete: map[string]string{}}
	r, ok := dirs[root]
	if !ok || !r.cpu || !r.mem {
		return n, errors.New("cgroup dump lacks the node's own CPU or memory figures")
	}
	n.Node = r.Usage
	for dir, p := range dirs {
		if dir == root {
			continue
		}
		uid := podUIDOf(dir)
		if !p.cpu || !p.mem {
			n.Incomplete[uid] = fmt.Sprintf("cgroup %s has CPU %v, memory %v", dir, p.cpu, p.mem)
			continue
		}
		if _, dup := n.Pods[uid]; dup {
			return n, fmt.Errorf("pod %s has two cgroups", uid)
		}
		n.Pods[uid] = p.Usage
	}
	return n, nil
}

// parseV1 reads cpuacct/<dir>/cpuacct.usage (nanoseconds) and
// memory/<dir>/memory.usage_in_bytes with memory.stat's
// total_inactive_file (hierarchical: a pod cgroup's own counters are 0,
// its processes live in the container cgroups below).
func parseV1(files map[string]string) (nodeCgroups, error) {
	dirs := map[string]*partial{}
	get := func(dir string) *partial {
		if dirs[dir] == nil {
			dirs[dir] = &partial{}
		}
		return dirs[dir]
	}
	for file, data := range files {
		ctrl, rest, _ := strings.Cut(file, "/")
		dir := path.Dir(rest)
		if dir != "." && podUIDOf(dir) == "" {
			continue // kubepods and its QoS slices
		}
		switch {
		case ctrl == "cpuacct" && path.Base(rest) == "cpuacct.usage":
			ns, err := parseCounter(data)
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", file, err)
			}
			p := get(dir)
			p.cpu, p.CPUSeconds = true, ns/1e9
		case ctrl == "memory" && path.Base(rest) == "memory.usage_in_bytes":
			usage, err := parseCounter(data)
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", file, err)
			}
			statFile := path.Join("memory", dir, "memory.stat")
			stat, err := parseKeyValues(files[statFile])
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", statFile, err)
			}
			inactive, ok := stat["total_inactive_file"]
			if !ok {
				return nodeCgroups{}, fmt.Errorf("%s lacks total_inactive_file", statFile)
			}
			p := get(dir)
			p.mem, p.WorkingSetBytes = true, workingSet(usage, inactive)
		}
	}
	return collect(dirs, ".")
}

// parseV2 reads <dir>/cpu.stat's usage_usec and <dir>/memory.current with
// memory.stat's inactive_file (v2 counters are hierarchical).
func parseV2(files map[string]string) (nodeCgroups, error) {
	dirs := map[string]*partial{}
	for file, data := range files {
		dir := path.Dir(file)
		if dir != "." && podUIDOf(dir) == "" {
			continue
		}
		if dirs[dir] == nil {
			dirs[dir] = &partial{}
		}
		p := dirs[dir]
		switch path.Base(file) {
		case "cpu.stat":
			kv, err := parseKeyValues(data)
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", file, err)
			}
			us, ok := kv["usage_usec"]
			if !ok {
				return nodeCgroups{}, fmt.Errorf("%s lacks usage_usec", file)
			}
			p.cpu, p.CPUSeconds = true, us/1e6
		case "memory.current":
			usage, err := parseCounter(data)
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", file, err)
			}
			statFile := path.Join(dir, "memory.stat")
			stat, err := parseKeyValues(files[statFile])
			if err != nil {
				return nodeCgroups{}, fmt.Errorf("%s: %w", statFile, err)
			}
			inactive, ok := stat["inactive_file"]
			if !ok {
				return nodeCgroups{}, fmt.Errorf("%s lacks inactive_file", statFile)
			}
			p.mem, p.WorkingSetBytes = true, workingSet(usage, inactive)
		}
	}
	return collect(dirs, ".")
}
