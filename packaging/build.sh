#!/bin/sh
# Build dist/*.deb and dist/*.rpm of patroni-vip-check from a built binary.
#
#   packaging/build.sh BINARY SETUP [VERSION]
#
# BINARY is a static (CGO_ENABLED=0) linux build of the check, SETUP the
# same build of patroni-vip-check-setup (its keepalived-conf and doctor);
# the packages take their GOARCH (amd64, arm64...). VERSION defaults to packaging/version.sh's
# output and must be what the binary's --version prints, which is checked when
# the binary can run here. One .deb and one .rpm per architecture are left in
# dist/ (DIST_DIR to change it); older ones of the same architecture are
# removed first.
#
# Environment:
#   PVC_MAINTAINER     "Name <address>" recorded as Maintainer/Packager
#   SOURCE_DATE_EPOCH  timestamp for files in the packages and the man page;
#                      defaults to the time of the last commit, so that a
#                      commit gives the same packages wherever it is built
#
# Tools: nfpm and go-md2man, pinned in tools/go.mod, run with `go tool`.
set -eu

usage() {
	echo "usage: $0 BINARY SETUP [VERSION]" >&2
	exit 2
}
fail() {
	echo "build.sh: $*" >&2
	exit 1
}

[ $# -ge 2 ] && [ $# -le 3 ] || usage
absolute() {
	[ -f "$1" ] || fail "$1: no such file"
	echo "$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
}
binary=$(absolute "$1")
setup=$(absolute "$2")

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"

version=${3:-$(packaging/version.sh)}
dist=${DIST_DIR:-dist}
: "${PVC_MAINTAINER:=patroni-vip-check maintainers <maintainers@patroni-vip-check.invalid>}"

tool() {
	go tool -modfile=tools/go.mod "$@"
}

# The same characters version.sh produces: dpkg and rpm take them unchanged.
printf '%s\n' "$version" | grep -Eqx '[0-9][0-9A-Za-z.+~]*' ||
	fail "version '$version' is not usable for both dpkg and rpm"

# What each binary was built for and how, from the build information Go
# records in it (go version -m).
setting() {
	go version -m "$1" | awk -v k="$2" '$1 == "build" { split($2, kv, "="); if (kv[1] == k) print substr($2, length(k) + 2) }'
}
for b in "$binary" "$setup"; do
	go version -m "$b" >/dev/null || fail "$b: not a Go binary"
	[ "$(setting "$b" GOOS)" = linux ] || fail "$b: built for GOOS=$(setting "$b" GOOS), not linux"
	[ "$(setting "$b" CGO_ENABLED)" = 0 ] || fail "$b: not built with CGO_ENABLED=0 (keepalived runs it on hosts with any libc)"
done
arch=$(setting "$binary" GOARCH)
[ -n "$arch" ] || fail "$binary: no GOARCH in its build information"
[ "$(setting "$setup" GOARCH)" = "$arch" ] || fail "$setup is built for GOARCH=$(setting "$setup" GOARCH), $binary for $arch"

if [ "$arch" = "$(go env GOHOSTARCH)" ]; then
	got=$("$binary" --version) || fail "$binary --version failed"
	printf '%s\n' "$got" | tr ' \t' '\n\n' | grep -qxF -- "$version" ||
		fail "$binary --version says '$got', the packages would say '$version'; rebuild it with -X main.version=$version"
fi

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) || SOURCE_DATE_EPOCH=
	[ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$(date +%s)
fi
export SOURCE_DATE_EPOCH

for f in packaging/nfpm.yaml packaging/keepalived.conf packaging/keepalived-2.3.conf packaging/keepalived-watch.conf \
	packaging/patroni-vip-check.service packaging/patroni-vip-check.1.md \
	packaging/copyright packaging/tmpfiles.conf LICENSE CHANGELOG.yml; do
	[ -f "$f" ] || fail "$f is missing"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/patroni-vip-check-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

# Man page: markdown -> roff with go-md2man, then gzip -n (no name or time
# in the header, so the bytes depend on the sources only).
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$man_date/g" packaging/patroni-vip-check.1.md >"$stage/patroni-vip-check.1.md"
tool go-md2man -in "$stage/patroni-vip-check.1.md" -out "$stage/patroni-vip-check.1"
gzip -9n <"$stage/patroni-vip-check.1" >"$stage/patroni-vip-check.1.gz"

PVC_VERSION=$version PVC_ARCH=$arch PVC_BINARY=$binary PVC_SETUP=$setup PVC_MANPAGE=$stage/patroni-vip-check.1.gz PVC_MAINTAINER=$PVC_MAINTAINER
export PVC_VERSION PVC_ARCH PVC_BINARY PVC_SETUP PVC_MANPAGE PVC_MAINTAINER

mkdir -p "$dist"
for packager in deb rpm; do
	# nfpm's own file names: NAME_VERSION_ARCH.deb, NAME-VERSION-1.RPMARCH.rpm.
	case $packager/$arch in
	deb/*) old="patroni-vip-check_*_$arch.deb" ;;
	rpm/amd64) old="patroni-vip-check-*.x86_64.rpm" ;;
	rpm/arm64) old="patroni-vip-check-*.aarch64.rpm" ;;
	rpm/*) old="patroni-vip-check-*.$arch.rpm" ;;
	esac
	(cd "$dist" && rm -f $old)
	tool nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$dist/" >"$stage/nfpm.log" 2>&1 ||
		{ cat "$stage/nfpm.log" >&2; fail "nfpm $packager failed"; }
done

ls -l "$dist"/patroni-vip-check[_-]*
