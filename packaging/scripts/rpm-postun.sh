#!/bin/sh
# rpm %postun: once the package is gone for good ($1 is 0), drop the state
# directory and let systemd forget the unit. The track file's directory
# stays: keepalived watches it while it runs, and a directory made again
# would not be seen until keepalived restarts. It is in /run, gone at the
# next boot.

if [ "$1" = 0 ]; then
	rm -rf /run/patroni-vip-check
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
fi

exit 0
