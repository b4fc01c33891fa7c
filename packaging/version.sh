#!/bin/sh
# Print the version of this tree, one line, the same string for the binary's
# --version, the .deb and the .rpm.
#
# The string uses only digits, letters and ". + ~", starts with a digit and
# has no "-", so dpkg takes it as a native version and rpm as a Version tag
# without rewriting it, and both order builds the same way:
#
#   v1.2.3 tagged commit            1.2.3
#   v1.3.0-rc.1 tagged commit       1.3.0~rc.1       ("~" sorts before 1.3.0)
#   4 commits after v1.2.3          1.2.3+4.g1a2b3c4 (after 1.2.3, before 1.2.4)
#   no version tag yet, CHANGELOG.yml's newest release 0.2.0
#                                   0.2.0+17.g1a2b3c4 (17 = commits on HEAD)
#   uncommitted changes             ...+dirty, or ....dirty after a "+" part
#   no git, no commit, not a repo   0.0.0~dev
#
# Only tags that look like versions (v<digit>...) are considered.
set -eu

cd "$(dirname "$0")/.."

fallback=0.0.0~dev

# A source tree unpacked inside some other repository must not take its version.
top=$(git rev-parse --show-toplevel 2>/dev/null) || top=
if [ "$top" != "$(pwd -P)" ]; then
	echo "$fallback"
	exit 0
fi

desc=$(git describe --tags --always --dirty --abbrev=7 --match 'v[0-9]*' 2>/dev/null) || desc=
if [ -z "$desc" ]; then
	echo "$fallback"
	exit 0
fi

dirty=
case $desc in
*-dirty)
	dirty=1
	desc=${desc%-dirty}
	;;
esac

tag= count= hash=
if printf '%s\n' "$desc" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
	# <tag>-<commits since tag>-g<hash>
	hash=${desc##*-g}
	rest=${desc%-g*}
	count=${rest##*-}
	tag=${rest%-*}
elif printf '%s\n' "$desc" | grep -Eq '^v[0-9]'; then
	tag=$desc
elif printf '%s\n' "$desc" | grep -Eq '^[0-9a-f]+$'; then
	# --always fell back to the abbreviated commit: no version tag reachable.
	hash=$desc
	count=$(git rev-list --count HEAD 2>/dev/null) || count=0
else
	echo "$fallback"
	exit 0
fi

if [ -n "$tag" ]; then
	tag=${tag#v}
	base=${tag%%-*}
	pre=
	[ "$base" = "$tag" ] || pre=${tag#*-}
	# Anything but letters, digits and dots in the tag becomes a dot.
	base=$(printf '%s' "$base" | tr -c '0-9A-Za-z.' '.')
	pre=$(printf '%s' "$pre" | tr -c '0-9A-Za-z.' '.')
	version=$base${pre:+~$pre}
else
	# No tag (a clone without tags, or no release tagged yet): the newest
	# release that CHANGELOG.yml names, so that the build sorts after it.
	version=$(awk '$1 == "-" && $2 == "semver:" { print $3; exit }' CHANGELOG.yml 2>/dev/null) || version=
	printf '%s\n' "$version" | grep -Eqx '[0-9]+(\.[0-9]+)*' || version=0.0.0
fi

local_part=
[ -z "$hash" ] || local_part=$count.g$hash
[ -z "$dirty" ] || local_part=${local_part:+$local_part.}dirty
echo "$version${local_part:++$local_part}"
