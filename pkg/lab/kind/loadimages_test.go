package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

func TestParseSnapshotter(t *testing.T) {
	// `containerd config dump` of Debian bookworm's containerd 1.6.20 (the
	// offline node image's) with the node image's config.toml, captured on
	// this machine's containerd of the same package.
	v2 := readTestdata(t, "containerd-1.6.20-config-dump.toml")
	tests := []struct {
		name, dump, want, wantErr string
	}{
		{"containerd 1.6 (config version 2)", v2, "overlayfs", ""},
		// containerd 2.x (upstream kindest/node) keeps it under the CRI
		// images plugin.
		{"config version 3", "version = 3\n[plugins]\n  [plugins.\"io.containerd.cri.v1.images\"]\n    snapshotter = \"native\"\n", "native", ""},
		{"version 2 without the CRI snapshotter", "version = 2\n[plugins]\n  [plugins.\"io.containerd.cri.v1.images\"]\n    snapshotter = \"native\"\n", "", "names no CRI snapshotter"},
		{"unknown version", "version = 1\n", "", "config version 1, want 2, 3 or 4"},
		{"not TOML", "ctr: failed to dial\n", "", "containerd config dump"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSnapshotter([]byte(tc.dump))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseSnapshotter = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseSnapshotter = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// importFake answers docker for loadImages: save writes the archive,
// config dump prints the captured dump, and each node's import fails as
// often as failures[node] says (with stderr naming the attempt) before it
// succeeds, checking that every attempt streams the whole archive again.
type importFake struct {
	t        *testing.T
	dump     string
	failures map[string]int
	mu       sync.Mutex
	imports  map[string]int
}

func (f *importFake) respond(c command.Cmd) (command.Result, error) {
	switch {
	case c.Args[0] == "save":
		tar := c.Args[2]
		return command.Result{}, os.WriteFile(tar, []byte("archive"), 0o600)
	case len(c.Args) >= 3 && c.Args[2] == "containerd":
		return command.Result{Stdout: []byte(f.dump)}, nil
	case len(c.Args) >= 4 && c.Args[1] == "-i" && c.Args[3] == "ctr":
		node := c.Args[2]
		b, err := io.ReadAll(c.Stdin)
		if err != nil || string(b) != "archive" {
			f.t.Errorf("import into %s read %q, %v: want the whole archive", node, b, err)
		}
		if got := strings.Join(c.Args[3:], " "); got != "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -" {
			f.t.Errorf("import command %q", got)
		}
		f.mu.Lock()
		f.imports[node]++
		n := f.imports[node]
		f.mu.Unlock()
		if n <= f.failures[node] {
			stderr := fmt.Sprintf("ctr: failed to ingest \"index.json\" (try %d)\ncontext deadline exceeded\n", n)
			return command.Result{Stderr: []byte(stderr)}, &command.Error{Cmd: c.String(), Stderr: stderr, Err: errors.New("exit status 1")}
		}
		return command.Result{}, nil
	}
	f.t.Errorf("unexpected docker %v", c.Args)
	return command.Result{}, errors.New("unexpected")
}

func TestLoadImagesRetries(t *testing.T) {
	dump := readTestdata(t, "containerd-1.6.20-config-dump.toml")
	nodes := []string{"cnl-r-flannel-control-plane", "cnl-r-flannel-worker", "cnl-r-flannel-worker2"}
	tests := []struct {
		name       string
		failures   map[string]int
		wantErr    []string // all in the error
		notInErr   []string
		wantWaits  []time.Duration // the waits of each failing node
		wantImport map[string]int
		wantNotes  []string // one per node that loaded after a failure
	}{
		{"all at once", nil, nil, nil, nil, map[string]int{nodes[0]: 1, nodes[1]: 1, nodes[2]: 1}, nil},
		{"one node fails twice, then loads", map[string]int{nodes[1]: 2}, nil, nil, []time.Duration{2 * time.Second, 4 * time.Second},
			map[string]int{nodes[0]: 1, nodes[1]: 3, nodes[2]: 1},
			[]string{`images: import into cnl-r-flannel-worker succeeded at attempt 3 of 4 (attempt 1: docker exec -i cnl-r-flannel-worker ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -: exit status 1: stderr: ctr: failed to ingest "index.json" (try 1) context deadline exceeded; attempt 2: `}},
		{"a node fails every attempt", map[string]int{nodes[2]: 99},
			[]string{"load images into cnl-r-flannel-worker2: 4 of 4 attempts failed",
				`attempt 1: docker exec -i cnl-r-flannel-worker2 ctr`, `exit status 1: stderr: ctr: failed to ingest "index.json" (try 1) context deadline exceeded`,
				"(try 2)", "(try 3)", `attempt 4: `, "(try 4)"},
			[]string{"cnl-r-flannel-worker:", "cnl-r-flannel-control-plane"},
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second},
			map[string]int{nodes[0]: 1, nodes[1]: 1, nodes[2]: 4}, nil},
		{"two nodes fail: both reported", map[string]int{nodes[0]: 99, nodes[2]: 99},
			[]string{"load images into cnl-r-flannel-control-plane: 4 of 4", "load images into cnl-r-flannel-worker2: 4 of 4"}, nil,
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second},
			map[string]int{nodes[0]: 4, nodes[1]: 1, nodes[2]: 4}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &importFake{t: t, dump: dump, failures: tc.failures, imports: map[string]int{}}
			r := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Func: f.respond}}}
			var mu sync.Mutex
			var waits []time.Duration // all nodes' waits; nodes load in parallel
			retry := importRetry{Attempts: 4, Backoff: 2 * time.Second, Sleep: func(_ context.Context, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				waits = append(waits, d)
				return nil
			}}
			dir := t.TempDir()
			notes, err := loadImages(context.Background(), r, retry, dir, "cnl-r-flannel", []string{"cnilab/bench:v1"}, nodes)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("loadImages: %v", err)
			}
			if len(notes) != len(tc.wantNotes) {
				t.Errorf("notes %q, want %d", notes, len(tc.wantNotes))
			}
			for i := range min(len(notes), len(tc.wantNotes)) {
				if !strings.HasPrefix(notes[i], tc.wantNotes[i]) || !strings.Contains(notes[i], "(try 2)") {
					t.Errorf("note %q\nwant prefix %q and both failures", notes[i], tc.wantNotes[i])
				}
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v\nlacks %q", err, w)
				}
			}
			for _, w := range tc.notInErr {
				if err != nil && strings.Contains(err.Error(), w) {
					t.Errorf("error %v names %q, which loaded", err, w)
				}
			}
			for n, want := range tc.wantImport {
				if f.imports[n] != want {
					t.Errorf("%s: %d imports, want %d", n, f.imports[n], want)
				}
			}
			// Each failing node waits 2, 4, 8 s: the waits seen are those,
			// once per failing node.
			failing := 0
			for _, n := range tc.failures {
				if n > 0 {
					failing++
				}
			}
			if len(waits) != failing*len(tc.wantWaits) {
				t.Errorf("waits %v, want %v per failing node", waits, tc.wantWaits)
			}
			for _, d := range waits {
				ok := false
				for _, w := range tc.wantWaits {
					ok = ok || d == w
				}
				if !ok {
					t.Errorf("waited %s, want only %v", d, tc.wantWaits)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "cnl-r-flannel-images.tar")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("archive left behind: %v", err)
			}
		})
	}
}

// A cancelled run stops retrying at once and says so.
func TestLoadImagesStopsWhenCancelled(t *testing.T) {
	f := &importFake{t: t, dump: readTestdata(t, "containerd-1.6.20-config-dump.toml"), failures: map[string]int{"n1": 99}, imports: map[string]int{}}
	r := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Func: f.respond}}}
	ctx, cancel := context.WithCancel(context.Background())
	retry := importRetry{Attempts: 4, Backoff: time.Second, Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, d)
	}}
	_, err := loadImages(ctx, r, retry, t.TempDir(), "c", []string{"img"}, []string{"n1"})
	if err == nil || !strings.Contains(err.Error(), "attempt 2: not started: context canceled") || f.imports["n1"] != 1 {
		t.Fatalf("err = %v after %d imports; want one import, then the cancellation", err, f.imports["n1"])
	}
}

// The snapshotter is asked again when reading it failed (a node still
// starting), and its failure is one of the attempts' reasons.
func TestLoadImagesRetriesConfigDump(t *testing.T) {
	dumps := 0
	dump := readTestdata(t, "containerd-1.6.20-config-dump.toml")
	r := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Func: func(c command.Cmd) (command.Result, error) {
		switch {
		case c.Args[0] == "save":
			return command.Result{}, os.WriteFile(c.Args[2], []byte("archive"), 0o600)
		case c.Args[2] == "containerd":
			dumps++
			if dumps == 1 {
				return command.Result{}, &command.Error{Cmd: c.String(), Stderr: "Error response from daemon: container is restarting\n", Err: errors.New("exit status 1")}
			}
			return command.Result{Stdout: []byte(dump)}, nil
		}
		return command.Result{}, nil
	}}}}
	retry := importRetry{Attempts: 1, Sleep: func(context.Context, time.Duration) error { return nil }}
	_, err := loadImages(context.Background(), r, retry, t.TempDir(), "c", []string{"img"}, []string{"n1"})
	if err == nil || !strings.Contains(err.Error(), "1 of 1 attempts failed: attempt 1: docker exec n1 containerd config dump: exit status 1: stderr: Error response from daemon: container is restarting") {
		t.Fatalf("one attempt: err = %v", err)
	}
	dumps = 0
	retry.Attempts = 2
	if _, err := loadImages(context.Background(), r, retry, t.TempDir(), "c", []string{"img"}, []string{"n1"}); err != nil || dumps != 2 {
		t.Fatalf("two attempts: err = %v after %d dumps; want success after 2", err, dumps)
	}
}
