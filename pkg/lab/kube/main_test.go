package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the PID files the local remote-runner tests leave in
// /tmp (in a pod they live and die with the pod).
func TestMain(m *testing.M) {
	code := m.Run()
	files, _ := filepath.Glob(fmt.Sprintf("/tmp/cnl-%d-*.pid", os.Getpid()))
	for _, f := range files {
		os.Remove(f)
	}
	os.Exit(code)
}
