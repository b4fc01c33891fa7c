#!/bin/sh
# deb prerm: stop the watchers, the template's instances too, before their
# binary goes away for good: a unit whose binary is gone could not run its
# ExecStopPost, and would leave a 1 in its track file.
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop patroni-vip-check.service 'patroni-vip-check@*.service' >/dev/null || true
fi

exit 0
