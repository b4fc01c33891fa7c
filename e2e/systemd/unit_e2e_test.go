//go:build e2e

// These tests run packaging/patroni-vip-check.service under a real systemd, Debian 12's
// (252) and Debian 13's (257), booted in a container per test, with Patroni stood in for
// by the test: systemd itself starts the watch, waits for its READY=1, runs its watchdog,
// kills and restarts it, runs ExecStopPost=, applies the unit's sandbox, and keeps its
// journal.
package systemd

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// variant is a unit to test: the shipped file, with a drop-in or not.
type variant struct {
	name   string
	dropIn string
}

func variants(t *testing.T) []variant {
	return []variant{{"shipped", ""}}
}

// with joins drop-in texts into one.
func with(parts ...string) string { return strings.Join(parts, "\n") }

// probeLine is a drop-in that runs pvc-probe before the watch, in the same sandbox.
func probeLine(ops ...string) string {
	return "[Service]\nExecStartPre=" + probe + " " + strings.Join(ops, " ") + "\n"
}

// TestWatch: READY=1, the watchdog, the track file following Patroni, the journal,
// Patroni on the node's address, and no 1 left behind by a hung watcher or a stop.
func TestWatch(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		for _, v := range variants(t) {
			t.Run(v.name, func(t *testing.T) {
				n := newNode(t, stack)
				events := watchDir(t, n.Path(trackDir))
				n.install(shippedUnit(t), v.dropIn, "http://127.0.0.1:8008/primary")
				// Type=notify: start returns once the watch said READY=1, after its first poll.
				n.start()
				p := n.show("ActiveState", "SubState", "WatchdogUSec", "MainPID")
				if p["ActiveState"] != "active" || p["SubState"] != "running" || p["WatchdogUSec"] != "1s" {
					t.Fatalf("after start: %v", p)
				}
				if got := n.trackValue(); got != "1" {
					t.Fatalf("track file after READY=1: %s, want 1", got)
				}
				// systemd stamps each WATCHDOG=1 it receives.
				first := n.show("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
				waitFor(t, "a second WATCHDOG=1", 3*time.Second, func() (bool, string) {
					now := n.show("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
					return now != first && now != "0", "stamp " + now
				})

				n.patroni.primary.Store(false)
				n.waitTrack("0")
				n.patroni.primary.Store(true)
				n.waitTrack("1")
				n.waitJournal("primary: 200 from http://127.0.0.1:8008/primary (role=master, timeline=1); was not primary for", "-t", "patroni-vip-check")
				lines, err := n.Journal(t.Context(), "-t", "patroni-vip-check")
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range lines {
					// Through the journal's native socket, not stderr: the fields are the watch's.
					if e["_TRANSPORT"] != "journal" || e["_SYSTEMD_UNIT"] != unitName {
						t.Errorf("journal entry %q: transport %q unit %q, want journal, %s", e["MESSAGE"], e["_TRANSPORT"], e["_SYSTEMD_UNIT"], unitName)
					}
				}
				if msgs := Messages(lines); !strings.Contains(msgs, "not primary: 503 from http://127.0.0.1:8008/primary (role=replica, timeline=1)") {
					t.Errorf("no line for the 503 in the journal:\n%s", msgs)
				}

				// A stopped watcher stops answering the watchdog: systemd kills it with
				// SIGKILL, its ExecStopPost= removes the track file, and it is started again.
				pid := p["MainPID"]
				stoppedAt := time.Now()
				n.run("kill", "-STOP", pid)
				waitFor(t, "the watch restarted", 10*time.Second, func() (bool, string) {
					p := n.show("MainPID", "NRestarts", "ActiveState")
					return p["MainPID"] != pid && p["MainPID"] != "0" && p["NRestarts"] == "1" && p["ActiveState"] == "active", fmt.Sprint(p)
				})
				n.waitTrack("1")
				log := n.journal("-u", unitName)
				for _, want := range []string{
					"Watchdog timeout (limit 1s)!",
					fmt.Sprintf("Killing process %s (patroni-vip-che) with signal SIGKILL.", pid),
					"Failed with result 'watchdog'.",
				} {
					if !strings.Contains(log, want) {
						t.Errorf("the journal has no %q:\n%s", want, tail(log, 20))
					}
				}
				if !events.deletedAfter("eligible", stoppedAt) {
					t.Error("the track file was not removed between the watchdog's kill and the restart")
				}

				// Patroni listening on the node's address rather than loopback.
				if err := n.WriteFile("/etc/default/patroni-vip-check", "PATRONI_VIP_CHECK_ARGS=\"http://"+nodeAddr+":8008/primary\"\n", 0o644); err != nil {
					t.Fatal(err)
				}
				before := n.patroni.requests.Load()
				n.run("systemctl", "restart", unitName)
				n.waitTrack("1")
				n.waitJournal("primary: 200 from http://"+nodeAddr+":8008/primary", "-t", "patroni-vip-check")
				if n.patroni.requests.Load() == before {
					t.Error("the stand-in saw no request after the restart")
				}

				stoppedAt = time.Now()
				n.run("systemctl", "stop", unitName)
				if got := n.trackValue(); got != "missing" {
					t.Errorf("track file after stop: %s, want it removed", got)
				}
				if !events.deletedAfter("eligible", stoppedAt) {
					t.Error("no removal of the track file seen on stop")
				}
			})
		}
	})
}

// TestTextfile: the watch's --textfile in node_exporter's directory, read by the real
// node_exporter. ProtectSystem=strict makes /var read-only: without the shipped unit's
// ReadWritePaths= line for it, the watch cannot write there; with it, or a drop-in that
// says the same, it can.
func TestTextfile(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		writeProbe := probeLine("write:" + promDir + "/pvc-probe")
		stripped := withoutLinesNaming("/var/lib/prometheus") // whatever the shipped unit says of it
		cases := []struct {
			name     string
			unit     string
			dropIn   string
			writable bool
		}{
			{"without ReadWritePaths", shippedUnit(t, stripped), writeProbe, false},
			{"drop-in ReadWritePaths", shippedUnit(t, stripped), with("[Service]\nReadWritePaths=-"+promDir+"\n", writeProbe), true},
			{"shipped", shippedUnit(t), writeProbe, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				n := newNode(t, stack)
				n.install(tc.unit, tc.dropIn, "--textfile", prom, "http://127.0.0.1:8008/primary")
				n.start() // READY=1 comes after the first poll, which writes the textfile
				n.waitTrack("1")
				probe := n.probeResults()["write "+promDir+"/pvc-probe"]
				_, err := n.ReadFile(prom)
				if !tc.writable {
					if !strings.Contains(probe, "read-only file system") {
						t.Errorf("writing in %s from the unit's sandbox: %q, want read-only file system", promDir, probe)
					}
					if err == nil {
						t.Errorf("%s was written", prom)
					}
					if strings.Contains(n.metrics(), "patroni_vip_check_eligible") {
						t.Error("node_exporter serves patroni_vip_check_eligible")
					}
					return
				}
				if probe != "ok" {
					t.Errorf("writing in %s from the unit's sandbox: %q", promDir, probe)
				}
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "node_exporter serving eligible 1", 5*time.Second, func() (bool, string) {
					m := n.metrics()
					return strings.Contains(m, "\npatroni_vip_check_eligible 1\n"), grepLines(m, "patroni_vip_check_eligible|node_textfile")
				})
				n.patroni.primary.Store(false)
				waitFor(t, "node_exporter serving eligible 0", 5*time.Second, func() (bool, string) {
					m := n.metrics()
					return strings.Contains(m, "\npatroni_vip_check_eligible 0\n"), grepLines(m, "patroni_vip_check_eligible|node_textfile")
				})
			})
		}
	})
}

// TestCertificates: Patroni's REST API with TLS and verify_client required; the CA, the
// client certificate and its key owned by postgres, mode 0600, in a 0700 directory of
// postgres. Root reads them through CAP_DAC_READ_SEARCH, the unit's one capability; with
// none, it cannot.
func TestCertificates(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		args := []string{"--cacert", tlsDir + "/ca.pem", "--cert", tlsDir + "/client.pem", "--key", tlsDir + "/client.key", "https://127.0.0.1:8443/primary"}
		cases := []struct {
			name     string
			dropIn   string
			readable bool
		}{
			{"shipped", "", true},
			{"no capability", "[Service]\nCapabilityBoundingSet=\n", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				n := newNode(t, stack)
				n.install(shippedUnit(t), tc.dropIn, args...)
				if tc.readable {
					n.start()
					n.waitTrack("1")
					if n.patroni.mtls.Load() == 0 {
						t.Error("Patroni saw no request with a verified client certificate")
					}
					return
				}
				n.run("systemctl", "start", "--no-block", unitName)
				n.waitJournal("permission denied", "-t", "patroni-vip-check")
				if got := n.trackValue(); got == "1" {
					t.Errorf("track file %s without the certificate", got)
				}
				if n.patroni.mtls.Load() != 0 {
					t.Error("Patroni saw a client certificate")
				}
			})
		}
	})
}

// TestSandbox: what a process of the unit may and may not do, tried by pvc-probe as an
// ExecStartPre= (same sandbox as the watch): read PostgreSQL's data directory (0700,
// postgres) and watch it with inotify, for a watch that follows PostgreSQL's own files;
// write only its track file's directory.
func TestSandbox(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		for _, v := range variants(t) {
			t.Run(v.name, func(t *testing.T) {
				n := newNode(t, stack)
				n.install(shippedUnit(t), with(v.dropIn, probeLine(
					"list:"+dataDir, "read:"+dataDir+"/PG_VERSION", "read:"+tlsDir+"/client.key",
					"inotify:"+dataDir,
					"write:"+trackDir+"/pvc-probe",
					"write:"+dataDir+"/pvc-probe", "write:/etc/pvc-probe", "write:/run/pvc-probe",
					"connect:127.0.0.1:8008", "connect:"+nodeAddr+":8008",
				)), "http://127.0.0.1:8008/primary")
				n.run("systemctl", "start", "--no-block", unitName)
				n.waitJournal("inotify "+dataDir+": watching", "-t", "pvc-probe")
				if _, err := n.RunAs(t.Context(), "postgres", "touch", dataDir+"/postmaster.pid"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the unit active", 10*time.Second, func() (bool, string) {
					p := n.show("ActiveState", "SubState")
					return p["ActiveState"] == "active", fmt.Sprint(p)
				})
				got := n.journal("-t", "pvc-probe")
				res := n.probeResults()
				for what, want := range map[string]string{
					"list " + dataDir:                  "ok",
					"read " + dataDir + "/PG_VERSION":  "ok",
					"read " + tlsDir + "/client.key":   "ok",
					"inotify " + dataDir:               "ok",
					"write " + trackDir + "/pvc-probe": "ok",
					"write " + dataDir + "/pvc-probe":  "read-only file system",
					"write /etc/pvc-probe":             "read-only file system",
					"write /run/pvc-probe":             "read-only file system",
					"connect 127.0.0.1:8008":           "ok",
					"connect " + nodeAddr + ":8008":    "ok",
				} {
					if r := res[what]; r != want && !(want != "ok" && strings.HasPrefix(r, "error: ") && strings.Contains(r, want)) {
						t.Errorf("%s: %q, want %q", what, r, want)
					}
				}
				if !strings.Contains(got, "inotify "+dataDir+": event postmaster.pid\n") {
					t.Errorf("no inotify event for postmaster.pid:\n%s", got)
				}
			})
		}
	})
}

// TestSecurity: systemd-analyze security of the unit as shipped.
func TestSecurity(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		const want = 2.5
		n := newNode(t, stack)
		n.install(shippedUnit(t), "", "http://127.0.0.1:8008/primary")
		shipped, table, err := n.Security(t.Context(), unitName)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shipped: exposure %.1f\n%s", shipped, table)
		if shipped > want {
			t.Errorf("shipped: exposure %.1f, want %.1f or less", shipped, want)
		}
	})
}

// TestLeftOut: settings that would lower the exposure further but break the watch's job,
// shown failing on top of the shipped unit, so that nobody adds them unaware.
func TestLeftOut(t *testing.T) {
	onEachStack(t, func(t *testing.T, stack string) {
		// PrivateUsers=yes: in its user namespace, postgres is nobody, and no capability
		// reaches files of an unmapped owner: the certificate cannot be read.
		t.Run("PrivateUsers=yes", func(t *testing.T) {
			n := newNode(t, stack)
			n.install(shippedUnit(t), "[Service]\nPrivateUsers=yes\n",
				"--cacert", tlsDir+"/ca.pem", "--cert", tlsDir+"/client.pem", "--key", tlsDir+"/client.key", "https://127.0.0.1:8443/primary")
			n.run("systemctl", "start", "--no-block", unitName)
			n.waitJournal("permission denied", "-t", "patroni-vip-check")
			if got := n.trackValue(); got == "1" {
				t.Errorf("track file %s without the certificate", got)
			}
		})
		// IPAddressAllow=localhost: Patroni on the node's own address is cut off, and the
		// address is the site's, which the package cannot know.
		t.Run("IPAddressAllow=localhost", func(t *testing.T) {
			n := newNode(t, stack)
			n.install(shippedUnit(t), "[Service]\nIPAddressDeny=any\nIPAddressAllow=localhost\n", "http://"+nodeAddr+":8008/primary")
			n.start()
			if got := n.trackValue(); got != "0" {
				t.Errorf("track file %s, want 0", got)
			}
			if r := n.patroni.requests.Load(); r != 0 {
				t.Errorf("Patroni saw %d requests", r)
			}
			if bad := n.show("IPAddressDeny")["IPAddressDeny"]; bad == "" {
				t.Error("IPAddressDeny= not applied")
			}
		})
	})
}

// grepLines is the lines of text that contain any of the |-separated words.
func grepLines(text, words string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, w := range strings.Split(words, "|") {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
