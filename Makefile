# patroni-vip-check — build, test, package, measure.
# Every target runs from a clean clone; `make test` is what CI runs.

# One version for the binary and both packages, from git (packaging/version.sh).
VERSION ?= $(shell packaging/version.sh)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION)
# HTTP/2 is never spoken to Patroni; leaving it out of net/http makes the
# binary 0.4 MB smaller and its start-up cheaper.
TAGS    := nethttpomithttp2
export CGO_ENABLED = 0


.PHONY: build test unit unit-ci unit-race unit-arm64 lint fuzz e2e doctor-e2e systemd-e2e rootfs demo package package-test bench deps clean FORCE

# Two binaries: the check keepalived runs (and the watch), and the set-up
# commands (keepalived-conf, doctor), which the check runs when asked, so
# that keepalived's path carries none of their code (README, "Layout").
build: bin/patroni-vip-check bin/patroni-vip-check-setup

bin/patroni-vip-check: FORCE
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ .

bin/patroni-vip-check-setup: FORCE
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/patroni-vip-check-setup

FORCE:

# lint: gofmt, go vet (every file, the end-to-end ones included) and
# staticcheck (pinned in tools/go.mod); any finding fails.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change:" $$unformatted >&2; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(GO) tool -modfile=tools/go.mod staticcheck -tags e2e ./...

# unit: the Go tests: httptest and raw listeners, the command run as
# keepalived runs it, state files, log sinks (rsyslog when installed),
# fuzz seeds. Any user; tests that need root skip themselves.
unit: lint
	$(GO) test -count=1 ./...

# unit-ci: the unit tests as CI runs them: as root, where no test may skip
# (rsyslog and every root-only test are required), then again as an
# unprivileged user, as a newcomer runs `make unit`.
unit-ci: lint
	@mkdir -p bin
	PVC_REQUIRE_RSYSLOG=1 PVC_REQUIRE_ROOT=1 $(GO) test -count=1 -v ./... >bin/unit.log 2>&1 || \
		{ grep -E -- '^(\s*--- FAIL|FAIL|ok|panic)|_test.go:' bin/unit.log; exit 1; }
	@grep -E '^(ok|\?)' bin/unit.log
	@if grep -E -- '--- SKIP' bin/unit.log; then echo "unit-ci: tests were skipped while running as root (bin/unit.log)" >&2; exit 1; fi
	tools/unit-unprivileged.sh nobody

# unit-race: the unit tests under the race detector, as root. The command's
# own processes run race-built too, so a race in the watch or a single run
# fails its test (exit status 66). Time bounds are not checked under it.
# The race detector needs cgo (gcc, in APT_PACKAGES); the binaries we ship
# never do.
unit-race:
	CGO_ENABLED=1 PVC_REQUIRE_RSYSLOG=1 PVC_REQUIRE_ROOT=1 $(GO) test -race -count=1 ./...

# unit-arm64: what depends on the architecture, for the other one the
# packages ship: the kernel's struct sigaction (libcsignals.go), run under
# qemu-user.
unit-arm64:
	@mkdir -p bin
	GOARCH=arm64 $(GO) test -c -tags '$(TAGS)' -o bin/main-arm64.test .
	qemu-aarch64 bin/main-arm64.test -test.run '^TestLibcSignalsIgnored$$' -test.v

# test: everything CI runs. Needs root (network namespaces, apt-get). A root
# filesystem the suite needs is built while the packages are tested and the
# race detector runs (none of them times anything), so that the end-to-end
# suite finds it ready.
test: deps
	$(MAKE) unit-ci
	$(MAKE) -j3 --output-sync=target package-test rootfs unit-race unit-arm64 systemd-e2e
	$(MAKE) -j2 --output-sync=target e2e doctor-e2e

# e2e: a 3-node Patroni cluster with keepalived in network namespaces, the
# VIP moved by this check and the example keepalived.conf: switchovers, stop,
# kill -9, a hung REST API, a node cut off, the DCS down (without and with
# failsafe_mode), the primary cut from the DCS, quiet logs, a full CPU with
# clients writing through the VIP; the watch woken by PostgreSQL's files
# (--pgdata), its data directory unreadable, a replica rebuilt (reinit); a
# read VIP on a replica and an IPv6 VIP,
# each kept by an instance of the template unit (a replica that stops, lags
# or loses its watcher, switchovers); the raw answers of Patroni's health
# endpoints (check/testdata/patroni), the curl and vip-manager baselines; the
# VIP judged against each PostgreSQL's writes. Once per STACK, the stacks at
# the same time:
#   debian12  the host's packages: Patroni 3.0, PostgreSQL 15, etcd 3.4, keepalived 2.2
#   debian13  a Debian 13 root (make rootfs; built on first use): Patroni 4.0,
#             PostgreSQL 17, etcd 3.5, keepalived 2.3
#   sid       a Debian unstable root, pinned (e2e/rootfs/sid.packages): Patroni
#             4.1, PostgreSQL 18, etcd 3.5, keepalived 2.3.4. Not in the default:
#             a third stack at once overloads two cores; `make e2e STACK=sid`
#             runs it alone (about 8 minutes).
# `make e2e STACK=debian13` runs one. PVC_UPDATE_FIXTURES=1 rewrites the
# fixtures instead of comparing. Logs in e2e/out/. Root; about 10 minutes.
STACK ?= debian12 debian13
e2e: build
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) -s deps; fi
	PVC_STACKS="$(STACK)" PVC_BIN=$(CURDIR)/bin/patroni-vip-check $(GO) test -tags e2e -count=1 -v -timeout 30m ./e2e/

# doctor-e2e: each trap the doctor knows, shown with real keepalived 2.2.7 (the
# host's) and 2.3.3 (the Debian 13 root's, built by make rootfs) in network
# namespaces of its own: keepalived misbehaving with the bad configuration, the
# doctor flagging it, and passing it once fixed. And every set-up keepalived-conf
# writes (watch, one-shot, read VIP, --instance, IPv6) passing keepalived -t on
# both. Root; about 3 minutes.
doctor-e2e: build
	PVC_REQUIRE_ROOT=1 PVC_BIN=$(CURDIR)/bin/patroni-vip-check \
	PVC_DEBIAN13_ROOT=$$($(GO) run ./e2e/mkrootfs debian13) \
	$(GO) test -tags e2e -count=1 -timeout 15m ./internal/doctor/ ./internal/vipconf/

# systemd-e2e: packaging/patroni-vip-check.service run by a real systemd, Debian
# 12's (252) and Debian 13's (257), booted as PID 1 of a throwaway container per
# test (e2e/systemd), with Patroni stood in for by the test: READY=1, the
# watchdog's SIGKILL and the restart, ExecStopPost=, the journal, and the unit's
# sandbox against what the watch needs (its track file, a node_exporter textfile
# read by the real node_exporter, certificates of postgres, PostgreSQL's data
# directory with inotify); systemd-analyze security. SYSTEMD_STACK=debian12 runs
# one. Root and a cgroup v2 hierarchy; the root filesystems are built on first
# use like the Debian 13 one (about 40 s and 220 MB each). About a minute.
SYSTEMD_STACK ?= debian12 debian13
systemd-e2e: build
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) -s deps; fi
	PVC_REQUIRE_ROOT=1 PVC_SYSTEMD_STACKS="$(SYSTEMD_STACK)" PVC_BIN=$(CURDIR)/bin/patroni-vip-check \
		$(GO) test -tags e2e -count=1 -v -timeout 15m ./e2e/systemd/

# rootfs: build (or find in /var/cache/patroni-vip-check) the root filesystem
# of each STACK that runs from one: debootstrap from the mirror the host's apt
# uses, the packages of e2e/rootfs/STACK.packages; rebuilt when that list
# changes. `make e2e` builds it too when needed. Root; the first time about
# 1.5 minutes and 700 MB.
rootfs:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) -s deps; fi
	$(if $(filter-out debian12,$(STACK)),$(GO) run ./e2e/mkrootfs $(filter-out debian12,$(STACK)),@echo "rootfs: $(STACK) runs from the host's packages")

# demo: the same cluster for a newcomer: one switchover, the VIP moving;
# MODE=watch (the watch behind track_file) or MODE=oneshot (the vrrp_script).
MODE ?= watch
demo: build
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) -s deps; fi
	PVC_BIN=$(CURDIR)/bin/patroni-vip-check $(GO) run ./e2e/demo -mode $(MODE)

# package: one .deb and one .rpm in dist/ (GOARCH=arm64 for arm64), built
# by nfpm, pinned in tools/go.mod; the man page from packaging/*.1.md.
package: build
	packaging/build.sh bin/patroni-vip-check bin/patroni-vip-check-setup $(VERSION)

# package-test: contents, lintian, rpmlint, a real install and removal,
# and keepalived accepting the installed check (root, network namespace).
package-test: package
	packaging/test.sh

# fuzz: every fuzz target of the module (found by tools/fuzz.sh, not listed
# here) for FUZZTIME each; new findings land in the package's testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) tools/fuzz.sh

# bench: per-run cost and deadline adherence side by side with curl; the
# VIP's movement with real Patroni and keepalived on each BENCH_STACK (curl,
# the one-shot check, the watch behind track_file, vip-manager), through
# switchovers, crashes and the outages (the DCS down, the primary cut from
# it, Patroni frozen, a full CPU); how fast a read VIP leaves a replica that
# stops, crashes, lags or is promoted; and what each costs the node in CPU,
# the watch as shipped, on polls alone and with --pgdata at intervals from
# 500 ms to 2 s, and two watchers (a read VIP's beside the primary's).
# Each set-up waits for a quiet machine (-max-load). Root; about 3 hours for both
# stacks, estimated from its parts (never timed as a whole)
# (BENCH_STACK=sid measures the unstable stack).
# BENCH_BEFORE=path/to/an/earlier/build adds it to the per-run cost. Results
# in bench/out/results.md; BENCHMARKS.md says how to read them.
BENCH_STACK ?= debian12,debian13
BENCH_BEFORE ?=
bench: build deps
	mkdir -p bench/out
	$(GO) run ./bench -bin bin/patroni-vip-check $(if $(BENCH_BEFORE),-before $(BENCH_BEFORE)) -stack $(BENCH_STACK) \
		-out bench/out/results.md cost deadline vip readvip cpu

clean:
	rm -rf bin dist e2e/out bench/out

# deps: the Debian packages the end-to-end suite, the package tests and the
# benchmarks use; debootstrap builds the Debian 13 root (nothing of Debian 13
# is ever installed on the host). Installed only when missing; no service is
# started by the installation (a temporary policy-rc.d forbids it when none
# is present). qemu-user runs the arm64 tests; gcc the race detector.
APT_PACKAGES := patroni etcd-server etcd-client postgresql-15 keepalived iproute2 \
	rsyslog lintian rpm rpmlint hyperfine vip-manager curl time util-linux systemd debootstrap nftables qemu-user gcc libc6-dev
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install:" $$missing >&2; exit 1; fi; \
		tmp_policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d; tmp_policy=1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; rc=$$?; \
		if [ -n "$$tmp_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	fi
