# berth: see README.md. `make` builds every binary into ./bin.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin
# berth-runtime links a C constructor (internal/nsexec) and must run inside containers with no libc
# of the host around: it is linked statically.
STATIC := -tags 'netgo osusergo' -ldflags '-s -w -linkmode external -extldflags "-static"'

.PHONY: all build
all: build
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath $(STATIC) -o $(BIN)/berth-runtime ./cmd/berth-runtime
