# packetmortem: make help lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The diagnose make bench compares with; empty (no tag yet): the bench says how to give one.
BASELINE ?= $(shell git describe --tags --abbrev=0 2>/dev/null)
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: help build test unit vm-test demo generate check-generate bench deps

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the static binary ./diagnose (CGO_ENABLED=0, no clang needed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o diagnose ./cmd/diagnose

test: ## run every test; as root the end-to-end tests run too (CI=true makes them mandatory); lists every skip and why
	WITH_CLANG=1 ./.ci/deps
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/diagnose
	$(GO) test -count=1 -timeout 15m -json ./... | $(GO) run .ci/testsum.go

vm-test: ## as root: the end-to-end tests on Debian 12's own kernel (6.1), booted under qemu (.ci/vm)
	./.ci/vm-test

unit: ## run the unit tests (-short): as any user, with no root, BTF, clang or namespace
	$(GO) test -count=1 -short ./...

demo: build deps ## run diagnose on a path broken on purpose between two throwaway namespaces
	./testdata/demo.sh ./diagnose

generate: ## rebuild the BPF objects in bpf/ (needs clang-14, llvm-strip and libbpf-dev)
	$(GO) generate ./bpf/

check-generate: generate ## fail if the committed BPF objects are not what generate makes
	git diff --exit-code -- bpf/

bench: build ## as root: time to armed, flood overhead, CPU and memory, against bpftrace, perf and diagnose at BASELINE=<ref> (default: the last tag)
	WITH_BENCH=1 ./.ci/deps
	$(GO) run ./cmd/bench -diagnose ./diagnose -baseline '$(BASELINE)'
	$(GO) test -run '^$$' -bench . -benchtime 5x ./stages/hoststate/

deps: ## install what the tests and the demo need (iproute2, nftables, tshark, tcpdump, ethtool, tmux), as root
	./.ci/deps
