#!/bin/sh
# deb postinst: create the state and track file directories from the
# tmpfiles.d entry now rather than at the next boot, and make systemd see a
# new or changed patroni-vip-check.service (and its template); on upgrade,
# restart every watcher that runs, the template's instances too, so that the
# installed binary is the one running (on the primary this costs a short
# FAULT: the unit removes the track file when it stops).
# The service is never enabled here: the watch set-up is the operator's choice.
set -e

# DPKG_ROOT is set when dpkg installs into another root: leave that root's
# /run and its systemd alone (the same guard debhelper's snippets use).
[ -z "${DPKG_ROOT:-}" ] || exit 0

if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create patroni-vip-check.conf >/dev/null 2>&1 || true
fi
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	if [ -n "$2" ]; then
		deb-systemd-invoke try-restart patroni-vip-check.service 'patroni-vip-check@*.service' >/dev/null || true
	fi
fi

exit 0
