//go:build e2e

package doctor

// The shipped examples, as they are, in real keepalived: they pass its
// configuration test, they move the VIP with the check (or the file),
// and the doctor finds no failure in them. Their paths are the
// packages' (/usr/bin/patroni-vip-check, /run/...): keepalived and the
// doctor run in a private mount namespace where /usr/bin holds the
// check built here (an overlay) and /run is a fresh tmpfs, so that this
// machine's own /usr/bin and /run are never touched.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// packageMounts is the shell that sets up the packages' paths.
func (l *lab) packageMounts() string {
	r := l.f.root
	return fmt.Sprintf(`mount -t overlay pvc-bin -o lowerdir=%[1]s/bin:%[2]s/usr/bin %[2]s/usr/bin && `+
		`mount -t tmpfs -o mode=0755,size=4m pvc-run %[2]s/run && `+
		`mkdir -m 0755 %[2]s/run/keepalived-patroni-vip-check && `+
		`mount --bind %[1]s/run %[2]s/run/keepalived-patroni-vip-check && `, l.work, r)
}

// startPackaged runs keepalived with the packages' paths in place.
func (l *lab) startPackaged(conf string) { l.startIn(l.packageMounts(), conf) }

// configTest is keepalived -t on conf: its exit status and output.
func (l *lab) configTest(conf string) (int, string) {
	argv := l.wrap(l.ns, l.packageMounts(), "/usr/sbin/keepalived", "-t", "-f", conf)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		l.t.Fatalf("keepalived -t: %v", err)
	}
	return 0, string(out)
}

func TestShippedExamples(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(filepath.Join(l.work, "run"), 0o755))
		for _, ex := range []string{"keepalived.conf", "keepalived-2.3.conf", "keepalived-watch.conf", "keepalived-read-vip.conf"} {
			data, err := os.ReadFile("../../packaging/" + ex)
			must(t, err)
			l.write(ex, string(data), 0o644)
			conf := l.path(ex)
			code, out := l.configTest(conf)
			if ex == "keepalived-2.3.conf" && !l.f.version.FractionalTimers() {
				// The 2.3 example is not for this keepalived, and its test says so.
				if code == 0 || !strings.Contains(out, "invalid number '0.2'") {
					t.Errorf("keepalived %s -t %s: exit %d, want a failure with \"invalid number\":\n%s", l.f.version, ex, code, out)
				}
				continue
			}
			if code != 0 || strings.TrimSpace(out) != "" {
				t.Errorf("keepalived %s -t %s: exit %d:\n%s", l.f.version, ex, code, out)
				continue
			}

			switch ex {
			case "keepalived-watch.conf":
				os.Remove(filepath.Join(l.work, "run", "eligible"))
				l.startPackaged(conf)
				l.expectNoVIP("no track file yet")
				l.write("run/eligible", "1\n", 0o644)
				l.expectVIP("the file says 1")
				l.write("run/eligible", "0\n", 0o644)
				l.expectVIPGone("the file says 0")
			case "keepalived-read-vip.conf":
				// Each VIP follows its own file: the read VIP the replica
				// watcher's, and nothing else.
				os.Remove(filepath.Join(l.work, "run", "eligible"))
				os.Remove(filepath.Join(l.work, "run", "replica"))
				l.startPackaged(conf)
				l.expectNoVIP("no track files yet")
				l.write("run/replica", "1\n", 0o644)
				if !eventually(10*time.Second, func() bool { return l.holds(readVIPAddr) }) {
					t.Errorf("keepalived %s did not take the read VIP (the replica's file says 1):\n%s", l.f.version, l.kalog.String())
				}
				if l.vipHeld() {
					t.Errorf("keepalived %s took the primary's VIP on the replica's file", l.f.version)
				}
				l.write("run/replica", "0\n", 0o644)
				if !eventually(5*time.Second, func() bool { return !l.holds(readVIPAddr) }) {
					t.Errorf("keepalived %s kept the read VIP (the file says 0):\n%s", l.f.version, l.kalog.String())
				}
			default:
				l.patr.set(http.StatusServiceUnavailable, 0)
				l.startPackaged(conf)
				l.expectLog("VRRP_Script(patroni_primary) failed")
				l.expectNoVIP("Patroni says 503")
				l.patr.set(http.StatusOK, 0)
				l.expectVIP("Patroni says 200")
			}
			fs := l.packagedDoctor(conf)
			l.expectPasses(fs)
			for _, f := range fs {
				if f.Level == Warning {
					t.Logf("%s, keepalived %s: %s", ex, l.f.version, f)
				}
			}
			l.stop()
		}
	})
}

const readVIPAddr = "198.51.100.101"

// holds reports whether the node holds the IPv4 address.
func (l *lab) holds(addr string) bool {
	out, _ := exec.Command("ip", "-n", l.ns, "-4", "addr", "show", "dev", "eth0").Output()
	return strings.Contains(string(out), "inet "+addr+"/")
}

// packagedDoctor runs the doctor with the packages' paths in place.
func (l *lab) packagedDoctor(conf string) []Finding {
	l.t.Helper()
	return l.doctorWith(conf, l.packageMounts(), "")
}
