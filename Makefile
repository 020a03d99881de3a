# Plexus developer entry points. `make test` is what CI runs (.ci/run).
GO ?= go

# Packages with goroutines, locks and shared state: run again under -race.
# Only the ones that exist yet are listed (the pattern would otherwise warn).
RACE_DIRS := channels router drains api redis syslog
RACE_PKGS := $(foreach d,$(RACE_DIRS),$(if $(wildcard $(d)/*.go),./$(d)/...))

FUZZTIME ?= 10s

# The version `plexus -version` prints: git describe of this checkout ("dev"
# outside git). make build passes it to cmd/plexus's version variable.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN ?= bin/plexus
# Container engine for make image (docker, podman or buildah).
ENGINE ?= docker
# podman and buildah: IMAGE_FLAGS=--format=docker keeps the HEALTHCHECK.
IMAGE_FLAGS ?=

.PHONY: run build image test test-deps vet unit race bench fuzz lint

run:
	$(GO) run ./cmd/plexus

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/plexus

# The container image (Dockerfile, docs/deploy.md), tagged plexus:VERSION.
image:
	$(ENGINE) build $(IMAGE_FLAGS) --build-arg VERSION=$(VERSION) -t plexus:$(VERSION) -t plexus:latest .

test: test-deps vet unit race

test-deps:
	@scripts/test-deps.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

race:
	$(if $(strip $(RACE_PKGS)),$(GO) test -race -count=1 $(RACE_PKGS),@echo "race: no concurrent packages yet")

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Runs every fuzz target for FUZZTIME (default 10s) each.
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go') 2>&1)"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
