#!/bin/sh
# rpm %post: create the state and track file directories from the
# tmpfiles.d entry now rather than at the next boot, and make systemd see a
# new or changed patroni-vip-check.service (and its template); on upgrade ($1
# is 2), restart every watcher that runs, the template's instances too, so
# that the installed binary is the one running.
# The service is never enabled here: the watch set-up is the operator's choice.

if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create patroni-vip-check.conf >/dev/null 2>&1 || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$1" -ge 2 ] 2>/dev/null; then
		systemctl try-restart patroni-vip-check.service 'patroni-vip-check@*.service' >/dev/null 2>&1 || true
	fi
fi

exit 0
