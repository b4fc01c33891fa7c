#!/bin/sh
# Run the unit tests as an unprivileged user, as a newcomer without root
# would run `make unit`: the test binaries are built here (as root, with
# root's module and build caches), then run as nobody on a copy of the
# tree that nobody can read, each from its package's directory.
#
#   tools/unit-unprivileged.sh [USER]
#
# Tests that need root skip themselves; everything else must pass.
set -eu

user=${1:-nobody}
[ "$(id -u)" = 0 ] || { echo "unit-unprivileged: run as root (it switches to $user)" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"

work=$(mktemp -d /tmp/pvc-unit-unprivileged.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
chmod 0755 "$work"
git ls-files -z | (cd "$top" && xargs -0 cp --parents -t "$work")
mkdir "$work/.bin" "$work/.tmp" "$work/.home"

pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)
echo "$pkgs" | while read -r pkg dir; do
	[ -n "$pkg" ] || continue
	rel=.${dir#"$top"}
	name=$(echo "$rel" | tr ./ _-)
	CGO_ENABLED=0 go test -c -tags nethttpomithttp2 -o "$work/.bin/$name.test" "$pkg"
	echo "$rel $name" >>"$work/.bin/list"
done
chown -R "$user" "$work"

status=0
while read -r rel name; do
	echo "== $user: $rel"
	(cd "$work/$rel" && setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
		env -i PATH=/usr/bin:/bin HOME="$work/.home" TMPDIR="$work/.tmp" \
		"$work/.bin/$name.test" -test.count=1 -test.timeout=10m) || status=1
done <"$work/.bin/list"
exit $status
