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
		for _, ex := range []string{"keepalived.conf", "keepalived-2.3.conf", "keepalived-watch.conf"} {
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

			if ex == "keepalived-watch.conf" {
				os.Remove(filepath.Join(l.work, "run", "eligible"))
				l.startPackaged(conf)
				l.expectNoVIP("no track file yet")
				l.write("run/eligible", "1\n", 0o644)
				l.expectVIP("the file says 1")
				l.write("run/eligible", "0\n", 0o644)
				l.expectVIPGone("the file says 0")
			} else {
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

// packagedDoctor runs the doctor with the packages' paths in place.
func (l *lab) packagedDoctor(conf string) []Finding {
	l.t.Helper()
	return l.doctorWith(conf, l.packageMounts(), "")
}
