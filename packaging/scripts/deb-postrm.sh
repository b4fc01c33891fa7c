#!/bin/sh
# deb postrm: once the package is gone for good (remove or purge, not an
# upgrade), drop the state directory and let systemd forget the unit. The
# track file's directory stays: keepalived watches it while it runs, and a
# directory made again would not be seen until keepalived restarts. It is
# in /run, gone at the next boot.
#   $1 is "remove" or "purge" (and "upgrade", "failed-upgrade"... otherwise)
set -e

[ -z "${DPKG_ROOT:-}" ] || exit 0

case "$1" in
remove | purge)
	rm -rf /run/patroni-vip-check
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	;;
esac
if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper purge patroni-vip-check.service >/dev/null || true
fi

exit 0
