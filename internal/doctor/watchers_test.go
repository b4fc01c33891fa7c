package doctor

import (
	"os"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

// The shipped example with a read VIP, on a node that runs both watchers.
func TestShippedReadVIPExample(t *testing.T) {
	for _, v := range []keepalived.Version{v227, v233} {
		n := newNode(t, "keepalived-read-vip.conf", v)
		n.addWatcher(t, "replica", "--pgdata "+pgdata+" http://198.51.100.11:8008/replica?lag=16MB")
		n.sys.Files["/run/keepalived-patroni-vip-check/replica"] = &systemtest.File{Mode: 0o644, Data: []byte("0\n")}
		fs := n.run()
		none(t, fs, Warning)
		want(t, fs, OK, "track_file patroni_replica: patroni-vip-check@replica.service keeps /run/keepalived-patroni-vip-check/replica")
		want(t, fs, OK, "patroni-vip-check@replica.service (pid 301) watches /var/lib/postgresql/15/main")
		want(t, fs, OK, "the VIP 198.51.100.101/24 is in eth0's subnet")
		if !strings.Contains(strings.Join(n.check.args, " "), "/replica?lag=16MB") {
			t.Errorf("the replica's watcher was not asked as it asks: %q", n.check.args)
		}
		// Without its watcher's options, the read VIP's instance stays in FAULT.
		delete(n.units, "patroni-vip-check@replica.service")
		delete(n.sys.Files, "/etc/default/patroni-vip-check@replica")
		want(t, n.run(), Failure, "patroni-vip-check@replica.service has no options", "/etc/default/patroni-vip-check@replica",
			`echo 'PATRONI_VIP_CHECK_ARGS="--pgdata DIR http://NODE:8008/replica?lag=16MB"'`)
	}
}

// TestUnitFilesWithoutSystemd: where systemd does not run, the units are
// read from their files as systemd would read them: the template's %i,
// its drop-ins, its options.
func TestUnitFilesWithoutSystemd(t *testing.T) {
	n := newNode(t, "keepalived-read-vip.conf", v227)
	delete(n.sys.Files, "/run/systemd/system")
	for _, u := range []string{"patroni-vip-check.service", "patroni-vip-check@.service"} {
		data, err := os.ReadFile("../../packaging/" + u)
		if err != nil {
			t.Fatal(err)
		}
		n.sys.Files["/usr/lib/systemd/system/"+u] = &systemtest.File{Mode: 0o644, Data: data}
	}
	n.sys.Files["/etc/default/patroni-vip-check@replica"] = &systemtest.File{Mode: 0o644, Data: []byte(`PATRONI_VIP_CHECK_ARGS="--pgdata ` + pgdata + ` http://198.51.100.11:8008/replica?lag=16MB"` + "\n")}
	n.sys.Files["/run/keepalived-patroni-vip-check/replica"] = &systemtest.File{Mode: 0o644, Data: []byte("0\n")}
	fs := n.run()
	want(t, fs, Warning, "cannot tell whether patroni-vip-check@replica.service runs: systemd does not run here")
	want(t, fs, OK, "track_file patroni_replica: patroni-vip-check@replica.service keeps /run/keepalived-patroni-vip-check/replica")
	want(t, fs, OK, "patroni-vip-check@replica.service may watch /var/lib/postgresql/15/main (postgres's, mode 0700): it runs as root with CAP_DAC_READ_SEARCH")
	want(t, fs, OK, "patroni-vip-check@replica.service: http://198.51.100.11:8008/replica?lag=16MB says this node may hold the VIP")
	none(t, fs, Failure)

	// A drop-in of the template's changes every instance.
	n.sys.Files["/etc/systemd/system/patroni-vip-check@.service.d/caps.conf"] = &systemtest.File{Mode: 0o644,
		Data: []byte("[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_RAW\n")}
	want(t, n.run(), Warning, "patroni-vip-check@replica.service cannot watch /var/lib/postgresql/15/main: root may not read it")
	// One of the instance's own names another file.
	n.sys.Files["/etc/systemd/system/patroni-vip-check@replica.service.d/file.conf"] = &systemtest.File{Mode: 0o644,
		Data: []byte("[Service]\nExecStart=\nExecStart=/usr/bin/patroni-vip-check watch --track-file=/run/keepalived-patroni-vip-check/%i-x $PATRONI_VIP_CHECK_ARGS\n")}
	want(t, n.run(), Failure, "track_file patroni_replica reads /run/keepalived-patroni-vip-check/replica, but patroni-vip-check@replica.service keeps /run/keepalived-patroni-vip-check/replica-x")

	// No unit file at all.
	delete(n.sys.Files, "/usr/lib/systemd/system/patroni-vip-check@.service")
	want(t, n.run(), Warning, "patroni-vip-check@replica.service: no unit file found (/etc/systemd/system, ")
}

// A replica's watcher that says no: the read VIP is a replica's, not the
// primary's.
func TestReplicaWatcherSaysNo(t *testing.T) {
	n := newNode(t, "keepalived-read-vip.conf", v227)
	n.addWatcher(t, "replica", "--pgdata "+pgdata+" http://198.51.100.11:8008/replica?lag=16MB")
	n.check.reason = "not-eligible"
	fs := n.run()
	want(t, fs, OK, "patroni-vip-check@replica.service: http://198.51.100.11:8008/replica?lag=16MB says this node may not hold the VIP now (state=running, role=master, version=3.0.2): the VIP goes to a replica that qualifies")
	want(t, fs, OK, "patroni-vip-check.service: http://198.51.100.11:8008/primary says this node may not hold the VIP now (state=running, role=master, version=3.0.2): the VIP stays with the primary")
}
