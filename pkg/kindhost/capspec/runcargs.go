package capspec

import (
	"path/filepath"
	"strings"
)

// SpecFile is one JSON file a runc invocation will read capabilities from.
type SpecFile struct {
	Path string
	Doc  Document
}

// runc's global options that take a value (runc 1.1 main.go); the
// subcommand is the first argument that is neither one of these, its value,
// nor another option.
var runcGlobalValued = map[string]bool{"root": true, "log": true, "log-format": true, "criu": true, "rootless": true}

// The value-taking options of `runc create`, `runc run` and `runc exec`.
// Knowing them keeps an option's value (say `--env -b`) from being read as
// an option.
var runcSubValued = map[string]bool{
	"bundle": true, "b": true, "console-socket": true, "pid-file": true, "preserve-fds": true,
	"process": true, "p": true, "cwd": true, "env": true, "e": true, "user": true, "u": true,
	"additional-gids": true, "g": true, "process-label": true, "apparmor": true, "cap": true, "c": true, "cgroup": true,
}

// option splits "--name=value", "-name value" and "-n" into name and an
// inline value. ok is false for a positional argument.
func option(arg string) (name, value string, inline, ok bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	if n, v, found := strings.Cut(name, "="); found {
		return n, v, true, true
	}
	return name, "", false, true
}

// RuncSpecFiles returns the files whose capabilities runc will apply for
// this argument list (os.Args[1:] of a runc wrapper): the bundle's
// config.json for `create` and `run` (the working directory when no
// --bundle is given, as runc does), the --process file for `exec`. Every
// other subcommand reads none.
func RuncSpecFiles(args []string) []SpecFile {
	i := 0
	for i < len(args) {
		name, _, inline, ok := option(args[i])
		if !ok {
			break
		}
		if name == "" { // "--" ends the options
			i++
			break
		}
		i++
		if runcGlobalValued[name] && !inline {
			i++
		}
	}
	if i >= len(args) {
		return nil
	}
	sub := args[i]
	if sub != "create" && sub != "run" && sub != "exec" {
		return nil
	}
	var bundle, process string
	haveBundle := false
	for j := i + 1; j < len(args); j++ {
		name, value, inline, ok := option(args[j])
		if !ok || name == "" {
			// The container id; for exec what follows is the command and its
			// own arguments, which runc does not parse.
			break
		}
		if !runcSubValued[name] {
			continue
		}
		if !inline {
			if j+1 >= len(args) {
				break
			}
			j++
			value = args[j]
		}
		switch name {
		case "bundle", "b":
			bundle, haveBundle = value, true
		case "process", "p":
			process = value
		}
	}
	switch sub {
	case "create", "run":
		if !haveBundle {
			bundle = "."
		}
		return []SpecFile{{Path: filepath.Join(bundle, "config.json"), Doc: Bundle}}
	default:
		if process == "" {
			return nil
		}
		return []SpecFile{{Path: process, Doc: Process}}
	}
}
