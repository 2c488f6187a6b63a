# cnilab — make targets. `make lab-compare` and `make test` work on a fresh
# Debian machine as root: they install what they need first.

GO        ?= go
BIN       := bin/cnilab
CNIS      ?= host,flannel,calico,kube-router,cilium
SCENARIOS ?= throughput
PROFILE   ?= quick
# auto: kind when a Docker engine answers and every lab's kind images are
# there (cnilab images build), else the embedded netns provider; the run says
# which and why.
PROVIDER  ?= auto
OUT       ?= reports/runs
# Debian packages the netns lab runs: iperf3 measures, iptables/nftables/ipset
# carry the service proxies and policy, iproute2 is only used by tests to
# snapshot the host's configuration.
DEB_PKGS  := iperf3 iptables nftables ipset iproute2

.PHONY: all build deps lab-compare test test-unit bench lint published nightly clean kind-host images fuzz

all: build

build:
	$(GO) build -o $(BIN) ./cmd/cnilab

# ensure_debs takes "tool:package" pairs (a tool starting with / is a file
# to check) and installs the missing packages when root, else says what to
# install and exits 3.
define ensure_debs
missing=""; \
for t in $(1); do \
	case $${t%%:*} in /*) [ -e $${t%%:*} ] ;; *) command -v $${t%%:*} >/dev/null 2>&1 ;; esac || missing="$$missing $${t##*:}"; \
done; \
if [ -n "$$missing" ]; then \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing:$$missing — install them (apt-get install -y$$missing) and run as root"; exit 3; \
	fi; \
fi
endef

# deps installs the Debian packages the netns labs run.
deps:
	@$(call ensure_debs,iperf3:iperf3 iptables-restore:iptables nft:nftables ipset:ipset ip:iproute2)

# kind-host prepares this machine for kind labs (pkg/kindhost): installs
# docker.io when root and Docker is absent, starts dockerd when no engine
# answers, installs the cnl-runc wrapper only where root's bounding set lacks
# a capability --privileged requests, raises the inotify limits. It never
# changes a Docker that already runs privileged containers. Prints the plan
# first; `make kind-host KIND_HOST_FLAGS=--dry-run` only prints it.
kind-host: build
	./$(BIN) kind-host $(KIND_HOST_FLAGS)

# The main job: one lab per CNI on the embedded netns provider, measured
# with the quick profile; the report lands in $(OUT)/<run-id>/.
lab-compare: deps build
	./$(BIN) compare --provider $(PROVIDER) --profile $(PROFILE) --cni $(CNIS) --scenario $(SCENARIOS) --out $(OUT)

# images builds the offline image set kind labs run (node image with the
# Kubernetes components preloaded, flannel, bench) from Debian packages and Go
# module sources; cached by content, so an unchanged rebuild takes seconds.
# mmdebstrap makes the Debian root filesystems; gcc and a static libc build
# flanneld (its UDP backend needs cgo).
images: build
	@$(call ensure_debs,mmdebstrap:mmdebstrap gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev)
	./$(BIN) images build

# Unit tests and, as root, the real-kernel tests (throwaway namespaces) and
# the kind end-to-end tests (real clusters: the host is prepared and the
# image set built first). Under CI=true a kind path that cannot be set up
# fails the run; elsewhere the kind tests then skip with the reason.
test: deps
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory kind-host images || { \
			if [ "$$CI" = true ]; then exit 1; fi; \
			echo "kind path not available here: the kind tests will skip"; }; \
	fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

test-unit:
	$(GO) test -short -count=1 ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x ./pkg/lab/netns/

# fuzz runs every parser's fuzz target for FUZZTIME each, one after
# another (go test fuzzes one target per run): definition files, datasets,
# iperf3 JSON and the probes' arguments. A crasher lands in the package's
# testdata/fuzz/<target>/ and stays there as a regression seed.
# A new input's minimisation may take FUZZMINTIME; go's default (60 s) can
# stall a 60 s run on two cores.
FUZZTIME ?= 60s
FUZZMINTIME ?= 5s
FUZZ_TARGETS := ./pkg/config:FuzzParseLab ./pkg/config:FuzzParseScenario ./pkg/rank:FuzzParseEnvironments \
	./pkg/dataset:FuzzParse ./pkg/iperf:FuzzParse ./pkg/probe:FuzzArgs
fuzz:
	@failed=""; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $${t%%:*} || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz found crashers in:$$failed (seeds under testdata/fuzz/)"; exit 1; fi

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Regenerate reports/published/*.yaml from ../shared/published-benchmarks/*.csv.
published:
	$(GO) run ./pkg/dataset/gen

# Nightly: the full profile with services-scale; the JSON document is kept per
# night and compared with the previous night's (exit 1 on a regression
# beyond noise).
nightly: deps build
	mkdir -p $(OUT)/nightly
	prev=$$(ls $(OUT)/nightly/*.json 2>/dev/null | tail -1); \
	cur=$(OUT)/nightly/$$(date -u +%Y%m%d-%H%M%S).json; \
	./$(BIN) compare --profile full --cni $(CNIS) --scenario throughput,services-scale --out $(OUT) -o json > $$cur; \
	if [ -n "$$prev" ]; then ./$(BIN) diff $$prev $$cur; fi

clean:
	rm -rf bin
	-./$(BIN) down --all
