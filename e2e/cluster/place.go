package cluster

import (
	"path/filepath"
)

// placement says where one program of the cluster's stack runs and what it sees. Every
// program the harness starts from a stack — etcd, Patroni, keepalived, vip-manager,
// patronictl, psql — goes through Cluster.command, so that all of them see the same
// files the same way.
type placement struct {
	ns   string   // network namespace
	user string   // "" for root; else this user of the stack's own /etc/passwd (setpriv)
	env  []string // the program's whole environment
	// node, for keepalived: the program gets a private /dev whose /dev/log is the
	// node's collector socket, and the node's run directory as /run.
	node *Node
	// overlay, with node: the check is installed as /usr/bin/patroni-vip-check by a
	// read-only overlay of /usr/bin (see placeScript).
	overlay bool
	// bounding, if set, is the capability bounding set the program runs with, in
	// setpriv's words ("-all,+dac_read_search"): a unit's CapabilityBoundingSet=.
	bounding string
}

// command returns the argv that runs prog with args as p says:
//
//	ip netns exec NS [unshare --mount --propagation private sh -c placeScript sh ROOT DIR NODE OVERLAY]
//	    [chroot ROOT] [setpriv --reuid=U --regid=U --init-groups] env -i ENV... PROG ARGS...
//
// The mount namespace is private to the program and its children: nothing is mounted in
// the host's namespace, and every mount vanishes when the last of them exits, whatever
// way it ends. A host-stack program that needs no private mount runs without one. Each
// step execs the next, so the PID the harness gets is the program's own.
func (c *Cluster) command(p placement, prog string, args ...string) []string {
	s := c.opts.Stack
	argv := []string{"ip", "netns", "exec", p.ns}
	if s.chrooted() || p.node != nil {
		node, overlay := "-", "-"
		if p.node != nil {
			node = p.node.dir
			if p.overlay {
				overlay = "overlay"
			}
		}
		argv = append(argv, "unshare", "--mount", "--propagation", "private",
			"sh", "-c", placeScript, "sh", filepath.Clean(s.Root), c.dir, node, overlay)
	}
	if p.user != "" {
		argv = append(argv, "setpriv", "--reuid="+p.user, "--regid="+p.user, "--init-groups")
	}
	if p.bounding != "" {
		argv = append(argv, "setpriv", "--bounding-set="+p.bounding)
	}
	argv = append(argv, "env", "-i")
	argv = append(argv, p.env...)
	return append(append(argv, prog), args...)
}

// placeScript runs as root inside the program's fresh, private mount namespace (in its
// network namespace), then execs the program, chrooted into the stack's root unless
// that is "/". Arguments: the root, the cluster's run directory, the node directory or
// "-", "overlay" or "-", then the command.
//
// In a root other than "/", the program gets the host's /proc and /sys (ip netns exec
// has mounted the namespace's own /sys), /dev and /dev/pts, and a fresh tmpfs of mode
// 1777 on /dev/shm: the plain bind of /dev shows devtmpfs's own empty shm directory,
// where Patroni 4's multiprocessing fails with a PermissionError in
// fetch_nodes_statuses and no failover ever happens. The cluster's run directory (under
// /tmp, on a private tmpfs so the cached root is not written to) is bound at the same
// path, so that configuration files, data directories and sockets have one name inside
// and out.
//
// With a node, the program (keepalived, and so its check) gets what a production host
// gives it, without touching the host's files: a private /dev whose /dev/log is the
// harness's socket, with no systemd journal socket (so the check falls back to /dev/log
// exactly as on a host without journald), the node's run directory as /run for the
// check's state directory, and optionally the check installed as
// /usr/bin/patroni-vip-check by a read-only overlay of /usr/bin whose top layer is a
// root-owned 0755 directory holding the root-owned 0755 binary: a path keepalived's
// enable_script_security accepts, as it accepts the packaged one. The check is static:
// it runs in any root as it is.
const placeScript = `set -eu
root=$1; rundir=$2; node=$3; overlay=$4; shift 4
r=${root%/}
if [ -n "$r" ]; then
	mount --bind /proc "$r/proc"
	mount --bind /sys "$r/sys"
	mount -t tmpfs -o mode=1777 pvc-e2e-tmp "$r/tmp"
	mkdir -p "$r$rundir"
	mount --bind "$rundir" "$r$rundir"
fi
if [ "$node" != - ]; then
	mount -t tmpfs -o mode=0755,size=1m pvc-e2e-dev "$r/dev"
	mknod -m 0666 "$r/dev/null" c 1 3
	mknod -m 0666 "$r/dev/zero" c 1 5
	mknod -m 0666 "$r/dev/full" c 1 7
	mknod -m 0666 "$r/dev/random" c 1 8
	mknod -m 0666 "$r/dev/urandom" c 1 9
	ln -s /proc/self/fd "$r/dev/fd"
	ln -s /proc/self/fd/0 "$r/dev/stdin"
	ln -s /proc/self/fd/1 "$r/dev/stdout"
	ln -s /proc/self/fd/2 "$r/dev/stderr"
	: > "$r/dev/log"
	mount --bind "$node/log.sock" "$r/dev/log"
	mount --bind "$node/run" "$r/run"
	if [ "$overlay" = overlay ]; then
		mount -t overlay pvc-e2e-bin -o "lowerdir=$node/bin:$r/usr/bin" "$r/usr/bin"
	fi
elif [ -n "$r" ]; then
	mount --bind /dev "$r/dev"
	mount --bind /dev/pts "$r/dev/pts"
	mount -t tmpfs -o mode=1777 pvc-e2e-shm "$r/dev/shm"
fi
if [ -n "$r" ]; then
	exec chroot "$r" "$@"
fi
exec "$@"
`
