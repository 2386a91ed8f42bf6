# berth: see README.md. `make` builds every binary into ./bin.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin
# berth-runtime links a C constructor (internal/nsexec) and must run inside containers with no libc
# of the host around: it is linked statically, against musl, because static glibc's start-up (CPU
# feature and cache probing with cpuid, which traps in a VM) costs most of a millisecond per process
# and every container start runs the binary twice.
CC_STATIC ?= $(shell command -v musl-gcc || echo gcc)
STATIC := -tags 'netgo osusergo' -ldflags '-s -w -linkmode external -extldflags "-static"'
CNI_PLUGINS := bridge host-local loopback portmap bandwidth firewall tuning

.PHONY: all build
all: build
build:
	@mkdir -p $(BIN)
	@command -v musl-gcc >/dev/null || echo 'warning: musl-gcc not found (make deps installs musl-tools): linking against glibc, slower to start' >&2
	CGO_ENABLED=1 CC=$(CC_STATIC) $(GO) build -trimpath $(STATIC) -o $(BIN)/berth-runtime ./cmd/berth-runtime
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/berth ./cmd/berth
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/berth-cni ./cmd/berth-cni
	@# bin/cni: one hard link per plugin name (CNI runtimes exec plugins by name from CNI_PATH),
	@# renewed on every build because the build replaces berth-cni's inode.
	@mkdir -p $(BIN)/cni && for p in $(CNI_PLUGINS); do ln -f $(BIN)/berth-cni $(BIN)/cni/$$p; done

# ---- setup, tests, conformance, benchmarks, demo (see README.md)
.PHONY: deps test unit integration conformance conformance-quick lint bench demo clean
deps:
	@scripts/install-deps.sh

# make test: unit tests without root (-race), integration tests as root against the real kernel,
# and a quick pass of the conformance suite.
test: deps build lint unit integration conformance-quick

unit:
	@echo "== unit tests (no root, -race)"
	scripts/unit-tests.sh

# One package at a time (-p 1): packages share the host (mounts, network namespaces, nftables,
# cgroups), and the runtime's leak checks count the host's mounts, which another package's test
# creating a network namespace at the same moment would change.
integration:
	@echo "== integration tests (root, real kernel)"
	$(GO) test -p 1 -count=1 -timeout 20m ./...

conformance-quick: build
	@echo "== conformance (quick)"
	scripts/conformance/runtime-tools.sh --quick
	scripts/conformance/distribution-spec.sh --quick
	scripts/conformance/cni.sh --quick

conformance: build
	scripts/conformance/runtime-tools.sh
	scripts/conformance/distribution-spec.sh
	scripts/conformance/cni.sh

lint:
	@echo "== lint"
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench: build
	scripts/bench/runtime.sh
	scripts/bench/cni.sh
	scripts/bench/registry.sh
	scripts/bench/image.sh

demo: deps build
	scripts/demo.sh

clean:
	rm -rf $(BIN) .cache
