# patroni-vip-check — build, test, package, measure.
# Every target runs from a clean clone; `make test` is what CI runs.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION)
export CGO_ENABLED = 0

.PHONY: build test unit fuzz e2e demo package package-test bench deps clean

build: bin/patroni-vip-check

bin/patroni-vip-check: FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ .

FORCE:

# unit: fast Go tests (httptest, raw listeners, CLI, state file, log sinks).
unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# test: everything CI runs. Needs root (network namespaces, apt-get).
test: deps unit e2e package-test

clean:
	rm -rf bin dist e2e/out bench/out
