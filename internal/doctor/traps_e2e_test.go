//go:build e2e

package doctor

// Every trap the doctor reports as a failure, shown with real keepalived:
// the bad configuration misbehaves (the VIP on a node whose check never
// passed, or a VIP no one can use), the doctor flags it, and the fixed
// configuration both works and passes the doctor.

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

const script = "patroni_primary"

// oneshot is the generated oneshot configuration for this keepalived.
func (l *lab) oneshot(edits ...string) string {
	return l.conf(vipconf.Oneshot, l.f.version, edits...)
}

func TestUnsafeScriptPathTakesTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		l.install("unsafe/patroni-vip-check", checkBinary(t))
		bad := l.oneshot(l.path("bin/patroni-vip-check"), l.path("unsafe/patroni-vip-check"))
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectLog("Unsafe permissions found for script '" + l.path("unsafe/patroni-vip-check") + "'")
		l.expectLog("Disabling track script " + script + " due to insecure")
		l.expectVIP("the check was dropped, Patroni says 503")
		l.expectFinding(l.doctor(bad), Failure, l.path("unsafe")+" is writable by others (0777)", "Unsafe permissions found")

		good := l.oneshot()
		l.gated(good)
		l.expectPasses(l.doctor(good))
	})
}

func TestMissingBinaryTakesTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		bad := l.oneshot(l.path("bin/patroni-vip-check"), l.path("bin/absent"))
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectLog("Disabling track script " + script + " since not found")
		l.expectVIP("no check, Patroni says 503")
		l.expectFinding(l.doctor(bad), Failure, l.path("bin/absent")+" cannot be accessed")

		l.install("bin/notexec", checkBinary(t))
		must(t, os.Chmod(l.work+"/bin/notexec", 0o644))
		bad = l.oneshot(l.path("bin/patroni-vip-check"), l.path("bin/notexec"))
		l.start(bad)
		l.expectLog("is not executable for uid:gid 0:0 - disabling")
		l.expectVIP("a check that is not executable, Patroni says 503")
		l.expectFinding(l.doctor(bad), Failure, "is not executable for root (mode 0644)")

		good := l.oneshot()
		l.gated(good)
		l.expectPasses(l.doctor(good))
	})
}

// Without enable_script_security an unsafe path still runs: a warning.
func TestNoScriptSecurityRunsUnsafePaths(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		l.install("unsafe/patroni-vip-check", checkBinary(t))
		conf := l.oneshot(l.path("bin/patroni-vip-check"), l.path("unsafe/patroni-vip-check"),
			"    enable_script_security\n", "")
		l.gated(conf)
		l.expectLog("Unsafe permissions found for script '" + l.path("unsafe/patroni-vip-check") + "'.")
		l.expectLog("SECURITY VIOLATION - scripts are being executed but script_security not enabled")
		fs := l.doctor(conf)
		l.expectFinding(fs, Warning, "no enable_script_security")
		l.expectFinding(fs, Warning, l.path("unsafe")+" is writable by others", "anyone who can write there can run code as root")
		l.expectPasses(fs)
	})
}

// A file keepalived cannot exec counts as a passing check.
func TestExecFailureCountsAsSuccess(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		l.write("bin/patroni-vip-check", "this is not a program\n", 0o755)
		bad := l.oneshot()
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectLog("VRRP_Script(" + script + ") succeeded")
		l.expectVIP("the check cannot run, Patroni says 503")
		l.expectFinding(l.doctor(bad), Failure, "does not run (exec format error)", "counts a script that fails to start as a success")

		l.install("bin/patroni-vip-check", checkBinary(t))
		l.gated(bad) // the same configuration, with the real check
		l.expectPasses(l.doctor(bad))
	})
}

// no_accept: the VIP moves, and every packet to it is dropped.
func TestNoAcceptDropsTrafficToTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		cl := l.withClient()
		serveIn(t, l.ns, "0.0.0.0:5432")
		bad := l.oneshot("    accept\n", "    no_accept\n")
		l.start(bad)
		l.expectVIP("Patroni says 200")
		if err := dialFrom(cl, nodeAddr+":5432", 2*time.Second); err != nil {
			t.Fatalf("the node address is unreachable from the client: %v", err)
		}
		if err := dialFrom(cl, vipAddr+":5432", 2*time.Second); err == nil {
			t.Errorf("keepalived %s with no_accept: the VIP answered", l.f.version)
		}
		l.expectLog("setting firewall drop rule")
		l.expectFinding(l.doctor(bad), Failure, "no_accept makes keepalived "+l.f.version.String()+" drop every packet addressed to the VIP")

		good := l.oneshot()
		l.start(good)
		l.expectVIP("Patroni says 200")
		if err := dialFrom(cl, vipAddr+":5432", 2*time.Second); err != nil {
			t.Errorf("keepalived %s with accept: the VIP does not answer: %v", l.f.version, err)
		}
		l.expectPasses(l.doctor(good))
	})
}

// vrrp_strict turns accept off where the configuration does not set it:
// the same dropped traffic. Set, accept holds (VRRP version 3).
func TestVRRPStrictDropsTrafficToTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		cl := l.withClient()
		serveIn(t, l.ns, "0.0.0.0:5432")
		bad := l.oneshot("global_defs {\n", "global_defs {\n    vrrp_strict\n", "    accept\n", "")
		l.start(bad)
		l.expectVIP("Patroni says 200")
		if err := dialFrom(cl, vipAddr+":5432", 2*time.Second); err == nil {
			t.Errorf("keepalived %s with vrrp_strict and no accept: the VIP answered", l.f.version)
		}
		l.expectLog("setting firewall drop rule")
		l.expectFinding(l.doctor(bad), Failure, "vrrp_strict (which forces no_accept) makes keepalived "+l.f.version.String()+" drop every packet")

		strict := l.oneshot("global_defs {\n", "global_defs {\n    vrrp_strict\n")
		l.start(strict)
		l.expectVIP("Patroni says 200")
		if err := dialFrom(cl, vipAddr+":5432", 2*time.Second); err != nil {
			t.Errorf("keepalived %s with vrrp_strict and accept: the VIP does not answer: %v", l.f.version, err)
		}
		fs := l.doctor(strict)
		l.expectFinding(fs, Warning, "vrrp_strict")
		l.expectPasses(fs)
	})
}

// A weight turns FAULT into a lower priority: a lone node keeps the VIP.
func TestWeightKeepsTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		bad := l.oneshot("        "+script+"\n    }\n}", "        "+script+" weight -20\n    }\n}")
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectLog("VRRP_Script(" + script + ") failed")
		l.expectVIP("the check fails, but only lowers the priority")
		l.expectFinding(l.doctor(bad), Failure, "track_script "+script+" has weight -20")

		good := l.oneshot()
		l.gated(good)
		l.expectPasses(l.doctor(good))
	})
}

// keepalived's timeout below the check's own: a slow but good answer is
// killed, and the primary never gets the VIP.
func TestTimeoutKillsSlowAnswers(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		// 2.2.7: timeout 1 (whole seconds), the check allowed 2s, Patroni
		// answering in 1.5 s. 2.3.3: timeout 0.5, 700ms, 0.6 s.
		oldTimeout, own, slow, fixed := "timeout 1\n", "2s", 1500*time.Millisecond, "timeout 3\n"
		check := "--state-dir"
		if l.f.version.FractionalTimers() {
			oldTimeout, own, slow, fixed = "timeout 0.5\n", "700ms", 600*time.Millisecond, "timeout 0.9\n"
			check = "--timeout 400ms --state-dir"
		}
		bad := l.oneshot(check, "--timeout "+own+" --state-dir")
		l.patr.set(http.StatusOK, slow)
		l.patr.reset()
		l.start(bad)
		l.expectNoVIP("Patroni says 200, slowly")
		if n, hangups := l.patr.counts(); n == 0 || len(hangups) == 0 {
			t.Errorf("keepalived %s: %d requests, none cut short: %v", l.f.version, n, hangups)
		} else if hangups[0] >= slow {
			t.Errorf("keepalived %s: the check hung up after %v, not before Patroni's %v", l.f.version, hangups[0], slow)
		}
		l.expectFinding(l.doctor(bad), Failure, "is not above the check's --timeout "+own, "kills slow answers")

		good := l.oneshot(check, "--timeout "+own+" --state-dir", oldTimeout, fixed)
		l.start(good)
		l.expectVIP("Patroni says 200 within keepalived's timeout")
		l.expectPasses(l.doctor(good))
	})
}

// keepalived before 2.3.2 reads "interval 0.2" as 1 s; 2.3.2 and later
// run the check five times a second.
func TestFractionalInterval(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		conf := l.conf(vipconf.Oneshot, v233) // packaging/keepalived-2.3.conf
		l.patr.set(http.StatusOK, 0)
		l.start(conf)
		l.expectVIP("Patroni says 200")
		l.patr.reset()
		time.Sleep(4 * time.Second)
		n, _ := l.patr.counts()
		fs := l.doctor(conf)
		if l.f.version.FractionalTimers() {
			if n < 12 {
				t.Errorf("keepalived %s, interval 0.2: %d runs in 4 s", l.f.version, n)
			}
			l.expectPasses(fs)
			return
		}
		l.expectLog("invalid number '0.2'")
		if n > 6 {
			t.Errorf("keepalived %s, interval 0.2: %d runs in 4 s, want about 4", l.f.version, n)
		}
		l.expectFinding(fs, Failure, "interval 0.2: invalid number '0.2'", "runs the check every 1s")
		l.expectFinding(fs, Failure, "timeout 0.5: invalid number")

		good := l.oneshot()
		l.gated(good)
		l.expectPasses(l.doctor(good))
	})
}

// "weight 0 reverse" on the check turns the gate upside down: the VIP
// while Patroni says 503, none while it says 200.
func TestReverseGateInverts(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		bad := l.oneshot("    fall 1\n", "    fall 1\n    weight 0 reverse\n")
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectVIP("weight 0 reverse, Patroni says 503")
		l.patr.set(http.StatusOK, 0)
		l.expectVIPGone("weight 0 reverse, Patroni says 200")
		l.expectFinding(l.doctor(bad), Failure, "track_script "+script+" has weight 0 reverse", "the primary never holds the VIP")

		good := l.oneshot()
		l.gated(good)
		l.expectPasses(l.doctor(good))
	})
}

// A track_script on a vrrp_sync_group gates its instances.
func TestSyncGroupGates(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		conf := l.oneshot("    track_script {\n        "+script+"\n    }\n}",
			"}\nvrrp_sync_group pg {\n    group {\n        patroni_vip\n    }\n    track_script {\n        "+script+"\n    }\n}")
		l.gated(conf)
		fs := l.doctor(conf)
		l.expectFinding(fs, OK, "is gated by vrrp_script "+script+" (from vrrp_sync_group pg)")
		l.expectPasses(fs)
	})
}

// Without virtual_router_id keepalived's VRRP process stops: no VIP.
func TestNoRouterIDStopsVRRP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		bad := l.oneshot("    virtual_router_id 51\n", "")
		l.start(bad)
		l.expectLog("the virtual router id must be set")
		l.expectNoVIP("no virtual_router_id, Patroni says 200")
		l.expectFinding(l.doctor(bad), Failure, "has no virtual_router_id: keepalived's VRRP process stops at start")
	})
}

// The global vrrp_version 3 keeps accept under vrrp_strict, as the
// instance's own version line does.
func TestGlobalVRRPVersionKeepsAccept(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		cl := l.withClient()
		serveIn(t, l.ns, "0.0.0.0:5432")
		conf := l.oneshot("global_defs {\n", "global_defs {\n    vrrp_version 3\n    vrrp_strict\n", "    version 3\n", "")
		l.start(conf)
		l.expectVIP("Patroni says 200")
		if err := dialFrom(cl, vipAddr+":5432", 2*time.Second); err != nil {
			t.Errorf("keepalived %s with vrrp_version 3, vrrp_strict and accept: the VIP does not answer: %v", l.f.version, err)
		}
		fs := l.doctor(conf)
		l.expectFinding(fs, OK, "accepts traffic to its VIPs")
		l.expectPasses(fs)
	})
}

// The watch set-up: a track_file kept by patroni-vip-check watch (here,
// by the test).
func (l *lab) watch(edits ...string) string {
	return l.conf(vipconf.Watch, l.f.version, edits...)
}

func TestTrackFileDirectoryMissingTakesTheVIP(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		conf := l.watch()
		l.start(conf)
		if l.f.version.AtLeast(keepalived.Version{Major: 2, Minor: 2, Patch: 8}) {
			// keepalived's parent and VRRP child write to the same pipe,
			// and a line was once cut by the other's: match its start.
			l.expectLog("realpath() error 2 (No such file")
			l.expectLog("track file " + script + " not found, ignoring")
		} else {
			l.expectLog("Track file directory for " + script + " does not exist - removing")
		}
		l.expectVIP("no track file, no Patroni")
		l.expectFinding(l.doctor(conf), Failure, "the directory "+l.path("run")+" does not exist", "takes the VIP without it")

		must(t, os.Mkdir(l.work+"/run", 0o755))
		l.start(conf)
		l.expectNoVIP("the directory exists, the file does not")
		l.write("run/eligible", "1\n", 0o644)
		l.expectVIP("the file says 1")
		l.write("run/eligible", "0\n", 0o644)
		l.expectVIPGone("the file says 0")
		fs := l.doctor(conf)
		l.expectFinding(fs, Warning, "nothing creates it at boot")
		l.expectPasses(fs)
	})
}

// The track file's directory removed and made again under a running
// keepalived: keepalived sees the file go (FAULT), and its inotify watch
// goes with the directory: a 1 in the new one never brings the VIP back.
func TestTrackDirMadeAgainIsNotWatched(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(l.work+"/run", 0o755))
		l.write("run/eligible", "1\n", 0o644)
		conf := l.watch()
		l.start(conf)
		l.expectVIP("the file says 1")
		l.expectPasses(l.doctor(conf))

		must(t, os.RemoveAll(l.work+"/run"))
		l.expectVIPGone("the file was removed with its directory")
		must(t, os.Mkdir(l.work+"/run", 0o755))
		l.write("run/eligible", "1\n", 0o644)
		l.expectNoVIP("the file says 1 in a directory made again")
		l.expectFinding(l.doctor(conf), Failure, "does not watch "+l.path("run")+" as it is now", "systemctl restart keepalived")

		l.start(conf)
		l.expectVIP("restarted, the file says 1")
		fs := l.doctor(conf)
		l.expectFinding(fs, OK, "watches "+l.path("run"))
		l.expectPasses(fs)
	})
}

func TestTrackFileWithoutReverseFailsOpen(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(l.work+"/run", 0o755))
		bad := l.watch("    weight 0 reverse\n", "    weight 0\n")
		l.start(bad)
		l.expectVIP("no file at all, without reverse")
		l.write("run/eligible", "garbage\n", 0o644)
		if !never(2*time.Second, func() bool { return !l.vipHeld() }) {
			t.Errorf("keepalived %s released the VIP on garbage without reverse", l.f.version)
		}
		l.expectFinding(l.doctor(bad), Failure, "weight 0 without reverse", "fails open")

		os.Remove(l.work + "/run/eligible")
		good := l.watch()
		l.start(good)
		l.expectNoVIP("no file, with reverse")
		l.write("run/eligible", "garbage\n", 0o644)
		l.expectNoVIP("garbage, with reverse")
		l.expectPasses(l.doctor(good))
	})
}

// enable_script_security without script_user, where the user
// keepalived_script does not exist: keepalived drops the script.
func TestNoScriptUserDropsTheScript(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		if _, err := os.Stat(l.f.root + "/etc/passwd"); err == nil {
			data, _ := os.ReadFile(l.f.root + "/etc/passwd")
			if strings.Contains(string(data), "\nkeepalived_script:") {
				t.Skip("the user keepalived_script exists here")
			}
		}
		bad := l.oneshot("    script_user root\n", "")
		l.patr.set(http.StatusServiceUnavailable, 0)
		l.start(bad)
		l.expectLog("Unable to set default user keepalived_script for script")
		l.expectLog("track script " + script + " not found")
		l.expectVIP("no check, Patroni says 503")
		l.expectFinding(l.doctor(bad), Failure, "no script_user and no user keepalived_script")
	})
}

// Words after the quoted command are dropped: the check asks the default
// URL, 127.0.0.1:8008, where Patroni does not listen.
func TestUnquotedScriptLoosesItsURL(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		good := l.oneshot()
		data, _ := os.ReadFile(l.work + "/keepalived-1.conf")
		line := ""
		for _, s := range strings.Split(string(data), "\n") {
			if strings.Contains(s, `script "`) {
				line = s
			}
		}
		bad := l.oneshot(line, strings.ReplaceAll(line, `"`, ""))
		l.start(bad)
		l.expectNoVIP("Patroni says 200 at the URL keepalived dropped")
		l.expectFinding(l.doctor(bad), Failure, "keepalived runs only "+l.path("bin/patroni-vip-check"))

		l.gated(good)
	})
}
