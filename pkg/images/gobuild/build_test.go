package gobuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// countingRunner runs commands for real and records the `go build` ones.
type countingRunner struct {
	command.Exec
	mu     sync.Mutex
	builds []string
}

func (r *countingRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	if slices.Contains(c.Args, "build") {
		r.mu.Lock()
		r.builds = append(r.builds, strings.Join(c.Args, " "))
		r.mu.Unlock()
	}
	return r.Exec.Run(ctx, c)
}

func requireGo(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds with the real Go toolchain and the module proxy; skipped under -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH: ", err)
	}
}

func TestBuildSmallTargets(t *testing.T) {
	requireGo(t)
	ctx := context.Background()
	runner := &countingRunner{}
	opts := Options{CacheDir: t.TempDir(), Runner: runner, Log: testLog{t}}

	bins, err := Build(ctx, opts, "pause", "loopback")
	if err != nil {
		t.Fatal(err)
	}
	if len(runner.builds) != 2 {
		t.Errorf("cold build ran %d go builds, want 2: %v", len(runner.builds), runner.builds)
	}

	t.Run("loopback speaks CNI 0.4.0", func(t *testing.T) {
		cmd := exec.Command(bins["loopback"])
		cmd.Env = []string{"CNI_COMMAND=VERSION"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("loopback VERSION: %v", err)
		}
		if !strings.Contains(string(out), `"0.4.0"`) || !strings.Contains(string(out), `"1.0.0"`) {
			t.Errorf("loopback VERSION = %s, want 0.4.0 and 1.0.0 among supportedVersions", out)
		}
	})

	t.Run("pause exits 0 on TERM and reaps children", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("pause is a Linux program")
		}
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			p := exec.Command(bins["pause"])
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // let it install its handlers
			if err := p.Process.Signal(syscall.SIGCHLD); err != nil {
				t.Fatal(err)
			}
			if err := p.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pause after %v: %v, want exit 0", sig, err)
				}
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
				t.Errorf("pause ignored %v", sig)
			}
		}
	})

	t.Run("static", func(t *testing.T) {
		for name, path := range bins {
			if f, err := os.ReadFile(path); err != nil {
				t.Fatal(err)
			} else if strings.Contains(string(f), "/lib64/ld-linux") {
				t.Errorf("%s asks for a dynamic loader", name)
			}
		}
	})

	runner.builds = nil
	start := time.Now()
	again, err := Build(ctx, opts, "pause", "loopback")
	if err != nil {
		t.Fatal(err)
	}
	if len(runner.builds) != 0 {
		t.Errorf("warm rebuild ran go build: %v", runner.builds)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("warm rebuild took %s, want seconds at most", took)
	}
	for name, path := range bins {
		if again[name] != path {
			t.Errorf("warm rebuild: %s at %s, was %s", name, again[name], path)
		}
	}
}

// TestKubeadmStamp builds kubeadm into the user's cnilab cache (content
// addressed, so sharing it with `cnilab images build` is safe and keeps this
// test fast once the image set was built) and checks the version stamp that
// decides which images kubeadm asks for.
func TestKubeadmStamp(t *testing.T) {
	requireGo(t)
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Skip(err)
	}
	bins, err := Build(context.Background(), Options{CacheDir: cache, Runner: command.Exec{}, Log: testLog{t}}, "kubeadm")
	if err != nil {
		t.Fatal(err)
	}
	kubeadm := bins["kubeadm"]
	if filepath.Base(kubeadm) != "kubeadm" {
		t.Fatalf("kubeadm at %s", kubeadm)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(kubeadm, args...).Output()
		if err != nil {
			t.Fatalf("kubeadm %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("version", "-o", "short"); got != KubernetesVersion {
		t.Errorf("kubeadm version -o short = %q, want %q", got, KubernetesVersion)
	}
	got := strings.Split(run("config", "images", "list", "--kubernetes-version", KubernetesVersion), "\n")
	if !slices.Equal(got, KubeadmImages()) {
		t.Errorf("kubeadm config images list =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(KubeadmImages(), "\n"))
	}
}

// testLog sends Build's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
