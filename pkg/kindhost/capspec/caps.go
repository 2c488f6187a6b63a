// Package capspec knows Linux capability names and bit numbers, reads a
// process's capability bounding set from /proc/<pid>/status, and removes
// capabilities from OCI runtime JSON (a bundle's config.json, or the process
// file `runc exec --process` reads).
//
// It exists because on some hosts root's bounding set lacks a capability
// (CAP_SYS_RESOURCE here) that `docker run --privileged` and
// `docker exec --privileged` still ask for, and runc then refuses the whole
// container with "unable to apply caps".
package capspec

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
)

// names maps a capability's bit number to its name, as in
// include/uapi/linux/capability.h.
var names = [...]string{
	0:  "CAP_CHOWN",
	1:  "CAP_DAC_OVERRIDE",
	2:  "CAP_DAC_READ_SEARCH",
	3:  "CAP_FOWNER",
	4:  "CAP_FSETID",
	5:  "CAP_KILL",
	6:  "CAP_SETGID",
	7:  "CAP_SETUID",
	8:  "CAP_SETPCAP",
	9:  "CAP_LINUX_IMMUTABLE",
	10: "CAP_NET_BIND_SERVICE",
	11: "CAP_NET_BROADCAST",
	12: "CAP_NET_ADMIN",
	13: "CAP_NET_RAW",
	14: "CAP_IPC_LOCK",
	15: "CAP_IPC_OWNER",
	16: "CAP_SYS_MODULE",
	17: "CAP_SYS_RAWIO",
	18: "CAP_SYS_CHROOT",
	19: "CAP_SYS_PTRACE",
	20: "CAP_SYS_PACCT",
	21: "CAP_SYS_ADMIN",
	22: "CAP_SYS_BOOT",
	23: "CAP_SYS_NICE",
	24: "CAP_SYS_RESOURCE",
	25: "CAP_SYS_TIME",
	26: "CAP_SYS_TTY_CONFIG",
	27: "CAP_MKNOD",
	28: "CAP_LEASE",
	29: "CAP_AUDIT_WRITE",
	30: "CAP_AUDIT_CONTROL",
	31: "CAP_SETFCAP",
	32: "CAP_MAC_OVERRIDE",
	33: "CAP_MAC_ADMIN",
	34: "CAP_SYSLOG",
	35: "CAP_WAKE_ALARM",
	36: "CAP_BLOCK_SUSPEND",
	37: "CAP_AUDIT_READ",
	38: "CAP_PERFMON",
	39: "CAP_BPF",
	40: "CAP_CHECKPOINT_RESTORE",
}

// Name returns the name of capability bit, or "CAP_<bit>" for a bit this
// table does not know.
func Name(bit int) string {
	if bit >= 0 && bit < len(names) {
		return names[bit]
	}
	return "CAP_" + strconv.Itoa(bit)
}

// Set is a capability mask as the kernel prints it in /proc/<pid>/status:
// bit n set means capability n is in the set.
type Set uint64

// Has reports whether capability bit is in s.
func (s Set) Has(bit int) bool { return bit >= 0 && bit < 64 && s&(1<<uint(bit)) != 0 }

// Missing returns the names of the capabilities 0..lastCap that s lacks, in
// bit order. lastCap is the kernel's /proc/sys/kernel/cap_last_cap: the
// capabilities a privileged container is given.
func (s Set) Missing(lastCap int) []string {
	var out []string
	for bit := 0; bit <= lastCap && bit < 64; bit++ {
		if !s.Has(bit) {
			out = append(out, Name(bit))
		}
	}
	return out
}

// Count is the number of capabilities in s.
func (s Set) Count() int { return bits.OnesCount64(uint64(s)) }

// Status is the capability part of /proc/<pid>/status.
type Status struct {
	Inheritable, Permitted, Effective, Bounding, Ambient Set
}

// ParseStatus reads the Cap* lines of a /proc/<pid>/status file. Every one
// of the five must be present and parse: a missing bounding set is an error,
// never an empty set.
func ParseStatus(r io.Reader) (Status, error) {
	var st Status
	fields := map[string]*Set{"CapInh": &st.Inheritable, "CapPrm": &st.Permitted, "CapEff": &st.Effective, "CapBnd": &st.Bounding, "CapAmb": &st.Ambient}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst, want := fields[key]
		if !ok || !want {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return Status{}, fmt.Errorf("status %s: %w", key, err)
		}
		*dst = Set(v)
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return Status{}, err
	}
	var absent []string
	for k := range fields {
		if !seen[k] {
			absent = append(absent, k)
		}
	}
	if len(absent) > 0 {
		sort.Strings(absent)
		return Status{}, fmt.Errorf("status has no %s line", strings.Join(absent, ", "))
	}
	return st, nil
}

// ReadStatus parses the capability lines of a status file such as
// /proc/self/status.
func ReadStatus(path string) (Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return Status{}, err
	}
	defer f.Close()
	st, err := ParseStatus(f)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// ReadLastCap reads the highest capability bit the running kernel knows
// (/proc/sys/kernel/cap_last_cap).
func ReadLastCap(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if n < 0 || n > 63 {
		return 0, fmt.Errorf("%s: %d is not a capability bit", path, n)
	}
	return n, nil
}
