#!/bin/sh
# After installation or upgrade (deb postinst, rpm %post): create the state
# directory from the tmpfiles.d entry now rather than at the next boot. The
# check also creates it itself when missing, so failing here is harmless.
set -e

# DPKG_ROOT is set when dpkg installs into another root: leave that root's
# /run alone (the same guard debhelper's tmpfiles snippet uses).
if [ -z "${DPKG_ROOT:-}" ] && command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create patroni-vip-check.conf >/dev/null 2>&1 || true
fi

exit 0
