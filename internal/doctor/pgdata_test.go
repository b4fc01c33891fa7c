package doctor

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

// TestPGData: whether each watcher sees PostgreSQL's data directory, or
// runs on polls alone.
func TestPGData(t *testing.T) {
	args := func(n *node, a string) {
		n.sys.Files["/etc/default/patroni-vip-check"].Data = []byte("PATRONI_VIP_CHECK_ARGS=\"" + a + "\"\n")
	}
	n := newNode(t, "keepalived-watch.conf", v227)
	args(n, "--interval 500ms http://198.51.100.11:8008/primary")
	delete(n.sys.Inotify, 200)
	fs := n.run()
	want(t, fs, Warning, fmt.Sprintf("keepalived.conf:%d: patroni-vip-check.service runs on polls alone (no --pgdata): it asks Patroni every 500ms", n.line(t, "    file ")),
		"add --pgdata /var/lib/postgresql/15/main to PATRONI_VIP_CHECK_ARGS in /etc/default/patroni-vip-check (Patroni's postgresql.data_dir, /etc/patroni/15-main.yml)")
	for _, f := range fs {
		if strings.Contains(f.Msg, "inotify") {
			t.Errorf("inotify's limits judged for a watch that uses none: %s", f)
		}
	}
	delete(n.sys.Files, "/etc/patroni/15-main.yml")
	want(t, n.run(), Warning, "runs on polls alone", "add --pgdata DIR to PATRONI_VIP_CHECK_ARGS in /etc/default/patroni-vip-check, DIR Patroni's postgresql.data_dir")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.sys.Files["/var/lib/postgresql/16/main"] = &systemtest.File{Mode: fs0700dir, UID: 105}
	args(n, "--pgdata /var/lib/postgresql/16/main http://198.51.100.11:8008/primary")
	want(t, n.run(), Warning, "patroni-vip-check.service: --pgdata /var/lib/postgresql/16/main is not Patroni's postgresql.data_dir /var/lib/postgresql/15/main (/etc/patroni/15-main.yml)", "give --pgdata /var/lib/postgresql/15/main")
	args(n, "--pgdata /var/lib/postgresql/17/main http://198.51.100.11:8008/primary")
	want(t, n.run(), Warning, "--pgdata /var/lib/postgresql/17/main: file does not exist: it polls alone, every 1s until it is there")
	delete(n.sys.Files, pgdata)
	args(n, "--pgdata "+pgdata+" http://198.51.100.11:8008/primary")
	want(t, n.run(), Warning, "--pgdata /var/lib/postgresql/15/main, Patroni's postgresql.data_dir: file does not exist", "initialise PostgreSQL")

	// The unit reads postgres's 0700 directory as root through
	// CAP_DAC_READ_SEARCH; without it, or as another user, by the modes.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.units["patroni-vip-check.service"].caps = "cap_net_raw"
	want(t, n.run(), Warning, "patroni-vip-check.service cannot watch /var/lib/postgresql/15/main: root may not read it (postgres's, mode 0700): it polls alone", "keep CapabilityBoundingSet=CAP_DAC_READ_SEARCH")
	n.units["patroni-vip-check.service"].caps = ""
	want(t, n.run(), OK, "may watch /var/lib/postgresql/15/main (postgres's, mode 0700): it runs as root with CAP_DAC_READ_SEARCH")
	n.units["patroni-vip-check.service"].user = "postgres"
	want(t, n.run(), OK, "patroni-vip-check.service may watch /var/lib/postgresql/15/main (postgres's, mode 0700)")
	n.sys.Users = append(n.sys.Users, system.User{Name: "nobody", UID: 65534, GID: 65534})
	n.units["patroni-vip-check.service"].user = "nobody"
	want(t, n.run(), Warning, "cannot watch /var/lib/postgresql/15/main: nobody may not read it")
	n.sys.Files["/var/lib/postgresql"].Mode = fs0700dir
	want(t, n.run(), Warning, "cannot watch /var/lib/postgresql/15/main: nobody may not enter /var/lib/postgresql (postgres's, mode 0700)")

	// The sandbox hides /home; /tmp is the unit's own.
	for _, dir := range []string{"/home/pg/data", "/tmp/pg"} {
		n = newNode(t, "keepalived-watch.conf", v227)
		n.sys.Files[dir] = &systemtest.File{Mode: fs0700dir, UID: 105}
		n.sys.Files["/etc/patroni/15-main.yml"].Data = []byte(strings.Replace(string(n.sys.Files["/etc/patroni/15-main.yml"].Data), pgdata, dir, 1))
		args(n, "--pgdata "+dir+" http://198.51.100.11:8008/primary")
		want(t, n.run(), Warning, "patroni-vip-check.service cannot watch "+dir)
	}

	// The running watcher's own inotify watches say whether it sees it.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.sys.Inotify[200] = []system.Watch{{Dev: 1, Ino: 99}}
	want(t, n.run(), Warning, "patroni-vip-check.service (pid 200) does not watch /var/lib/postgresql/15/main: it polls alone, every 1s", `journalctl -u patroni-vip-check.service says why (look for "cannot watch")`)
	n.sys.Inotify[200] = nil
	want(t, n.run(), Warning, "cannot read the inotify watches of patroni-vip-check.service (pid 200)")
}

const fs0700dir = fs.ModeDir | 0o700

// TestInotifyLimits: root's inotify instances and watches against the
// limits; other users' do not count.
func TestInotifyLimits(t *testing.T) {
	many := func(k, watches int) []system.Inotify {
		var out []system.Inotify
		for i := 0; i < k; i++ {
			out = append(out, system.Inotify{FD: 10 + i, Watches: make([]system.Watch, watches)})
		}
		return out
	}
	n := newNode(t, "keepalived-watch.conf", v227)
	n.sys.Procs = append(n.sys.Procs, system.Process{PID: 1, Exe: "/usr/lib/systemd/systemd"}, system.Process{PID: 900, UID: 105, Exe: "/usr/bin/other"})
	n.sys.InotifyFDs = map[int][]system.Inotify{1: many(100, 1), 900: many(500, 100)}
	want(t, n.run(), OK, "root's processes hold 102 inotify instances of fs.inotify.max_user_instances 128, and 103 watches of fs.inotify.max_user_watches 8192: room for the watch's one of each")
	n.sys.InotifyFDs[1] = many(115, 1)
	want(t, n.run(), Warning, "root's processes hold 117 inotify instances of fs.inotify.max_user_instances 128", "the limit is reached or nearly so, and a watch that gets no instance polls alone",
		"echo fs.inotify.max_user_instances=256 > /etc/sysctl.d/60-inotify.conf; sysctl --system")
	n.sys.InotifyFDs[1] = many(10, 800)
	want(t, n.run(), Warning, "and 8003 watches of fs.inotify.max_user_watches 8192: the limit is reached or nearly so", "fs.inotify.max_user_watches=16384")
}
