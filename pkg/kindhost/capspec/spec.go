package capspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// capabilitySets are the five lists of an OCI process's "capabilities"
// object. A capability left in any one of them makes runc try to apply it.
var capabilitySets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// Document says where the "capabilities" object sits in a JSON file.
type Document int

const (
	// Bundle is a bundle's config.json: {"process": {"capabilities": ...}}.
	Bundle Document = iota
	// Process is the file `runc exec --process` reads: {"capabilities": ...}.
	Process
)

func (d Document) String() string {
	if d == Process {
		return "process"
	}
	return "bundle config"
}

// Strip removes every capability named in drop from all five capability
// sets of doc. It returns the rewritten JSON and the names it removed
// (sorted, each once). Only the capabilities object is re-encoded; every
// other field is kept byte for byte. When nothing is removed the input is
// returned unchanged.
func Strip(data []byte, doc Document, drop map[string]bool) ([]byte, []string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", doc, err)
	}
	if doc == Process {
		caps, removed, err := stripCapabilities(top["capabilities"], drop)
		if err != nil || len(removed) == 0 {
			return data, nil, err
		}
		top["capabilities"] = caps
		out, err := json.Marshal(top)
		return out, removed, err
	}
	rawProc, ok := top["process"]
	if !ok || isNull(rawProc) {
		return data, nil, nil
	}
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(rawProc, &proc); err != nil {
		return nil, nil, fmt.Errorf("%s: process: %w", doc, err)
	}
	caps, removed, err := stripCapabilities(proc["capabilities"], drop)
	if err != nil || len(removed) == 0 {
		return data, nil, err
	}
	proc["capabilities"] = caps
	if top["process"], err = json.Marshal(proc); err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(top)
	return out, removed, err
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func stripCapabilities(raw json.RawMessage, drop map[string]bool) (json.RawMessage, []string, error) {
	if isNull(raw) {
		return raw, nil, nil
	}
	var caps map[string]json.RawMessage
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, nil, fmt.Errorf("capabilities: %w", err)
	}
	removed := map[string]bool{}
	for _, set := range capabilitySets {
		rawSet, ok := caps[set]
		if !ok || isNull(rawSet) {
			continue
		}
		var list []string
		if err := json.Unmarshal(rawSet, &list); err != nil {
			return nil, nil, fmt.Errorf("capabilities.%s: %w", set, err)
		}
		kept := make([]string, 0, len(list))
		for _, c := range list {
			if drop[c] {
				removed[c] = true
				continue
			}
			kept = append(kept, c)
		}
		if len(kept) == len(list) {
			continue
		}
		b, err := json.Marshal(kept)
		if err != nil {
			return nil, nil, err
		}
		caps[set] = b
	}
	if len(removed) == 0 {
		return raw, nil, nil
	}
	out, err := json.Marshal(caps)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(removed))
	for c := range removed {
		names = append(names, c)
	}
	sort.Strings(names)
	return out, names, nil
}

// StripFile rewrites the file at path with Strip. The new content replaces
// the old one atomically (a temporary file in the same directory, renamed
// over it) with the old file's mode, so runc never reads half a spec. The
// file is left untouched when nothing is removed.
func StripFile(path string, doc Document, drop map[string]bool) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, removed, err := Strip(data, doc, drop)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".cnl-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	return removed, nil
}
