#!/bin/sh
# Container init, stage 1: PID 1 of fresh PID, mount, UTS, IPC and network
# namespaces (made by the Go side). It puts the container together and execs
# systemd as PID 1, the way systemd's container interface describes it
# (systemd.io/CONTAINER_INTERFACE): the root read-write (an overlay whose
# upper layer is thrown away), /proc with /proc/sys read-only, /sys read-only,
# a private /dev with a few host devices, /run and /tmp on tmpfs, and its own
# cgroup v2 subtree as /sys/fs/cgroup inside a cgroup namespace. Nothing is
# mounted in the host's mount namespace: / is made private first.
#
# usage: boot.sh ROOT RUNDIR CGROUP CAPS [SOURCE TARGET ro|rw]...
#   ROOT    the lower, read-only layer (a cached root filesystem)
#   RUNDIR  holds upper/, work/, merged/ and console
#   CGROUP  the container's cgroup directory in the host's cgroup v2 tree
#   CAPS    setpriv --bounding-set argument for systemd
set -eu
root=$1 run=$2 cgroup=$3 caps=$4
shift 4

echo 0 >"$cgroup/cgroup.procs"
mount --make-rprivate /

m=$run/merged
mount -t overlay overlay -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/work" "$m"

while [ $# -ge 3 ]; do
	src=$1 dst=$m$2 mode=$3
	shift 3
	if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; [ -e "$dst" ] || : >"$dst"; fi
	mount --bind "$src" "$dst"
	if [ "$mode" = ro ]; then mount -o remount,bind,ro "$dst"; fi
done

mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro "$m/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"

mount -t tmpfs -o mode=0755,nosuid tmpfs "$m/dev"
for d in null zero full random urandom tty; do
	: >"$m/dev/$d"
	mount --bind "/dev/$d" "$m/dev/$d"
done
mkdir "$m/dev/pts" "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
# systemd writes its status lines to /dev/console; a plain file keeps them
# for a test to show (nothing here reads a terminal: getty is masked).
: >"$m/dev/console"
mount --bind "$run/console" "$m/dev/console"

mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$m/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$m/tmp"
mkdir -p "$m/.oldroot"

# Stage 2, in a cgroup namespace rooted at the container's cgroup, so that
# systemd sees that subtree as the whole hierarchy and manages nothing else.
cd "$m"
exec unshare --cgroup /bin/sh -c '
	set -eu
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 sys/fs/cgroup
	pivot_root . .oldroot
	exec chroot . /bin/sh -c "
		umount -l /.oldroot && rmdir /.oldroot
		exec setpriv --bounding-set=$1 -- env -i container=pvc-e2e /lib/systemd/systemd
	"' sh "$caps"
