#!/bin/sh
# deb prerm: stop the watcher before its binary goes away for good.
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop patroni-vip-check.service >/dev/null || true
fi

exit 0
