// Command cnl-runc is an OCI runtime wrapper that Docker calls instead of
// runc. It removes from the spec every capability that its own bounding set
// lacks, then execs the real runc with the arguments unchanged.
//
// On hosts whose root bounding set lacks a capability (CAP_SYS_RESOURCE on
// the machines cnilab is developed on), `docker run --privileged` and
// `docker exec --privileged` ask for every capability the kernel knows and
// runc fails with "unable to apply caps". A capability the bounding set
// lacks can never be held anyway, so dropping it changes nothing else.
// `cnilab kind-host` installs this wrapper only on such hosts.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/cnilab/cnilab/pkg/kindhost/capspec"
)

// runcPaths are where Debian's runc package and upstream installs put runc.
var runcPaths = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"}

// probeFlag makes the wrapper a probe instead: `cnilab kind-host` puts this
// one static binary in a one-file image and runs it with `docker run
// --privileged` and `docker exec --privileged` to check that privileged
// containers start. runc has no such option, so it never reaches here from
// Docker.
const probeFlag = "--cnl-probe"

func main() {
	if len(os.Args) > 1 && os.Args[1] == probeFlag {
		os.Exit(probe(os.Args[2:]))
	}
	runc := ""
	for _, p := range runcPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			runc = p
			break
		}
	}
	if runc == "" {
		fmt.Fprintf(os.Stderr, "cnl-runc: no runc found in %v\n", runcPaths)
		os.Exit(127)
	}
	if err := stripMissing(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cnl-runc:", err)
		os.Exit(1)
	}
	argv := append([]string{runc}, os.Args[1:]...)
	err := syscall.Exec(runc, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "cnl-runc: exec %s: %v\n", runc, err)
	os.Exit(127)
}

// probe prints this process's effective capability mask ("caps") or sleeps
// ("sleep"), so a container made of this binary alone can be run and exec'd.
func probe(args []string) int {
	if len(args) == 1 && args[0] == "caps" {
		st, err := capspec.ReadStatus("/proc/self/status")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cnl-runc probe:", err)
			return 1
		}
		fmt.Printf("CapEff=%016x\n", uint64(st.Effective))
		return 0
	}
	if len(args) == 1 && args[0] == "sleep" {
		// Until the container is removed (docker rm -f kills it).
		for {
			ts := syscall.Timespec{Sec: 3600}
			_ = syscall.Nanosleep(&ts, nil)
		}
	}
	fmt.Fprintln(os.Stderr, "cnl-runc probe: usage: cnl-runc --cnl-probe caps|sleep")
	return 2
}

// stripMissing removes the capabilities missing from this process's bounding
// set from the spec files the runc call will read.
func stripMissing(args []string) error {
	files := capspec.RuncSpecFiles(args)
	if len(files) == 0 {
		return nil
	}
	st, err := capspec.ReadStatus("/proc/self/status")
	if err != nil {
		return err
	}
	last, err := capspec.ReadLastCap("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, c := range st.Bounding.Missing(last) {
		drop[c] = true
	}
	if len(drop) == 0 {
		return nil
	}
	for _, f := range files {
		if _, err := capspec.StripFile(f.Path, f.Doc, drop); err != nil {
			return err
		}
	}
	return nil
}
