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

.PHONY: all build deps browser-deps lab-compare test test-unit bench lint published nightly nightly-netns nightly-kind nightly-diff clean kind-host images fuzz

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

# browser-deps installs the headless Chromium the report.html tests render
# the page with (pkg/htmlreport): Debian's automation build, which makes no
# update or sign-in requests of its own.
browser-deps:
	@$(call ensure_debs,chromium-headless-shell:chromium-headless-shell)

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
	./$(BIN) images build $(IMAGES_FLAGS)

# Unit tests and, as root, the real-kernel tests (throwaway namespaces) and
# the kind end-to-end tests (real clusters: the host is prepared and the
# image set built first). Under CI=true a kind path that cannot be set up
# fails the run; elsewhere the kind tests then skip with the reason.
test: deps browser-deps
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
	@$(call ensure_debs,shellcheck:shellcheck)
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 .github/workflows/*.yml

# Regenerate reports/published/*.yaml from ../shared/published-benchmarks/*.csv.
published:
	$(GO) run ./pkg/dataset/gen

# Nightly, the steps .github/workflows/nightly.yml runs: each provider's run
# lands in $(NIGHTLY_DIR)/<provider>/<run-id>/ (results.json, report.md,
# report.html, measurements.jsonl); nightly-diff compares each provider's
# newest run with the one before it, or with the newest under NIGHTLY_PREV
# (the previous night's artifact), and exits 1 on a regression beyond
# noise. A run whose measurements partly failed exits 1 but is kept and
# still diffed. NIGHTLY_IMAGES=upstream pulls the pinned public images
# (GitHub runners); offline builds them here.
NIGHTLY_DIR       ?= $(OUT)/nightly
NIGHTLY_PROVIDERS ?= netns kind
NIGHTLY_PROFILE   ?= full
NIGHTLY_SCENARIOS ?= throughput,latency,services-scale
NIGHTLY_KIND_CNIS ?= flannel,cilium,kube-router
NIGHTLY_KIND_SCENARIOS ?= throughput,latency
NIGHTLY_IMAGES    ?= offline
NIGHTLY_PREV      ?=
# Repeats and window length over the profile's, when set: the nightly
# workflow asks for 6 repeats, where the median's interval covers >= 95 %
# (at the profiles' 3 it covers 75 %, and two runs of the same code here
# differed "beyond noise" in 13 of 206 figures).
NIGHTLY_REPEATS   ?=
NIGHTLY_DURATION  ?=
NIGHTLY_FLAGS      = $(if $(NIGHTLY_REPEATS),--repeats $(NIGHTLY_REPEATS)) $(if $(NIGHTLY_DURATION),--duration $(NIGHTLY_DURATION))

nightly: build
	@rc=0; for p in $(NIGHTLY_PROVIDERS); do $(MAKE) --no-print-directory nightly-$$p || rc=1; done; \
	$(MAKE) --no-print-directory nightly-diff || rc=1; exit $$rc

nightly-netns: deps build
	./$(BIN) compare --provider netns --profile $(NIGHTLY_PROFILE) --cni $(CNIS) --scenario $(NIGHTLY_SCENARIOS) $(NIGHTLY_FLAGS) --out $(NIGHTLY_DIR)/netns

nightly-kind: kind-host
	$(MAKE) --no-print-directory images IMAGES_FLAGS="--images $(NIGHTLY_IMAGES)"
	./$(BIN) compare --provider kind --profile $(NIGHTLY_PROFILE) --cni $(NIGHTLY_KIND_CNIS) --scenario $(NIGHTLY_KIND_SCENARIOS) $(NIGHTLY_FLAGS) --out $(NIGHTLY_DIR)/kind

nightly-diff: build
	@rc=0; for p in $(NIGHTLY_PROVIDERS); do \
		cur=$$(ls $(NIGHTLY_DIR)/$$p/*/results.json 2>/dev/null | tail -1); \
		if [ -n "$(NIGHTLY_PREV)" ]; then prev=$$(ls $(NIGHTLY_PREV)/$$p/*/results.json 2>/dev/null | tail -1); \
		else prev=$$(ls $(NIGHTLY_DIR)/$$p/*/results.json 2>/dev/null | tail -2 | head -1); fi; \
		if [ -z "$$cur" ]; then echo "nightly-diff: $$p: no finished run under $(NIGHTLY_DIR)/$$p"; rc=1; continue; fi; \
		if [ -z "$$prev" ] || [ "$$prev" = "$$cur" ]; then echo "nightly-diff: $$p: no earlier run to compare $$cur with"; continue; fi; \
		echo "== $$p: $$prev -> $$cur"; ./$(BIN) diff $$prev $$cur || rc=1; \
	done; exit $$rc

clean:
	rm -rf bin
	-./$(BIN) down --all
