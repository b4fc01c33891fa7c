#!/bin/sh
# rpm %preun: stop the watcher before its binary goes away for good ($1 is
# 0 on a final erase, 1 on an upgrade).

if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
	systemctl stop patroni-vip-check.service >/dev/null 2>&1 || true
fi

exit 0
