#!/bin/bash
# Package tests for patroni-vip-check: what operators install is what
# keepalived needs. Tests the .deb and .rpm for this machine's architecture
# in dist/ (DIST_DIR to change it), as built by `make package`.
#
#   packaging/test.sh
#
# Needs root and Debian's dpkg, apt-get, lintian, rpm, rpmlint, keepalived,
# iproute2 and Go. It changes this machine: it installs the .deb for real
# (removing any patroni-vip-check package installed before), runs keepalived
# in a network namespace of its own (addresses in 198.51.100.0/24 only),
# and removes all of it again, also after a crash of an earlier run.
#
# Output: one "ok -" or "not ok -" line per assertion, then a count line.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top" || exit 1
dist=$(realpath -m "${DIST_DIR:-dist}") # relative to the top, as in build.sh
prefix=pvc-pkgtest # names of this test's temporary directories and namespaces

pass=0
failed=0
ok() {
	pass=$((pass + 1))
	echo "ok - $*"
}
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $*"
}
# check DESCRIPTION COMMAND...: one assertion; COMMAND explains a failure on stderr.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
fatal() {
	not_ok "$*"
	exit 1
}
note() { echo "# $*"; }

# same NAME WANT GOT: compare two texts, show the difference if any.
same() {
	if [ "$2" == "$3" ]; then return 0; fi
	echo "$1 differs (- wanted, + got):" >&2
	diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed -n 's/^[<>]/  &/p' | sed 's/^  </  -/; s/^  >/  +/' >&2
	return 1
}
# contains FILE PATTERN: FILE has a line matching the extended regex.
contains() {
	grep -Eq -- "$2" "$1" || {
		echo "no line matching /$2/ in $1" >&2
		return 1
	}
}
lacks() {
	! grep -Ei -- "$2" "$1" >&2 || {
		echo "^ lines matching /$2/ found in $1" >&2
		return 1
	}
}
# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# --- cleanup, including what a crashed earlier run left behind -------------

pids=()
namespaces=()
work=
locked=
cleanup() {
	local pid ns
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for ns in "${namespaces[@]}"; do
		remove_netns "$ns"
	done
	# Only the run that holds the lock installed the package.
	if [ -n "$locked" ] &&
		dpkg-query -W -f='${db:Status-Status}' patroni-vip-check 2>/dev/null | grep -qv '^not-installed$'; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q patroni-vip-check >/dev/null 2>&1
	fi
	[ -z "$work" ] || rm -rf "$work"
}
# remove_netns NAME: stop what still runs in it (keepalived, stand-ins), by PID.
remove_netns() {
	local pid
	ip netns list | awk '{print $1}' | grep -qx "$1" || return 0
	for pid in $(ip netns pids "$1"); do kill "$pid" 2>/dev/null; done
	sleep 0.5
	for pid in $(ip netns pids "$1"); do kill -9 "$pid" 2>/dev/null; done
	ip netns delete "$1"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || fatal "packaging/test.sh must run as root (it installs the package)"
for tool in dpkg-deb apt-get lintian rpm rpmlint rpm2archive cpio keepalived ip go file setpriv flock systemd-tmpfiles systemd-analyze man; do
	command -v "$tool" >/dev/null || fatal "$tool is missing (make deps installs what the tests need)"
done

lockdir=/run/lock
[ -d "$lockdir" ] || lockdir=/tmp
# Background processes below close fd 9, so that what a killed run leaves
# running does not hold the lock against the run that cleans it up.
exec 9>"$lockdir/$prefix.lock"
flock -n 9 || fatal "another packaging/test.sh is running"
locked=1

for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do
	note "removing namespace $ns left by an earlier run"
	remove_netns "$ns"
done
for d in /tmp/"$prefix".*; do
	[ -e "$d" ] || continue
	note "removing $d left by an earlier run"
	rm -rf "$d"
done
if dpkg-query -W -f='${db:Status-Status}' patroni-vip-check 2>/dev/null | grep -qv '^not-installed$'; then
	note "purging the patroni-vip-check package installed before this test"
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q patroni-vip-check >/dev/null ||
		fatal "cannot purge the installed patroni-vip-check"
fi

work=$(mktemp -d "/tmp/$prefix.XXXXXX")
chmod 0755 "$work" # lintian and rpmlint run as nobody and read from here
started=$SECONDS

# --- the packages ----------------------------------------------------------

deb_arch=$(dpkg --print-architecture)
case $deb_arch in
amd64) rpm_arch=x86_64 ;;
arm64) rpm_arch=aarch64 ;;
*) rpm_arch=$deb_arch ;;
esac
debs=("$dist"/patroni-vip-check_*_"$deb_arch".deb)
rpms=("$dist"/patroni-vip-check-*."$rpm_arch".rpm)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] ||
	fatal "exactly one patroni-vip-check .deb for $deb_arch in $dist (run make package), found: ${debs[*]}"
[ ${#rpms[@]} = 1 ] && [ -f "${rpms[0]}" ] ||
	fatal "exactly one patroni-vip-check .rpm for $rpm_arch in $dist (run make package), found: ${rpms[*]}"
deb=${debs[0]}
rpm=${rpms[0]}
note "testing $(basename "$deb") and $(basename "$rpm")"

mkdir "$work/deb" "$work/rpm"
dpkg-deb -x "$deb" "$work/deb" || fatal "dpkg-deb -x $deb"
# Not rpm2cpio | cpio: nfpm writes absolute names into the rpm's cpio payload
# (a plain cpio -id would unpack it into this machine's /) and rpm2cpio exits
# 1 on its payloads. rpm2archive writes a tar with relative names.
rpm2archive -n <"$rpm" | tar -x -C "$work/rpm" || fatal "unpacking $rpm"
binary=$work/deb/usr/bin/patroni-vip-check
setup=$work/deb/usr/libexec/patroni-vip-check/patroni-vip-check-setup

version=$(dpkg-deb -f "$deb" Version)
check "the version ($version) is valid for dpkg and rpm" \
	grep -Eqx '[0-9][0-9A-Za-z.+~]*' <<<"$version"
check "the binary's --version names the .deb's version" \
	same "--version" "patroni-vip-check $version" "$("$binary" --version)"
check "the .rpm has the .deb's version, release 1" \
	same "rpm version" "$version-1" "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm" 2>/dev/null)"
check "the files are named by version and architecture" \
	same "file names" "patroni-vip-check_${version}_$deb_arch.deb patroni-vip-check-$version-1.$rpm_arch.rpm" \
	"$(basename "$deb") $(basename "$rpm")"
check "the binary is a static executable" \
	grep -q 'statically linked' <<<"$(file -b "$binary")"
check "the set-up binary is a static executable" \
	grep -q 'statically linked' <<<"$(file -b "$setup")"

want_deb='drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/patroni-vip-check
drwxr-xr-x root/root ./usr/lib/
drwxr-xr-x root/root ./usr/lib/systemd/
drwxr-xr-x root/root ./usr/lib/systemd/system/
-rw-r--r-- root/root ./usr/lib/systemd/system/patroni-vip-check.service
-rw-r--r-- root/root ./usr/lib/systemd/system/patroni-vip-check@.service
drwxr-xr-x root/root ./usr/lib/tmpfiles.d/
-rw-r--r-- root/root ./usr/lib/tmpfiles.d/patroni-vip-check.conf
drwxr-xr-x root/root ./usr/libexec/
drwxr-xr-x root/root ./usr/libexec/patroni-vip-check/
-rwxr-xr-x root/root ./usr/libexec/patroni-vip-check/patroni-vip-check-setup
drwxr-xr-x root/root ./usr/share/
drwxr-xr-x root/root ./usr/share/doc/
drwxr-xr-x root/root ./usr/share/doc/patroni-vip-check/
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/changelog.Debian.gz
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/copyright
drwxr-xr-x root/root ./usr/share/doc/patroni-vip-check/examples/
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/examples/keepalived-2.3.conf
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/examples/keepalived-read-vip.conf
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/examples/keepalived-watch.conf
-rw-r--r-- root/root ./usr/share/doc/patroni-vip-check/examples/keepalived.conf
drwxr-xr-x root/root ./usr/share/lintian/
drwxr-xr-x root/root ./usr/share/lintian/overrides/
-rw-r--r-- root/root ./usr/share/lintian/overrides/patroni-vip-check
drwxr-xr-x root/root ./usr/share/man/
drwxr-xr-x root/root ./usr/share/man/man1/
-rw-r--r-- root/root ./usr/share/man/man1/patroni-vip-check.1.gz'
# dpkg-deb -c: mode owner/group size date time name; nfpm writes the
# changelog with numeric ids only.
got_deb=$(dpkg-deb -c "$deb" | awk '{ sub(/^0\/0$/, "root/root", $2); print $1, $2, $6 }' | sort -k3)
check "the .deb holds exactly the expected files, modes and owners (dpkg-deb -c)" \
	same "dpkg-deb -c" "$want_deb" "$got_deb"

want_rpm='-rwxr-xr-x root:root () /usr/bin/patroni-vip-check
-rw-r--r-- root:root () /usr/lib/systemd/system/patroni-vip-check.service
-rw-r--r-- root:root () /usr/lib/systemd/system/patroni-vip-check@.service
-rw-r--r-- root:root () /usr/lib/tmpfiles.d/patroni-vip-check.conf
drwxr-xr-x root:root () /usr/libexec/patroni-vip-check
-rwxr-xr-x root:root () /usr/libexec/patroni-vip-check/patroni-vip-check-setup
drwxr-xr-x root:root () /usr/share/doc/patroni-vip-check
drwxr-xr-x root:root () /usr/share/doc/patroni-vip-check/examples
-rw-r--r-- root:root (d) /usr/share/doc/patroni-vip-check/examples/keepalived-2.3.conf
-rw-r--r-- root:root (d) /usr/share/doc/patroni-vip-check/examples/keepalived-read-vip.conf
-rw-r--r-- root:root (d) /usr/share/doc/patroni-vip-check/examples/keepalived-watch.conf
-rw-r--r-- root:root (d) /usr/share/doc/patroni-vip-check/examples/keepalived.conf
drwxr-xr-x root:root () /usr/share/licenses/patroni-vip-check
-rw-r--r-- root:root (l) /usr/share/licenses/patroni-vip-check/LICENSE
-rw-r--r-- root:root (d) /usr/share/man/man1/patroni-vip-check.1.gz'
got_rpm=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} (%{FILEFLAGS:fflags}) %{FILENAMES}\n]' "$rpm" 2>/dev/null | sort -k4)
check "the .rpm holds exactly the expected files, modes, owners and %doc/%license flags (rpm -qp)" \
	same "rpm -qp" "$want_rpm" "$got_rpm"

shared_files="usr/bin/patroni-vip-check usr/libexec/patroni-vip-check/patroni-vip-check-setup usr/lib/systemd/system/patroni-vip-check.service
	usr/lib/systemd/system/patroni-vip-check@.service usr/lib/tmpfiles.d/patroni-vip-check.conf
	usr/share/man/man1/patroni-vip-check.1.gz usr/share/doc/patroni-vip-check/examples/keepalived.conf
	usr/share/doc/patroni-vip-check/examples/keepalived-2.3.conf usr/share/doc/patroni-vip-check/examples/keepalived-watch.conf
	usr/share/doc/patroni-vip-check/examples/keepalived-read-vip.conf"
check "the packaged files are identical in both packages" \
	same "checksums" "$(cd "$work/deb" && sha256sum $shared_files)" "$(cd "$work/rpm" && sha256sum $shared_files)"
for unit in patroni-vip-check.service patroni-vip-check@.service; do
	check "the unit $unit is packaging/$unit" \
		cmp "$top/packaging/$unit" "$work/deb/usr/lib/systemd/system/$unit"
done
for ex in keepalived.conf keepalived-2.3.conf keepalived-watch.conf keepalived-read-vip.conf; do
	check "the example $ex is packaging/$ex" \
		cmp "$top/packaging/$ex" "$work/deb/usr/share/doc/patroni-vip-check/examples/$ex"
done
check "the rpm's license is LICENSE, its License tag MIT" \
	eval 'cmp "$top/LICENSE" "$work/rpm/usr/share/licenses/patroni-vip-check/LICENSE" &&
		same License MIT "$(rpm -qp --qf %{LICENSE} "$rpm" 2>/dev/null)"'
check "both packages carry the changelog (deb changelog.Debian.gz, rpm %changelog)" \
	eval 'zcat "$work/deb/usr/share/doc/patroni-vip-check/changelog.Debian.gz" | grep -q "^patroni-vip-check (" &&
		rpm -qp --changelog "$rpm" 2>/dev/null | grep -q "^\* "'
scripts=$top/packaging/scripts
check "the maintainer scripts are packaging/scripts/deb-* in the .deb and rpm-* in the .rpm" \
	eval 'mkdir "$work/control" && dpkg-deb -e "$deb" "$work/control" &&
		cmp "$scripts/deb-postinst.sh" "$work/control/postinst" &&
		cmp "$scripts/deb-prerm.sh" "$work/control/prerm" &&
		cmp "$scripts/deb-postrm.sh" "$work/control/postrm" &&
		same %post "$(cat "$scripts/rpm-post.sh")" "$(rpm -qp --qf %{POSTIN} "$rpm" 2>/dev/null)" &&
		same %preun "$(cat "$scripts/rpm-preun.sh")" "$(rpm -qp --qf %{PREUN} "$rpm" 2>/dev/null)" &&
		same %postun "$(cat "$scripts/rpm-postun.sh")" "$(rpm -qp --qf %{POSTUN} "$rpm" 2>/dev/null)"'

# Every Go module linked into either static binary must be in the copyright file.
modules=$( (go version -m "$binary"; go version -m "$setup") | awk '$1 == "dep" { print $2 }' | sort -u)
missing=$(for m in $modules; do grep -qxF "Files: $m/*" "$work/deb/usr/share/doc/patroni-vip-check/copyright" || echo "$m"; done)
check "the copyright file covers every module in the binaries ($(echo $modules | wc -w) modules)" \
	same "modules without a Files: paragraph" "" "$missing"
keepalived_path=$(go version -m "$binary" | awk '$1 == "dep" { print $2 }' | grep -E 'yaml' || true)
check "the binary keepalived runs links no module of the set-up commands (no YAML library)" \
	same "set-up modules in the check" "" "$keepalived_path"

# --- the version of a build --------------------------------------------------

# A clone with no tag reachable names CHANGELOG.yml's newest release, the
# commits since the start and the commit: after that release for dpkg and rpm,
# before the next, and later builds after earlier ones.
vrepo=$work/version-repo
mkdir -p "$vrepo/packaging"
cp "$top/packaging/version.sh" "$vrepo/packaging/"
printf -- '- semver: 4.5.6\n  date: 2026-12-01T12:00:00Z\n- semver: 4.5.5\n' >"$vrepo/CHANGELOG.yml"
(cd "$vrepo" && git init -q && git -c user.name=t -c user.email=t@t.invalid add . &&
	git -c user.name=t -c user.email=t@t.invalid commit -qm one && git -c user.name=t -c user.email=t@t.invalid commit -q --allow-empty -m two)
untagged=$("$vrepo/packaging/version.sh")
check "an untagged build is CHANGELOG.yml's release plus commits and hash (got $untagged)" \
	grep -Eqx '4\.5\.6\+2\.g[0-9a-f]{7}' <<<"$untagged"
rpm_order() { rpm --eval "%{lua: print(rpm.vercmp('$1', '$2'))}"; }
check "dpkg and rpm order it after the release and before the next" \
	eval 'dpkg --compare-versions 4.5.6 lt "$untagged" && dpkg --compare-versions "$untagged" lt 4.5.7 &&
		dpkg --compare-versions "$untagged" lt 4.5.6+10.g0000000 &&
		[ "$(rpm_order 4.5.6 "$untagged")" = -1 ] && [ "$(rpm_order "$untagged" 4.5.7)" = -1 ] &&
		[ "$(rpm_order "$untagged" 4.5.6+10.g0000000)" = -1 ]'

# --- the man page ------------------------------------------------------------

man_gz=$work/deb/usr/share/man/man1/patroni-vip-check.1.gz
LC_ALL=C MANWIDTH=100 man --warnings -l -P cat "$man_gz" >"$work/man.txt" 2>"$work/man.err"
zcat "$man_gz" | sed 's/\\-/-/g' >"$work/man.roff" # \- is how roff writes a dash
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
	check "the man page has a $section section" contains "$work/man.txt" "^$section\$"
done
check "the man page renders without warnings" eval '! grep . "$work/man.err" >&2'
check "the man page names version $version" \
	grep -qF "patroni-vip-check $version" "$work/man.txt"
undocumented=$("$binary" --help 2>&1 | grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' | sed 's/^[ ,]//' | sort -u |
	while read -r flag; do grep -qE -- "(^|[^a-z-])$flag([^a-z-]|\$)" "$work/man.roff" || echo "$flag"; done)
check "the man page documents every flag of --help" same "flags missing from the man page" "" "$undocumented"

# --- lintian and rpmlint -------------------------------------------------------

# Both run as nobody on copies: they need no privilege, and rpmlint unpacks
# the payload with a plain `cpio -id`, which would write nfpm's absolute
# names into / as root. The cpio put first on its PATH refuses those names.
mkdir -m 0755 "$work/lint" "$work/lint/bin"
cp "$deb" "$rpm" "$top/packaging/rpmlint.toml" "$work/lint/"
printf '#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames "$@"\n' >"$work/lint/bin/cpio"
chmod 0755 "$work/lint/bin/cpio"
chmod 0644 "$work/lint/"*.deb "$work/lint/"*.rpm "$work/lint/rpmlint.toml"
as_nobody() {
	(cd "$work/lint" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env -i HOME="$work/lint" TMPDIR="$work/lint" PATH="$work/lint/bin:/usr/bin:/bin" LC_ALL=C.UTF-8 "$@")
}
chmod 1777 "$work/lint" # their temporary files
as_nobody lintian --fail-on error,warning --display-level '>=pedantic' --display-experimental \
	"$work/lint/$(basename "$deb")" >"$work/lintian.out" 2>&1
lintian_rc=$?
sed 's/^/# lintian: /' "$work/lintian.out"
check "lintian: no error, no warning, nothing pedantic (intended findings overridden in the package)" \
	eval '[ $lintian_rc = 0 ] && ! grep -Eq "^[EWIPX]: " "$work/lintian.out"'
as_nobody rpmlint -c "$work/lint/rpmlint.toml" "$work/lint/$(basename "$rpm")" >"$work/rpmlint.out" 2>&1
rpmlint_rc=$?
sed 's/^/# rpmlint: /' "$work/rpmlint.out"
check "rpmlint: no error, no warning (intended findings filtered in packaging/rpmlint.toml)" \
	eval '[ $rpmlint_rc = 0 ] && grep -q " 0 errors, 0 warnings" "$work/rpmlint.out"'
check "rpmlint unpacked the payload (it saw the binary)" lacks "$work/rpmlint.out" ' no-binary'

# --- tmpfiles.d ------------------------------------------------------------------

mkdir -p "$work/troot/usr/lib/tmpfiles.d"
cp "$work/deb/usr/lib/tmpfiles.d/patroni-vip-check.conf" "$work/troot/usr/lib/tmpfiles.d/"
systemd-tmpfiles --create --root="$work/troot" patroni-vip-check.conf >&2
check "the tmpfiles.d entry creates /run/patroni-vip-check 0711 and /run/keepalived-patroni-vip-check 0755, root's" \
	same "systemd-tmpfiles --create --root" "711 root:root directory
755 root:root directory" \
	"$(stat -c '%a %U:%G %F' "$work/troot/run/patroni-vip-check" "$work/troot/run/keepalived-patroni-vip-check" 2>&1)"

# --- a stand-in for Patroni's REST API and a namespace to run the check in -----

CGO_ENABLED=0 go build -o "$work/patroni-standin" "$top/packaging/testdata/patroni-standin.go" ||
	fatal "building the Patroni stand-in"

# new_netns NAME: a network namespace with loopback up.
new_netns() {
	ip netns add "$1" || return 1
	namespaces+=("$1")
	ip -n "$1" link set lo up
}
# standin NAMESPACE HOST:PORT: start the stand-in, wait until it listens.
standin() {
	ip netns exec "$1" "$work/patroni-standin" "$2" 9>&- &
	standin_pid=$!
	pids+=("$standin_pid")
	wait_for 5 ip netns exec "$1" bash -c "exec 3<>/dev/tcp/${2%:*}/${2##*:}"
}
stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# --- install the .deb for real ------------------------------------------------

# A state left by a check run by hand as root would make the first run below
# quiet: the package's state directory starts empty, as on a fresh host.
rm -rf /run/patroni-vip-check
dpkg-query -W -f='${binary:Package} ${Version}\n' | sort >"$work/dpkg-before"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$work/apt-install.log" 2>&1
rc=$?
check "apt-get install ./$(basename "$deb") succeeds" eval '[ $rc = 0 ] || { cat "$work/apt-install.log" >&2; false; }'
dpkg-query -W -f='${binary:Package} ${Version}\n' | sort >"$work/dpkg-after"
check "the install added patroni-vip-check $version and nothing else" \
	same "installed packages" "> patroni-vip-check $version" "$(diff "$work/dpkg-before" "$work/dpkg-after" | grep '^[<>]')"

installed=$(dpkg-query -W -f='${db:Status-Status}' patroni-vip-check 2>/dev/null)
[ "$installed" = installed ] || fatal "patroni-vip-check is not installed (dpkg status: $installed)"

got_installed=$(for f in $(dpkg -L patroni-vip-check | sort); do
	case $f in /usr/share/doc/patroni-vip-check* | /usr/bin/patroni-vip-check | /usr/lib/tmpfiles.d/patroni-vip-check.conf | \
		/usr/libexec/patroni-vip-check/patroni-vip-check-setup | \
		/usr/lib/systemd/system/patroni-vip-check.service | /usr/lib/systemd/system/patroni-vip-check@.service | \
		/usr/share/man/man1/patroni-vip-check.1.gz | /usr/share/lintian/overrides/patroni-vip-check) stat -c '%A %U:%G %n' "$f" ;;
	esac
done)
check "the installed files have the packaged modes and owners" same "installed files" \
	"-rwxr-xr-x root:root /usr/bin/patroni-vip-check
-rw-r--r-- root:root /usr/lib/systemd/system/patroni-vip-check.service
-rw-r--r-- root:root /usr/lib/systemd/system/patroni-vip-check@.service
-rw-r--r-- root:root /usr/lib/tmpfiles.d/patroni-vip-check.conf
-rwxr-xr-x root:root /usr/libexec/patroni-vip-check/patroni-vip-check-setup
drwxr-xr-x root:root /usr/share/doc/patroni-vip-check
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/changelog.Debian.gz
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/copyright
drwxr-xr-x root:root /usr/share/doc/patroni-vip-check/examples
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/examples/keepalived-2.3.conf
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/examples/keepalived-read-vip.conf
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/examples/keepalived-watch.conf
-rw-r--r-- root:root /usr/share/doc/patroni-vip-check/examples/keepalived.conf
-rw-r--r-- root:root /usr/share/lintian/overrides/patroni-vip-check
-rw-r--r-- root:root /usr/share/man/man1/patroni-vip-check.1.gz" "$got_installed"
check "every directory above /usr/bin/patroni-vip-check is root-owned and not group/other-writable" \
	same "path components" "" "$(for p in / /usr /usr/bin /usr/bin/patroni-vip-check; do
		stat -L -c '%U %A %n' "$p" | awk '$1 != "root" || substr($2, 6, 1) == "w" || substr($2, 9, 1) == "w"'
	done)"
check "man finds the installed man page" eval 'man -w patroni-vip-check | grep -qx /usr/share/man/man1/patroni-vip-check.1.gz'
check "postinst created /run/patroni-vip-check 0711 root:root" \
	same "/run/patroni-vip-check" "711 root:root directory" "$(stat -c '%a %U:%G %F' /run/patroni-vip-check 2>&1)"
check "postinst created /run/keepalived-patroni-vip-check 0755 root:root" \
	same "/run/keepalived-patroni-vip-check" "755 root:root directory" "$(stat -c '%a %U:%G %F' /run/keepalived-patroni-vip-check 2>&1)"
# The template is verified as systemd-analyze instantiates it (patroni-vip-check@i).
for unit in patroni-vip-check.service patroni-vip-check@.service; do
	systemd-analyze verify "/usr/lib/systemd/system/$unit" >"$work/verify.out" 2>&1
	rc=$?
	check "systemd-analyze verify accepts the installed unit $unit" \
		eval '[ $rc = 0 ] && ! grep . "$work/verify.out" >&2'
	exposure=$(systemd-analyze security --offline=true "/usr/lib/systemd/system/$unit" 2>&1 |
		sed -n 's/^.*Overall exposure level for patroni-vip-check\(@i\)\{0,1\}\.service: \([0-9.]*\).*$/\2/p')
	check "systemd-analyze security rates the installed unit $unit 2.5 or lower (got ${exposure:-nothing})" \
		awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.5) }'
done

out=$(/usr/bin/patroni-vip-check --version 2>&1)
rc=$?
check "installed: --version exits 0 and prints the package version" \
	eval '[ $rc = 0 ] && same --version "patroni-vip-check $version" "$out"'
out=$(/usr/bin/patroni-vip-check --help 2>&1)
rc=$?
check "installed: --help exits 0 and prints the usage" eval '[ $rc = 0 ] && grep -q "^usage: patroni-vip-check" <<<"$out"'
for sub in doctor keepalived-conf; do
	out=$(/usr/bin/patroni-vip-check $sub --help 2>&1)
	rc=$?
	check "installed: $sub --help runs the set-up binary, exits 0 and prints its usage" \
		eval '[ $rc = 0 ] && grep -q "^usage: patroni-vip-check $sub" <<<"$out"'
done

run_ns=$prefix-$$-run
new_netns "$run_ns" || fatal "creating namespace $run_ns"
ip netns exec "$run_ns" /usr/bin/patroni-vip-check --log stderr >"$work/refused.out" 2>&1
rc=$?
check "installed: nothing listening on 127.0.0.1:8008: exit status 1 (got $rc)" [ $rc = 1 ]
check "installed: ... and the reason logged is unreachable" contains "$work/refused.out" 'unreachable'
check "installed: ... and the state went to /run/patroni-vip-check" \
	eval 'ls /run/patroni-vip-check | grep -q "^127.0.0.1_8008_primary.*\.state$"'
standin "$run_ns" 127.0.0.1:8008 || fatal "the Patroni stand-in does not listen"
ip netns exec "$run_ns" /usr/bin/patroni-vip-check --log stderr >"$work/eligible.out" 2>&1
rc=$?
check "installed: a running primary on 127.0.0.1:8008: exit status 0 (got $rc)" [ $rc = 0 ]
stop "$standin_pid"
ip netns exec "$run_ns" /usr/bin/patroni-vip-check --log stderr --timeout 2s 'http://127.0.0.1:8008/primary?x' \
	--bogus-flag >"$work/badflag.out" 2>&1
rc=$?
check "installed: an unknown flag: exit status 1 (got $rc)" [ $rc = 1 ]

# --- keepalived accepts the installed check -------------------------------------

# The example configuration, as shipped, pointed at the installed binary.
example=/usr/share/doc/patroni-vip-check/examples/keepalived.conf
conf_value() { # first value of a keyword outside comments
	sed 's/#.*//' "$example" | awk -v k="$1" '$1 == k { print $2; exit }'
}
script_line=$(sed 's/#.*//' "$example" | grep -E '^[[:space:]]*script[[:space:]]+"' | head -1 | sed -E 's/^[^"]*"([^"]*)".*/\1/')
script_path=${script_line%% *}
script_url=$(tr ' ' '\n' <<<"$script_line" | grep -E '^https?://' | tail -1)
script_name=$(conf_value vrrp_script)
instance=$(conf_value vrrp_instance)
iface=$(conf_value interface)
src_ip=$(conf_value unicast_src_ip)
vip=$(sed 's/#.*//' "$example" | awk '/virtual_ipaddress[[:space:]]*\{/ { getline; print $1; exit }')
hostport=$(sed -E 's|^https?://([^/]*).*|\1|' <<<"$script_url")
note "example: script $script_path ($script_name) asks $script_url; $instance on $iface, $src_ip, VIP $vip"
check "the example runs the installed /usr/bin/patroni-vip-check" same "script path" /usr/bin/patroni-vip-check "$script_path"
check "the example sets enable_script_security" contains "$example" '^[[:space:]]*enable_script_security'
in_test_net() { [[ $1 =~ ^(198\.51\.100|127)\. ]]; }
in_test_net "$src_ip" && in_test_net "${vip%/*}" && in_test_net "${hostport%:*}" ||
	fatal "the example's addresses ($src_ip, $vip, $hostport) must be in 198.51.100.0/24 or 127.0.0.0/8 for this test"

# keepalived NAMESPACE CONF LOG: keepalived in the foreground with its own pid files.
keepalived_in() {
	local dir
	dir=$(dirname "$3")
	ip netns exec "$1" keepalived -n -l -D -f "$2" -p "$dir/keepalived.pid" -r "$dir/vrrp.pid" \
		-c "$dir/checkers.pid" -b "$dir/bfd.pid" >"$3" 2>&1 9>&- &
	keepalived_pid=$!
	pids+=("$keepalived_pid")
}
vip_on() { ip -n "$1" -4 addr show dev "$iface" | grep -qw "inet $vip"; }
ka_ns=$prefix-$$-ka
new_netns "$ka_ns" || fatal "creating namespace $ka_ns"
# Both ends of the link stay in the namespace; VRRP adverts to the example's
# peers leave through it and reach nobody.
ip -n "$ka_ns" link add "$iface" type veth peer name "${iface}peer"
ip -n "$ka_ns" link set "$iface" up
ip -n "$ka_ns" link set "${iface}peer" up
ip -n "$ka_ns" addr add "$src_ip/24" dev "$iface"

mkdir -m 0700 "$work/ka" "$work/ka-unsafe"
cp "$example" "$work/ka/keepalived.conf"
standin "$ka_ns" "$hostport" || fatal "the Patroni stand-in does not listen on $hostport"
ka_started=$SECONDS
failed_before=$failed
keepalived_in "$ka_ns" "$work/ka/keepalived.conf" "$work/ka/keepalived.log"
wait_for 20 vip_on "$ka_ns"
check "keepalived: with Patroni answering, the instance takes the VIP $vip ($((SECONDS - ka_started))s)" vip_on "$ka_ns"
log=$work/ka/keepalived.log
check "keepalived: the script ran and succeeded" contains "$log" "VRRP_Script\\($script_name\\) succeeded"
check "keepalived: $instance entered MASTER state" contains "$log" "\\($instance\\) Entering MASTER STATE"
check "keepalived: no \"Unsafe permissions\" for the installed check" lacks "$log" 'unsafe permissions'
check "keepalived: nothing disabled" lacks "$log" 'disabling'
stop "$standin_pid"
wait_for 10 eval '! vip_on "$ka_ns"'
check "keepalived: with Patroni gone, the check fails with status 1 and the VIP is released" \
	eval '! vip_on "$ka_ns" && contains "$log" "VRRP_Script\\($script_name\\) failed \\(exited with status 1\\)" &&
		contains "$log" "\\($instance\\) Entering FAULT STATE"'
stop "$keepalived_pid"
[ $failed = "$failed_before" ] || sed 's/^/# keepalived: /' "$log"

# Negative control: the same configuration with the check in a directory
# others may write to. keepalived must refuse it, which shows that the
# assertions above would catch a check it disabled.
mkdir -m 0777 "$work/ka-unsafe/bin"
chmod 0777 "$work/ka-unsafe/bin" # not 1777: a sticky root directory passes
install -m 0755 /usr/bin/patroni-vip-check "$work/ka-unsafe/bin/patroni-vip-check"
sed "s|/usr/bin/patroni-vip-check|$work/ka-unsafe/bin/patroni-vip-check|" "$example" >"$work/ka-unsafe/keepalived.conf"
chmod 0755 "$work/ka-unsafe"
failed_before=$failed
keepalived_in "$ka_ns" "$work/ka-unsafe/keepalived.conf" "$work/ka-unsafe/keepalived.log"
log=$work/ka-unsafe/keepalived.log
wait_for 10 grep -q "Disabling track script $script_name" "$log"
check "control: a check in a world-writable directory is refused (\"Unsafe permissions\")" \
	contains "$log" "Unsafe permissions found for script '$work/ka-unsafe/bin/patroni-vip-check'"
check "control: ... and its track script disabled" contains "$log" "Disabling track script $script_name due to insecure"
stop "$keepalived_pid"
[ $failed = "$failed_before" ] || sed 's/^/# keepalived (control): /' "$log"
remove_netns "$ka_ns"
remove_netns "$run_ns"
namespaces=()

# --- upgrade, remove, purge ------------------------------------------------------

touch /run/patroni-vip-check/marker
dpkg -i "$deb" >"$work/reinstall.log" 2>&1
check "reinstalling the .deb (the upgrade path) keeps the state directory" \
	eval '[ -e /run/patroni-vip-check/marker ] || { cat "$work/reinstall.log" >&2; false; }'
dpkg -L patroni-vip-check | sort >"$work/deb-files"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q patroni-vip-check >"$work/remove.log" 2>&1
rc=$?
check "apt-get remove succeeds" eval '[ $rc = 0 ] || { cat "$work/remove.log" >&2; false; }'
check "after remove: no file of the package is left, nor /run/patroni-vip-check" \
	same "left behind" "" "$(for f in $(cat "$work/deb-files") /run/patroni-vip-check; do
		case $f in /run/keepalived-patroni-vip-check) ;; *patroni-vip-check*) [ ! -e "$f" ] || echo "$f" ;; esac
	done)"
check "after remove: /run/keepalived-patroni-vip-check stays (keepalived may be watching it)" \
	test -d /run/keepalived-patroni-vip-check
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q patroni-vip-check >"$work/purge.log" 2>&1
check "after purge: dpkg knows nothing of patroni-vip-check" \
	same "dpkg status" "not-installed" "$(dpkg-query -W -f='${db:Status-Status}' patroni-vip-check 2>/dev/null || echo not-installed)"
check "after purge: the installed package set is as before the install" \
	same "installed packages" "" "$(dpkg-query -W -f='${binary:Package} ${Version}\n' | sort | diff "$work/dpkg-before" - | grep '^[<>]')"

# --- the .rpm in a scratch root -------------------------------------------------

# A root with just a shell and rm, so that the scriptlets run as they would
# on a real system (rpm runs them chrooted); no systemd-tmpfiles in it, so
# %post leaves /run alone, as it does where that tool is missing.
root=$work/rpmroot
mkdir -p "$root/usr/bin" "$root/run"
ln -s usr/bin "$root/bin"
for prog in /bin/sh /usr/bin/rm; do
	cp -L "$prog" "$root/usr/bin/$(basename "$prog")"
	for lib in $(ldd "$prog" | grep -oE '/[^ ]+'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done
rpmdb=(--root "$root" --dbpath /var/lib/rpm)
rpm "${rpmdb[@]}" --initdb
rpm "${rpmdb[@]}" -i "$rpm" >"$work/rpm-install.log" 2>&1
rc=$?
check "rpm --root -i succeeds, scriptlets included" \
	eval '[ $rc = 0 ] && ! grep -i "scriptlet failed\|error" "$work/rpm-install.log" >&2'
check "rpm --root: every file matches the package's modes, owners and digests (rpm -V)" \
	eval 'out=$(rpm "${rpmdb[@]}" -V patroni-vip-check 2>&1); same "rpm -V" "" "$out"'
got_root=$(cd "$root" && for f in $(rpm "${rpmdb[@]}" -ql patroni-vip-check 2>/dev/null); do stat -c '%A %U:%G %n' ".$f"; done)
check "rpm --root: the files are installed with the expected modes and owners" same "installed rpm files" \
	"$(sed -E 's/^([^ ]+) ([^ ]+) \([a-z]*\) (.*)/\1 \2 .\3/' <<<"$want_rpm")" "$got_root"
mkdir -m 0700 "$root/run/patroni-vip-check"
touch "$root/run/patroni-vip-check/marker"
rpm "${rpmdb[@]}" -U --replacepkgs "$rpm" >"$work/rpm-upgrade.log" 2>&1
check "rpm --root -U (the upgrade path) keeps the state directory" \
	eval '[ -e "$root/run/patroni-vip-check/marker" ] || { cat "$work/rpm-upgrade.log" >&2; false; }'
rpm "${rpmdb[@]}" -e patroni-vip-check >"$work/rpm-erase.log" 2>&1
rc=$?
check "rpm --root -e succeeds" eval '[ $rc = 0 ] && ! grep -i "scriptlet failed\|error" "$work/rpm-erase.log" >&2'
check "rpm --root: after erase no file or directory of the package is left, nor /run/patroni-vip-check" \
	same "left behind" "" "$(cd "$root" && find . -path '*patroni-vip-check*')"

note "package tests took $((SECONDS - started))s"
echo "package-test: $pass passed, $failed failed"
[ $failed = 0 ]
