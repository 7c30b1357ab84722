# weft: build, test, benchmark and demo. Run as root on Debian; every
# target that needs system packages installs them itself (test/deps.sh).

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin
GO ?= go
VERSION ?= 0.1.0
LDFLAGS := -X main.Version=$(VERSION)

.PHONY: all build test unit integration lint fuzz bench demo clean deps go plugin soak screenshot sim

all: build

go:
	@bash test/ensure-go.sh

# Static (CGO_ENABLED=0): the Docker proxy bind-mounts this binary into
# containers, whose images may have no C library or another one.
build: go
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o bin/weft ./cmd/weft

deps:
	@bash test/deps.sh

# A simulated mesh of PEERS routers in one process on mesh/meshtest's
# in-memory network and virtual clock (test/sim): join, rest, churn. Not
# part of make test. Its last line is machine-readable:
# peers=N converge_s=X gossip_bytes_per_peer_s=Y route_ms=Z mem_per_peer_kib=W
PEERS ?= 1000
SIMFLAGS ?=
sim: go
	$(GO) test -c -o bin/sim.test ./test/sim
	@set -o pipefail; ./bin/sim.test -test.run '^TestSim$$' -test.timeout 60m -peers=$(PEERS) $(SIMFLAGS) | grep -v '^PASS$$'

# Every test: format and vet, unit tests (with the checked-in fuzz seed
# corpora), root tests of the OS glue, and the multi-host integration
# tests in network namespaces.
test: go deps build lint
	@bash test/deps.sh --docker
	@bash test/deps.sh --chromium
	WEFT_BIN=$(CURDIR)/bin/weft $(GO) test -count=1 -timeout 25m ./...

unit: go
	$(GO) test -count=1 -short ./...

lint: go
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Run every fuzz target for FUZZTIME each (seed corpora live in testdata/fuzz).
FUZZTIME ?= 20s
fuzz: go
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

# Throughput and latency of weft (plain and encrypted) against the kernel's
# veth and VXLAN, measured in the same run; DNS queries per second against
# dnsmasq; Go micro-benchmarks of the frame path, crypto, DNS and IPAM; the
# time from docker run to a first ping through the Docker plugin and through
# the Docker API proxy; and the proxy's overhead on docker ps and docker cp.
# The soak run (not part of test): three routers for SOAK (30m by default;
# e.g. make soak SOAK=5m) under mixed traffic, random restarts and link
# cuts; fails on a lost byte or a growing router (docs/reliability.md).
SOAK ?= 30m
soak: go deps build
	WEFT_BIN=$(CURDIR)/bin/weft $(GO) test -tags soak -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/soak -soak.duration=$(SOAK)

bench: go deps build
	$(GO) test -run '^$$' -bench . -benchmem ./router/... ./mesh/... ./secure/... ./nameserver/... ./ipam/... ./state/... ./daemon/... 2>/dev/null | grep -E '^(Benchmark|ok|PASS)' || true
	@pw=$$(mktemp); head -c 24 /dev/urandom | base64 > $$pw; \
	  WEFT_BIN=$(CURDIR)/bin/weft bash test/bench.sh --password-file $$pw; rc=$$?; rm -f $$pw; exit $$rc
	WEFT_BIN=$(CURDIR)/bin/weft bash test/bench-dns.sh
	@# docker run to the first answered ping across hosts, through the
	@# plugin (a weft network) and through the Docker API proxy, against
	@# Docker's own bridge network; and what the proxy adds to docker ps
	@# and to a docker cp of 100 MB. Real dockerds.
	@bash test/deps.sh --docker
	WEFT_BIN=$(CURDIR)/bin/weft $(GO) test -count=1 -timeout 20m -run '^$$' -bench 'DockerRunFirstPing|ProxyRunFirstPing|ProxyOverhead' -benchtime 5x ./test/integration/ | grep -E '^(Benchmark|ok|FAIL)'

# docs/img/topology.png: the topology page of a router of three, after
# one link was cut, as headless Chromium draws it (TestPage).
screenshot: go build
	@bash test/deps.sh --chromium
	WEFT_BIN=$(CURDIR)/bin/weft WEFT_SCREENSHOT=$(CURDIR)/docs/img/topology.png \
	  $(GO) test -count=1 -run '^TestPage$$' ./test/integration/

# A local demo mesh: three hosts as network namespaces.
demo: go deps build
	WEFT_BIN=$(CURDIR)/bin/weft bash test/demo.sh

# weft as Docker's managed plugin (dist/docker-plugin/README.md): a rootfs
# with a static weft and config.json in bin/docker-plugin, then `docker
# plugin create weftnet/weft:$(VERSION)` in the Docker at DOCKER_HOST,
# replacing a plugin of that name. PLUGIN=NAME:TAG names it otherwise.
plugin: go
	@bash test/docker-deps.sh
	VERSION=$(VERSION) GO=$(GO) bash dist/docker-plugin/build.sh $(PLUGIN)

clean:
	rm -rf bin
