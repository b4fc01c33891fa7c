package cluster

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// These tests need neither root nor namespaces: they run with `go test ./...`.

func TestCommandHostStack(t *testing.T) {
	c := &Cluster{opts: Options{Stack: HostStack()}, dir: "/tmp/pvc-e2e-1-1-x"}
	n := &Node{Name: "n1", NS: "ns1", dir: "/tmp/pvc-e2e-1-1-x/n1", c: c}
	// Patroni from the host's packages needs no mount of its own: placed as before.
	got := c.command(placement{ns: "ns1", user: "postgres", env: []string{"A=1"}}, "/usr/bin/patroni", "conf.yml")
	want := []string{"ip", "netns", "exec", "ns1", "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
		"env", "-i", "A=1", "/usr/bin/patroni", "conf.yml"}
	if !slices.Equal(got, want) {
		t.Errorf("patroni:\n got %q\nwant %q", got, want)
	}
	// keepalived gets its private /dev, /run and /usr/bin, in "/": no chroot.
	got = c.command(placement{ns: "ns1", env: []string{"A=1"}, node: n, overlay: true}, "/usr/sbin/keepalived", "-f", "k.conf")
	want = []string{"ip", "netns", "exec", "ns1", "unshare", "--mount", "--propagation", "private",
		"sh", "-c", placeScript, "sh", "/", c.dir, n.dir, "overlay", "env", "-i", "A=1", "/usr/sbin/keepalived", "-f", "k.conf"}
	if !slices.Equal(got, want) {
		t.Errorf("keepalived:\n got %q\nwant %q", got, want)
	}
	// A service with a capability bounding set: dropped last, after the mounts that
	// need the capabilities.
	got = c.command(placement{ns: "ns1", env: []string{"A=1"}, node: n, overlay: true, bounding: "-all,+dac_read_search"}, "/usr/bin/patroni-vip-check", "watch")
	if tail := strings.Join(got[len(got)-7:], " "); tail != "setpriv --bounding-set=-all,+dac_read_search env -i A=1 /usr/bin/patroni-vip-check watch" {
		t.Errorf("a service's bounding set: %q", got)
	}
}

func TestCommandRootStack(t *testing.T) {
	c := &Cluster{opts: Options{Stack: debian13("/var/cache/x/root/")}, dir: "/tmp/pvc-e2e-1-1-x"}
	// Every program of a root's stack gets a private mount namespace and the chroot,
	// patronictl as much as Patroni.
	for _, p := range []placement{{ns: "sw"}, {ns: "n1", user: "postgres"}} {
		got := c.command(p, "/usr/bin/patronictl", "list")
		head := []string{"ip", "netns", "exec", p.ns, "unshare", "--mount", "--propagation", "private",
			"sh", "-c", placeScript, "sh", "/var/cache/x/root", c.dir, "-", "-"}
		if !slices.Equal(got[:len(head)], head) {
			t.Errorf("got %q", got)
		}
		tail := strings.Join(got[len(head):], " ")
		want := "env -i /usr/bin/patronictl list"
		if p.user != "" {
			want = "setpriv --reuid=postgres --regid=postgres --init-groups " + want
		}
		if tail != want {
			t.Errorf("after the mounts: %q, want %q", tail, want)
		}
	}
}

func TestPlaceScriptParses(t *testing.T) {
	if out, err := exec.Command("sh", "-n", "-c", placeScript).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s", err, out)
	}
	// What the lab notes found necessary, in the root: a fresh 1777 tmpfs on /dev/shm
	// (Patroni 4's multiprocessing), /proc, /sys, /dev/pts, and the run directory.
	for _, want := range []string{
		`mount -t tmpfs -o mode=1777 pvc-e2e-shm "$r/dev/shm"`,
		`mount --bind /proc "$r/proc"`, `mount --bind /sys "$r/sys"`, `mount --bind /dev/pts "$r/dev/pts"`,
		`mount --bind "$rundir" "$r$rundir"`, `exec chroot "$r" "$@"`,
	} {
		if !strings.Contains(placeScript, want) {
			t.Errorf("placeScript lacks %s", want)
		}
	}
}

func TestStackTTL(t *testing.T) {
	if h := HostStack(); h.PrimaryRole != "master" || h.MinTTL > 10 || h.Root != "/" || h.chrooted() {
		t.Errorf("host stack: %+v", h)
	}
	d := debian13("/r")
	if d.PrimaryRole != "primary" || d.MinTTL != 20 || !d.chrooted() || d.HostPath("/usr/bin/patroni") != "/r/usr/bin/patroni" {
		t.Errorf("debian13: %+v", d)
	}
}
