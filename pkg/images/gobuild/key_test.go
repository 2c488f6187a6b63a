package gobuild

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
)

func TestBinaryKey(t *testing.T) {
	tc := toolchain{GOVERSION: "go1.26.8", GOOS: "linux", GOARCH: "amd64", GOAMD64: "v1"}
	g := group{module: "etcd", ldflags: []string{"-s", "-w"}, versions: []string{"go.etcd.io/etcd/server/v3@v3.6.5"}}
	src := groupSources{digest: digestFiles([]moduleFile{{path: "go.mod", content: []byte("module x\n")}})}
	b := binary{name: "etcd", pkg: "."}
	base := binaryKey(tc, g, src, b)

	tests := []struct {
		name   string
		change func(*toolchain, *group, *groupSources, *binary)
		same   bool
	}{
		{"unchanged", func(*toolchain, *group, *groupSources, *binary) {}, true},
		{"version", func(_ *toolchain, g *group, _ *groupSources, _ *binary) {
			g.versions = []string{"go.etcd.io/etcd/server/v3@v3.6.6"}
		}, false},
		{"module file content", func(_ *toolchain, _ *group, s *groupSources, _ *binary) {
			s.digest = digestFiles([]moduleFile{{path: "go.mod", content: []byte("module y\n")}})
		}, false},
		{"module file name", func(_ *toolchain, _ *group, s *groupSources, _ *binary) {
			s.digest = digestFiles([]moduleFile{{path: "go.sum", content: []byte("module x\n")}})
		}, false},
		{"ldflags", func(_ *toolchain, g *group, _ *groupSources, _ *binary) { g.ldflags = []string{"-s"} }, false},
		{"go version", func(t *toolchain, _ *group, _ *groupSources, _ *binary) { t.GOVERSION = "go1.26.9" }, false},
		{"GOARCH", func(t *toolchain, _ *group, _ *groupSources, _ *binary) { t.GOARCH = "arm64" }, false},
		{"GOOS", func(t *toolchain, _ *group, _ *groupSources, _ *binary) { t.GOOS = "darwin" }, false},
		{"cgo", func(_ *toolchain, g *group, _ *groupSources, _ *binary) { g.cgo = true }, false},
		{"tags", func(_ *toolchain, g *group, _ *groupSources, _ *binary) { g.tags = []string{"netgo"} }, false},
		{"binary name", func(_ *toolchain, _ *group, _ *groupSources, b *binary) { b.name = "etcd2" }, false},
		{"package", func(_ *toolchain, _ *group, _ *groupSources, b *binary) { b.pkg = "./cmd/etcd" }, false},
		// The group's other members do not matter: building a subset must
		// find the outputs a full build cached.
		{"other binaries in the group", func(_ *toolchain, g *group, _ *groupSources, _ *binary) {
			g.binaries = []binary{{name: "etcdctl", pkg: "x"}}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc2, g2, src2, b2 := tc, g, src, b
			g2.versions = slices.Clone(g.versions)
			tt.change(&tc2, &g2, &src2, &b2)
			if got := binaryKey(tc2, g2, src2, b2); (got == base) != tt.same {
				t.Errorf("key %s vs base %s: same = %t, want %t", got, base, got == base, tt.same)
			}
		})
	}
}

func TestMainModuleDigest(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n")
	write("cmd/cnilab/main.go", "package main\n")
	write("labs/flannel.yaml", "cni: flannel\n")
	// go list reports labs/flannel.yaml as embedded by cmd/cnilab.
	runner := &command.Fake{Responses: map[string]command.FakeResponse{"go": {Func: func(c command.Cmd) (command.Result, error) {
		real, _ := filepath.EvalSymlinks(root)
		return command.Result{Stdout: []byte("\n" + filepath.Join(real, "cmd/cnilab") + "\t../../labs/flannel.yaml\n")}, nil
	}}}}
	digest := func() string {
		t.Helper()
		d, err := mainModuleDigest(context.Background(), runner, root)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := digest()
	if digest() != base {
		t.Fatal("digest of an unchanged tree changed")
	}
	for _, tt := range []struct {
		file, content string
		changes       bool
	}{
		{"reports/runs/r1/report.md", "a run\n", false},
		{"bin/cnilab", "ELF", false},
		{".git/HEAD", "ref\n", false},
		{"README.md", "docs\n", false},
		{"pkg/x/x.go", "package x\n", true},
		{"go.sum", "example.com/y v1 h1:x\n", true},
		{"labs/flannel.yaml", "cni: flannel # edited\n", true},
	} {
		write(tt.file, tt.content)
		got := digest()
		if (got != base) != tt.changes {
			t.Errorf("after writing %s: digest changed = %t, want %t", tt.file, got != base, tt.changes)
		}
		base = got
	}
}

// goModRequires parses the require directives (block or single line) of a
// go.mod into module path -> version, and replace directives into
// old path -> new "path version" or "./dir".
func goModRequires(t *testing.T, gomod []byte) (requires, replaces map[string]string) {
	t.Helper()
	requires, replaces = map[string]string{}, map[string]string{}
	block := ""
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
			continue
		case line == ")":
			block = ""
			continue
		case strings.HasSuffix(line, "("):
			block = strings.TrimSpace(strings.TrimSuffix(line, "("))
			continue
		}
		verb := block
		if verb == "" {
			f := strings.Fields(line)
			verb, line = f[0], strings.TrimSpace(strings.TrimPrefix(line, f[0]))
		}
		f := strings.Fields(line)
		switch verb {
		case "require":
			if len(f) != 2 {
				t.Fatalf("malformed require %q", line)
			}
			requires[f[0]] = f[1]
		case "replace":
			i := slices.Index(f, "=>")
			if i != 1 || len(f) < 3 {
				t.Fatalf("malformed replace %q", line)
			}
			replaces[f[0]] = strings.Join(f[2:], " ")
		}
	}
	return requires, replaces
}

func TestEmbeddedModules(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range groups("h1:test", "h1:test") {
		if g.module == "" || seen[g.module] {
			continue
		}
		seen[g.module] = true
		t.Run(g.module, func(t *testing.T) {
			files, err := moduleFiles(g.module)
			if err != nil {
				t.Fatal(err)
			}
			byPath := map[string][]byte{}
			for _, f := range files {
				byPath[f.path] = f.content
				if strings.HasSuffix(f.path, ".go") {
					if _, err := parser.ParseFile(token.NewFileSet(), f.path, f.content, parser.AllErrors); err != nil {
						t.Errorf("%s does not parse: %v", f.path, err)
					}
				}
			}
			gomod, ok := byPath["go.mod"]
			if !ok {
				t.Fatal("no go.mod")
			}
			if !bytes.HasPrefix(gomod, []byte("module cnilab.local/gobuild/")) {
				t.Errorf("go.mod does not start with module cnilab.local/gobuild/...: %.60q", gomod)
			}
			requires, replaces := goModRequires(t, gomod)
			for _, mv := range g.versions {
				path, version, _ := strings.Cut(mv, "@")
				if got := requires[path]; got != version {
					t.Errorf("go.mod requires %s %q, want %q", path, got, version)
				}
				if len(requires) > 0 && !bytes.Contains(byPath["go.sum"], []byte(path+" "+version+" h1:")) {
					t.Errorf("go.sum has no content hash for %s %s", path, version)
				}
			}
			for old, repl := range replaces {
				if strings.HasPrefix(repl, "./") {
					sub, ok := byPath[strings.TrimPrefix(repl, "./")+"/go.mod"]
					if !ok {
						t.Errorf("replace %s => %s: no go.mod in the embedded directory", old, repl)
					} else if !bytes.HasPrefix(sub, []byte("module "+old+"\n")) {
						t.Errorf("replace %s => %s: its go.mod declares another module: %.80q", old, repl, sub)
					}
				}
			}
			switch g.module {
			case "kubernetes":
				// Every staging module must be pinned to the matching v0
				// release, or the module graph would pick whatever the
				// dependencies ask for.
				staging := 0
				for old, repl := range replaces {
					if strings.HasPrefix(old, "k8s.io/") {
						staging++
						if repl != old+" v0.34.4" {
							t.Errorf("replace %s => %s, want %s v0.34.4", old, repl, old)
						}
					}
				}
				for _, m := range []string{"k8s.io/api", "k8s.io/client-go", "k8s.io/component-base", "k8s.io/kubectl", "k8s.io/kubelet", "k8s.io/cri-client"} {
					if _, ok := replaces[m]; !ok {
						t.Errorf("no replace for staging module %s", m)
					}
				}
				if staging < 30 {
					t.Errorf("%d k8s.io replaces, want all 31 staging modules", staging)
				}
			case "flannel":
				if got := replaces["github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc"]; got != "./tencentstub" {
					t.Errorf("Tencent VPC SDK replaced by %q, want ./tencentstub", got)
				}
			case "cilium":
				// The pseudo-version Cilium pins is not served; v4.7.0 is.
				for old, want := range map[string]string{
					"github.com/osrg/gobgp/v4":        "github.com/osrg/gobgp/v4 v4.7.0",
					"sigs.k8s.io/mcs-api/controllers": "./mcsapi/controllers",
					"sigs.k8s.io/mcs-api/conformance": "./mcsapi/conformance",
				} {
					if got := replaces[old]; got != want {
						t.Errorf("replace %s => %q, want %q", old, got, want)
					}
				}
				if !bytes.Contains(byPath["mcsapi/controllers/annotations.go"], []byte(`DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"`)) {
					t.Error("the mcs-api controllers stand-in lacks DerivedServiceAnnotation")
				}
			}
		})
	}
}

func TestSourceHashes(t *testing.T) {
	for name, f := range map[string]func() (string, error){"kubernetes": kubernetesSourceHash, "cilium": ciliumSourceHash} {
		h, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "h1:") || len(h) < 40 || strings.ContainsAny(h, " \t") {
			t.Errorf("%s source hash = %q, want an h1: hash", name, h)
		}
	}
}

// TestCiliumVersionStamp checks the stamp has the three space-separated
// fields Cilium's version.FromString needs before the Go version.
func TestCiliumVersionStamp(t *testing.T) {
	flags := ciliumLDFlags("h1:abc=")
	x := flags[len(flags)-1]
	val, ok := strings.CutPrefix(x, "github.com/cilium/cilium/pkg/version.ciliumVersion=")
	if !ok {
		t.Fatalf("last flag %q does not set ciliumVersion", x)
	}
	if f := strings.Fields(val); len(f) != 3 || f[0] != "1.20.2" || f[1] != "h1:abc=" || f[2] != ciliumBuildDate {
		t.Errorf("ciliumVersion = %q, want \"1.20.2 h1:abc= %s\"", val, ciliumBuildDate)
	}
	if got := ldflagsArg(flags); !strings.Contains(got, "'github.com/cilium/cilium/pkg/version.ciliumVersion=1.20.2 h1:abc= ") {
		t.Errorf("ldflagsArg does not quote the stamp: %s", got)
	}
}

func TestNamesAndSelection(t *testing.T) {
	names := Names()
	want := []string{"kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
		"kube-proxy", "etcd", "coredns", "pause", "flanneld", "install-conf", "flannel-cni",
		"bridge", "host-local", "loopback", "portmap", "cnilab", "kube-router", "gobgp",
		"cilium-agent", "cilium-dbg", "cilium-cni", "cilium-health", "cilium-health-responder",
		"cilium-mount", "cilium-sysctlfix", "cilium-operator-generic"}
	got, wantSorted := slices.Clone(names), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(wantSorted)
	if !slices.Equal(got, wantSorted) {
		t.Errorf("Names() = %v, want (any order) %v", names, want)
	}
	sel, err := selectGroups(groups("h1:x", "h1:y"), []string{"loopback", "kubeadm"})
	if err != nil {
		t.Fatal(err)
	}
	var selected []string
	for _, g := range sel {
		selected = append(selected, binaryNames(g.binaries)...)
	}
	slices.Sort(selected)
	if !slices.Equal(selected, []string{"kubeadm", "loopback"}) {
		t.Errorf("selected %v, want kubeadm and loopback", selected)
	}
	if _, err := selectGroups(groups("h1:x", "h1:y"), []string{"loopback", "calico-node"}); err == nil || !strings.Contains(err.Error(), "calico-node") {
		t.Errorf("unknown name: err = %v, want one naming calico-node", err)
	}
}

func TestLDFlagsArg(t *testing.T) {
	tests := []struct {
		flags []string
		want  string
	}{
		{[]string{"-s", "-w"}, "-s -w"},
		{[]string{"-X", "a.b=c d"}, "-X 'a.b=c d'"},
		{[]string{"-extldflags", "-static"}, "-extldflags -static"},
	}
	for _, tt := range tests {
		if got := ldflagsArg(tt.flags); got != tt.want {
			t.Errorf("ldflagsArg(%q) = %q, want %q", tt.flags, got, tt.want)
		}
	}
	k := ldflagsArg(kubernetesLDFlags("h1:abc"))
	for _, p := range kubernetesVersionPackages {
		for _, kv := range []string{"gitVersion=v1.34.4", "gitMajor=1", "gitMinor=34", "gitTreeState=clean", "buildDate=2026-02-10T12:53:36Z", "gitCommit=h1:abc"} {
			if !strings.Contains(k, "-X "+p+"."+kv) {
				t.Errorf("kubernetes ldflags lack -X %s.%s: %s", p, kv, k)
			}
		}
	}
}

// fakeGo answers `go env`, `go list` and `go build` like the real tool,
// writing placeholder executables for builds, and counts the builds.
type fakeGo struct {
	mu     sync.Mutex
	builds []command.Cmd
}

func (f *fakeGo) respond(c command.Cmd) (command.Result, error) {
	args := c.Args
	if len(args) >= 2 && args[0] == "-C" {
		args = args[2:]
	}
	switch args[0] {
	case "env":
		return command.Result{Stdout: []byte(`{"GOAMD64":"v1","GOARCH":"amd64","GOOS":"linux","GOVERSION":"go1.26.8"}`)}, nil
	case "list":
		return command.Result{Stdout: []byte(c.Args[1] + "/cmd/cnilab\n")}, nil
	case "build":
		f.mu.Lock()
		f.builds = append(f.builds, c)
		f.mu.Unlock()
		o := slices.Index(args, "-o")
		out, pkgs := args[o+1], args[o+2:]
		write := func(p string) error { return os.WriteFile(p, []byte("#!/bin/true\n"), 0o755) }
		if !strings.HasSuffix(out, "/") {
			return command.Result{}, write(out)
		}
		for _, p := range pkgs {
			if err := write(filepath.Join(out, filepath.Base(p))); err != nil {
				return command.Result{}, err
			}
		}
		return command.Result{}, nil
	}
	return command.Result{}, errors.New("fakeGo: unexpected go " + strings.Join(c.Args, " "))
}

func TestBuildCachesByContent(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/cnilab/cnilab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "cmd/cnilab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cmd/cnilab/main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	realRoot, _ := filepath.EvalSymlinks(root)
	fg := &fakeGo{}
	opts := Options{CacheDir: t.TempDir(), ModuleRoot: realRoot, Runner: &command.Fake{Responses: map[string]command.FakeResponse{"go": {Func: fg.respond}}}}

	first, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(Names()) {
		t.Errorf("built %d binaries, want %d", len(first), len(Names()))
	}
	for name, path := range first {
		if filepath.Base(path) != name || !filepath.IsAbs(path) || !isBuilt(path) {
			t.Errorf("%s at %s: want an absolute executable named %s", name, path, name)
		}
	}
	// One go build per group: the seven Kubernetes binaries share one.
	if got, want := len(fg.builds), len(groups("h1:x", "h1:y")); got != want {
		t.Errorf("%d go build runs, want %d (one per group)", got, want)
	}
	for _, c := range fg.builds {
		cmdline := strings.Join(c.Args, " ")
		if !strings.Contains(cmdline, " build -trimpath ") {
			t.Errorf("go %s: want -trimpath", cmdline)
		}
		flanneld := c.Args[len(c.Args)-1] == "github.com/flannel-io/flannel"
		if flanneld != slices.Contains(c.Env, "CGO_ENABLED=1") {
			t.Errorf("go %s: env %v, want CGO_ENABLED=1 only for flanneld", cmdline, c.Env)
		}
	}

	fg.builds = nil
	second, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(fg.builds) != 0 {
		t.Errorf("unchanged rebuild ran go build %d times: %v", len(fg.builds), fg.builds)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("unchanged rebuild returned other paths:\n%v\n%v", first, second)
	}

	// Editing cnilab's source rebuilds cnilab and nothing else.
	if err := os.WriteFile(filepath.Join(root, "cmd/cnilab/main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(fg.builds) != 1 || !strings.HasSuffix(strings.Join(fg.builds[0].Args, " "), "./cmd/cnilab") {
		t.Errorf("after editing cnilab: builds %v, want exactly the cnilab build", fg.builds)
	}
	if third["cnilab"] == second["cnilab"] || third["kubeadm"] != second["kubeadm"] {
		t.Errorf("after editing cnilab: cnilab %s -> %s, kubeadm %s -> %s; want only cnilab's path to change",
			second["cnilab"], third["cnilab"], second["kubeadm"], third["kubeadm"])
	}
}

func TestBuildFailureCachesNothing(t *testing.T) {
	cache := t.TempDir()
	failing := &command.Fake{Responses: map[string]command.FakeResponse{"go": {Func: func(c command.Cmd) (command.Result, error) {
		if slices.Contains(c.Args, "build") {
			return command.Result{}, &command.Error{Cmd: "go build", Stderr: "undefined: runCProxy", Err: errors.New("exit status 1")}
		}
		return (&fakeGo{}).respond(c)
	}}}}
	_, err := Build(context.Background(), Options{CacheDir: cache, Runner: failing}, "flanneld")
	if err == nil || !strings.Contains(err.Error(), "flanneld") || !strings.Contains(err.Error(), "runCProxy") {
		t.Fatalf("err = %v, want the failing binary and the compiler's message", err)
	}
	fg := &fakeGo{}
	if _, err := Build(context.Background(), Options{CacheDir: cache, Runner: &command.Fake{Responses: map[string]command.FakeResponse{"go": {Func: fg.respond}}}}, "flanneld"); err != nil {
		t.Fatal(err)
	}
	if len(fg.builds) != 1 {
		t.Errorf("after a failed build, the next Build ran go build %d times, want 1 (nothing cached)", len(fg.builds))
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "bin")); len(entries) != 1 {
		t.Errorf("cache bin/ holds %d entries, want only the one key directory (scratch removed)", len(entries))
	}
}
