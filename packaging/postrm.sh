#!/bin/sh
# After removal (deb postrm, rpm %postun): drop the runtime state directory
# once the package is gone for good, not when it is being upgraded.
#   deb: $1 is "remove" or "purge" (and "upgrade", "failed-upgrade"... otherwise)
#   rpm: $1 is the number of versions left installed, 0 on a final erase
set -e

case "$1" in
remove | purge | 0)
	if [ -z "${DPKG_ROOT:-}" ]; then
		rm -rf /run/patroni-vip-check
	fi
	;;
esac

exit 0
