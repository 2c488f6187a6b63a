package gobuild

import (
	"fmt"
	"slices"
	"strings"
)

// binary is one program Build can produce.
type binary struct {
	// name is the file name under CacheDir/bin/<key>/ and the key of Binaries.
	name string
	// pkg is the import path `go build` gets; "." means the wrapper module's
	// own main package.
	pkg string
}

// group is a set of binaries built by one `go build` invocation: they share
// a module and every build setting, so their common dependencies are
// compiled once.
type group struct {
	// module names the embedded wrapper module (a directory under modules/);
	// empty means the cnilab main module at Options.ModuleRoot.
	module  string
	cgo     bool
	tags    []string
	ldflags []string
	// versions are the pinned upstream versions the group is built from
	// ("module@version"); the wrapper's go.mod must require exactly these.
	versions []string
	binaries []binary
	// weight orders the groups so the slowest cold build starts first.
	weight int
}

// The Kubernetes version stamp. kubeadm derives every image tag it asks for
// from gitVersion, so an unstamped build (v0.0.0-master) would expect images
// that do not exist.
const (
	kubernetesMajor = "1"
	kubernetesMinor = "34"
	// kubernetesBuildDate is the v1.34.4 tag's time as the module proxy reports
	// it (.info Time): fixed, so the binaries do not depend on when they were
	// built.
	kubernetesBuildDate = "2026-02-10T12:53:36Z"
)

// kubernetesVersionPackages are the two packages that carry the version
// variables: component-base for the servers and kubeadm, client-go for
// kubectl's client half.
var kubernetesVersionPackages = []string{
	"k8s.io/component-base/version",
	"k8s.io/client-go/pkg/version",
}

// kubernetesLDFlags are the -X stamps for both version packages. gitCommit is
// the module's go.sum content hash: the module zip carries no git metadata,
// and the content hash names the exact source that was built.
func kubernetesLDFlags(gitCommit string) []string {
	flags := []string{"-s", "-w"}
	for _, p := range kubernetesVersionPackages {
		for _, kv := range [][2]string{
			{"gitVersion", KubernetesVersion},
			{"gitMajor", kubernetesMajor},
			{"gitMinor", kubernetesMinor},
			{"gitTreeState", "clean"},
			{"buildDate", kubernetesBuildDate},
			{"gitCommit", gitCommit},
		} {
			flags = append(flags, "-X", p+"."+kv[0]+"="+kv[1])
		}
	}
	return flags
}

// ciliumBuildDate is the v1.20.2 tag's time as the module proxy reports it
// (.info Time), the "git author date" field of Cilium's version stamp.
const ciliumBuildDate = "2026-09-15T20:03:11Z"

// ciliumLDFlags stamp pkg/version the way Cilium's Makefile.defs does:
// "<version> <revision> <author date>". FromString needs all three fields
// (and the Go version the init appends), or the agent reports an empty
// version. The revision is the module's go.sum content hash, as for
// Kubernetes: the zip has no git metadata.
func ciliumLDFlags(commit string) []string {
	return []string{"-s", "-w", "-X", "github.com/cilium/cilium/pkg/version.ciliumVersion=" +
		strings.TrimPrefix(CiliumVersion, "v") + " " + commit + " " + ciliumBuildDate}
}

// groups lists every build Build knows. kubernetesCommit and ciliumCommit
// are passed in because they are read from the embedded go.sums.
func groups(kubernetesCommit, ciliumCommit string) []group {
	stripped := []string{"-s", "-w"}
	cni := func(name, dir string) binary {
		return binary{name: name, pkg: "github.com/containernetworking/plugins/plugins/" + dir}
	}
	k8s := func(name string) binary { return binary{name: name, pkg: "k8s.io/kubernetes/cmd/" + name} }
	cilium := func(name, dir string) binary { return binary{name: name, pkg: "github.com/cilium/cilium/" + dir} }
	return []group{
		{
			// Makefile.defs builds with CGO off and tag osusergo. The agent
			// group is the slowest cold build of all (~10 min, 2.5 GB).
			module:   "cilium",
			tags:     []string{"osusergo"},
			ldflags:  ciliumLDFlags(ciliumCommit),
			versions: []string{"github.com/cilium/cilium@" + CiliumVersion},
			binaries: []binary{
				cilium("cilium-agent", "daemon"), cilium("cilium-dbg", "cilium-dbg"),
				cilium("cilium-cni", "plugins/cilium-cni"), cilium("cilium-health", "cilium-health"),
				cilium("cilium-health-responder", "cilium-health/responder"),
				cilium("cilium-mount", "tools/mount"), cilium("cilium-sysctlfix", "tools/sysctlfix"),
			},
			weight: 120,
		},
		{
			// operator/Makefile: the generic flavour is ./operator with only
			// the operator IPAM provider compiled in.
			module:   "cilium",
			tags:     []string{"osusergo", "ipam_provider_operator"},
			ldflags:  ciliumLDFlags(ciliumCommit),
			versions: []string{"github.com/cilium/cilium@" + CiliumVersion},
			binaries: []binary{cilium("cilium-operator-generic", "operator")},
			weight:   60,
		},
		{
			module:   "kubernetes",
			ldflags:  kubernetesLDFlags(kubernetesCommit),
			versions: []string{"k8s.io/kubernetes@" + KubernetesVersion},
			binaries: []binary{
				k8s("kubeadm"), k8s("kubelet"), k8s("kubectl"), k8s("kube-apiserver"),
				k8s("kube-controller-manager"), k8s("kube-scheduler"), k8s("kube-proxy"),
			},
			weight: 100,
		},
		{module: "coredns", ldflags: stripped, versions: []string{"github.com/coredns/coredns@" + CoreDNSVersion}, binaries: []binary{{name: "coredns", pkg: "."}}, weight: 50},
		{
			// The UDP backend's C proxy needs cgo on amd64; netgo and osusergo
			// keep the static glibc link free of NSS (getaddrinfo, getpwuid_r).
			module: "flannel",
			cgo:    true,
			tags:   []string{"netgo", "osusergo"},
			ldflags: []string{"-s", "-w", "-X", "github.com/flannel-io/flannel/pkg/version.Version=" + FlannelVersion,
				"-extldflags", "-static"},
			versions: []string{"github.com/flannel-io/flannel@" + FlannelVersion},
			binaries: []binary{{name: "flanneld", pkg: "github.com/flannel-io/flannel"}},
			weight:   30,
		},
		{
			// kube-router's Makefile builds with CGO off and stamps
			// pkg/version; the wrapper's go.mod carries kube-router's own
			// require list so every dependency is at upstream's version.
			module: "kuberouter",
			ldflags: []string{"-s", "-w",
				"-X", "github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=" + KubeRouterVersion,
				"-X", "github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=" + kubeRouterBuildDate},
			versions: []string{"github.com/cloudnativelabs/kube-router/v2@" + KubeRouterVersion, "github.com/osrg/gobgp/v3@" + GoBGPVersion},
			binaries: []binary{
				{name: "kube-router", pkg: "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"},
				{name: "gobgp", pkg: "github.com/osrg/gobgp/v3/cmd/gobgp"},
			},
			weight: 25,
		},
		{module: "etcd", ldflags: stripped, versions: []string{"go.etcd.io/etcd/server/v3@" + EtcdVersion}, binaries: []binary{{name: "etcd", pkg: "."}}, weight: 20},
		{
			module:   "cniplugins",
			ldflags:  stripped,
			versions: []string{"github.com/containernetworking/plugins@" + CNIPluginsVersion},
			binaries: []binary{
				cni("bridge", "main/bridge"), cni("host-local", "ipam/host-local"),
				cni("loopback", "main/loopback"), cni("portmap", "meta/portmap"),
			},
			weight: 10,
		},
		{module: "flannelcni", ldflags: stripped,
			versions: []string{"github.com/containernetworking/plugins@" + FlannelCNIPluginVersion}, binaries: []binary{cni("flannel-cni", "meta/flannel")}, weight: 8},
		{module: "flannel", ldflags: stripped, versions: []string{"github.com/flannel-io/flannel@" + FlannelVersion},
			binaries: []binary{{name: "install-conf", pkg: "github.com/flannel-io/flannel/cmd/install_conf"}}, weight: 5},
		{module: "", ldflags: stripped, binaries: []binary{{name: "cnilab", pkg: "./cmd/cnilab"}}, weight: 5},
		{module: "pause", ldflags: stripped, binaries: []binary{{name: "pause", pkg: "."}}, weight: 1},
	}
}

// Names returns the name of every binary Build knows, in build order.
func Names() []string {
	var names []string
	for _, g := range groups("", "") {
		for _, b := range g.binaries {
			names = append(names, b.name)
		}
	}
	return names
}

// selectGroups keeps, per group, only the binaries named; all when names is
// empty. An unknown name is an error rather than silently nothing.
func selectGroups(all []group, names []string) ([]group, error) {
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []group
	for _, g := range all {
		sel := g
		sel.binaries = nil
		for _, b := range g.binaries {
			if want[b.name] {
				sel.binaries = append(sel.binaries, b)
				delete(want, b.name)
			}
		}
		if len(sel.binaries) > 0 {
			out = append(out, sel)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("gobuild: unknown binaries %s (known: %s)", strings.Join(unknown, ", "), strings.Join(Names(), ", "))
	}
	return out, nil
}
