//go:build e2e

package systemd

// The template unit, packaging/patroni-vip-check@.service, under a real systemd: several
// watchers side by side, as keepalived-conf --replica-vip and --instance set them up, each
// with its own options, track file, watchdog, ExecStopPost= and journal identity; and two
// watchers pointed at one track file, of which one only ever keeps it.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const template = "patroni-vip-check@.service"

// instance is the unit of the template's instance name.
func instance(name string) string { return "patroni-vip-check@" + name + ".service" }

// installTemplate installs the shipped template, and for each instance the options file
// that gives its watch args.
func (n *node) installTemplate(args map[string]string) {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "packaging", template))
	if err != nil {
		n.t.Fatal(err)
	}
	for name, a := range args {
		if err := n.WriteFile("/etc/default/patroni-vip-check@"+name, "PATRONI_VIP_CHECK_ARGS=\""+a+"\"\n", 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
	if err := n.InstallUnit(n.t.Context(), template, string(b)); err != nil {
		n.t.Fatal(err)
	}
}

// serveStandin answers as a Patroni of its own on addr inside the container.
func (n *node) serveStandin(addr string, s *standin) {
	n.t.Helper()
	l, err := n.Listen("tcp", addr)
	if err != nil {
		n.t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	n.t.Cleanup(func() { srv.Close() })
}

// file is the track file at path: its content, or "missing".
func (n *node) file(path string) string {
	n.t.Helper()
	b, err := n.ReadFile(path)
	if os.IsNotExist(err) {
		return "missing"
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(b)
}

func (n *node) waitFile(path, want string) {
	n.t.Helper()
	waitFor(n.t, path+" "+want, 10*time.Second, func() (bool, string) {
		got := n.file(path)
		return got == want, "it says " + got
	})
}

func (n *node) showUnit(unit string, props ...string) map[string]string {
	n.t.Helper()
	m, err := n.Show(n.t.Context(), unit, props...)
	if err != nil {
		n.t.Fatal(err)
	}
	return m
}

// TestTemplate: three watchers side by side, as a node with a read VIP and a second
// cluster runs them (an IPv4 primary's, a replica's, and one asking Patroni over IPv6),
// each its own process, track file, watchdog, ExecStopPost= and journal identity; and an
// instance without options that does not start.
func TestTemplate(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		n := newNode(t, stack)
		replica, other := &standin{}, &standin{} // n.patroni (8008) says primary
		other.primary.Store(true)
		n.serveStandin("127.0.0.1:8009", replica)
		n.serveStandin("[::1]:8010", other)
		events := watchDir(t, n.Path(trackDir))
		urls := map[string]string{
			"a":         "http://127.0.0.1:8008/primary",
			"a-replica": "http://127.0.0.1:8009/primary",
			"b":         "http://[::1]:8010/primary",
		}
		n.installTemplate(urls)
		// Type=notify: start returns once every watcher said READY=1, after its first poll.
		if _, err := n.Systemctl(t.Context(), "start", instance("a"), instance("a-replica"), instance("b")); err != nil {
			t.Fatal(err)
		}
		pids := map[string]string{}
		for name := range urls {
			p := n.showUnit(instance(name), "ActiveState", "SubState", "WatchdogUSec", "MainPID", "NRestarts")
			if p["ActiveState"] != "active" || p["SubState"] != "running" || p["WatchdogUSec"] != "1s" || p["NRestarts"] != "0" {
				t.Errorf("%s after start: %v", instance(name), p)
			}
			for other, pid := range pids {
				if pid == p["MainPID"] {
					t.Errorf("%s and %s share the process %s", instance(name), instance(other), pid)
				}
			}
			pids[name] = p["MainPID"]
		}
		// Each keeps the track file of its name, and only that.
		for name, want := range map[string]string{"a": "1", "a-replica": "0", "b": "1"} {
			if got := n.file(trackDir + "/" + name); got != want {
				t.Errorf("%s/%s says %s, want %s", trackDir, name, got, want)
			}
		}
		if got := n.file(track); got != "missing" {
			t.Errorf("the plain unit's %s: %s", track, got)
		}
		replica.primary.Store(true)
		n.waitFile(trackDir+"/a-replica", "1")
		other.primary.Store(false)
		n.waitFile(trackDir+"/b", "0")
		if got := n.file(trackDir + "/a"); got != "1" {
			t.Errorf("%s/a says %s after the others changed", trackDir, got)
		}

		// Each logs under the journal's identity of its own unit, and as patroni-vip-check.
		n.waitJournal("not primary: 503 from http://[::1]:8010/primary", "-u", instance("b"))
		for name, url := range urls {
			entries, err := n.Journal(t.Context(), "-t", "patroni-vip-check", "_SYSTEMD_UNIT="+instance(name))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 0 {
				t.Errorf("no line of %s under -t patroni-vip-check", instance(name))
			}
			for _, e := range entries {
				if !strings.Contains(e["MESSAGE"], url) || e["_TRANSPORT"] != "journal" {
					t.Errorf("%s logged %q (%s), not about %s", instance(name), e["MESSAGE"], e["_TRANSPORT"], url)
				}
			}
		}

		// A stopped watcher is killed by its own watchdog and started again; its
		// ExecStopPost= removes its own file only, and the others run on untouched.
		stoppedAt := time.Now()
		n.run("kill", "-STOP", pids["a"])
		waitFor(t, "a restarted", 10*time.Second, func() (bool, string) {
			p := n.showUnit(instance("a"), "MainPID", "NRestarts", "ActiveState")
			return p["MainPID"] != pids["a"] && p["MainPID"] != "0" && p["NRestarts"] == "1" && p["ActiveState"] == "active", fmt.Sprint(p)
		})
		n.waitFile(trackDir+"/a", "1")
		if !events.deletedAfter("a", stoppedAt) {
			t.Error("a's track file was not removed between the watchdog's kill and the restart")
		}
		for _, name := range []string{"a-replica", "b"} {
			if p := n.showUnit(instance(name), "MainPID", "NRestarts"); p["MainPID"] != pids[name] || p["NRestarts"] != "0" {
				t.Errorf("%s after a's watchdog: %v, was %s", instance(name), p, pids[name])
			}
			if events.deletedAfter(name, stoppedAt) {
				t.Errorf("%s's track file was removed with a's", name)
			}
		}
		log := n.journal("-u", instance("a"))
		if !strings.Contains(log, "Watchdog timeout (limit 1s)!") {
			t.Errorf("no watchdog timeout in a's journal:\n%s", tail(log, 20))
		}

		// Stopping one removes its file, and no other.
		n.run("systemctl", "stop", instance("a-replica"))
		if got := n.file(trackDir + "/a-replica"); got != "missing" {
			t.Errorf("a-replica's track file after its stop: %s", got)
		}
		if a, b := n.file(trackDir+"/a"), n.file(trackDir+"/b"); a != "1" || b != "0" {
			t.Errorf("after a-replica's stop: a %s, b %s", a, b)
		}

		// An instance without options does not start, and keeps no file: its default URL
		// asks for the primary.
		if _, err := n.Systemctl(t.Context(), "start", instance("c")); err == nil {
			t.Errorf("%s started without /etc/default/patroni-vip-check@c", instance("c"))
		}
		if p := n.showUnit(instance("c"), "AssertResult", "ActiveState"); p["AssertResult"] != "no" || p["ActiveState"] == "active" {
			t.Errorf("%s: %v", instance("c"), p)
		}
		if got := n.file(trackDir + "/c"); got != "missing" {
			t.Errorf("%s/c: %s", trackDir, got)
		}

		// The template's sandbox is the plain unit's.
		score, table, err := n.Security(t.Context(), instance("a"))
		if err != nil {
			t.Fatal(err)
		}
		if score > 2.5 {
			t.Errorf("%s: exposure %.1f, want 2.5 or less\n%s", instance("a"), score, table)
		}
	})
}

// TestTemplateSharedTrackFile: two watchers pointed at one track file, an instance and the
// plain unit, never both keep it. The instance names its own file and a second
// --track-file in its options is refused; the plain unit, told the instance's file, finds
// it kept, exits and is restarted again and again, and its ExecStopPost= leaves the file
// to its keeper every time: the keeper's 1 is never removed nor overwritten.
func TestTemplateSharedTrackFile(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		n := newNode(t, stack)
		intruder := &standin{} // says 503: a watcher that took the file would write 0
		n.serveStandin("127.0.0.1:8009", intruder)
		n.installTemplate(map[string]string{
			"a": "http://127.0.0.1:8008/primary",
			"x": "--track-file " + trackDir + "/a http://127.0.0.1:8009/primary",
		})
		n.run("systemctl", "start", instance("a"))
		n.waitFile(trackDir+"/a", "1")
		keeper := n.showUnit(instance("a"), "MainPID")["MainPID"]
		events := watchDir(t, n.Path(trackDir))
		from := time.Now()

		// An instance whose options name another file is refused before it touches any.
		n.run("systemctl", "start", "--no-block", instance("x"))
		n.waitJournal("a second --track-file", "-u", instance("x"))

		// The plain unit told a's file.
		n.install(shippedUnit(t), "", "--track-file", trackDir+"/a", "http://127.0.0.1:8009/primary")
		n.run("systemctl", "start", "--no-block", unitName)
		waitFor(t, "the plain unit refused twice", 20*time.Second, func() (bool, string) {
			p := n.show("NRestarts", "ActiveState", "Result")
			restarts, _ := strconv.Atoi(p["NRestarts"])
			return restarts >= 2, fmt.Sprint(p)
		})
		log := n.journal("-u", unitName)
		for _, want := range []string{
			trackDir + "/a is kept by process " + keeper,
			"left to it",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("the plain unit's journal has no %q:\n%s", want, tail(log, 20))
			}
		}
		if got := n.file(trackDir + "/a"); got != "1" {
			t.Errorf("a's track file says %s, want its keeper's 1", got)
		}
		if events.deletedAfter("a", from) || events.writtenAfter("a", from) {
			t.Error("a's track file was removed or rewritten while its keeper ran")
		}
		if p := n.showUnit(instance("a"), "MainPID", "NRestarts"); p["MainPID"] != keeper || p["NRestarts"] != "0" {
			t.Errorf("the keeper %s: %v", keeper, p)
		}
		if intruder.requests.Load() != 0 {
			t.Errorf("a refused watcher asked Patroni %d times", intruder.requests.Load())
		}
	})
}

// writtenAfter reports whether name was written or renamed into place after t.
func (d *dirEvents) writtenAfter(name string, t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.events {
		if e.name == name && e.mask&(unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE) != 0 && e.at.After(t) {
			return true
		}
	}
	return false
}
