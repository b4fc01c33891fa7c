#!/bin/sh
# rpm %preun: stop the watchers, the template's instances too, before their
# binary goes away for good ($1 is 0 on a final erase, 1 on an upgrade): a
# unit whose binary is gone could not run its ExecStopPost, and would leave a
# 1 in its track file.

if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
	systemctl stop patroni-vip-check.service 'patroni-vip-check@*.service' >/dev/null 2>&1 || true
fi

exit 0
