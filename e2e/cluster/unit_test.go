package cluster

import (
	"os"
	"slices"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
)

// The shipped unit, read as systemd reads it.
func TestShippedUnit(t *testing.T) {
	b, err := os.ReadFile("../../packaging/patroni-vip-check.service")
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"Type": "notify", "Restart": "always", "WatchdogSec": "1s", "WatchdogSignal": "SIGKILL"} {
		if got := u.Get("Service", key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if got := u.Get("Unit", "Before"); got != "keepalived.service" {
		t.Errorf("Before=%q", got)
	}
	paths, optional := u.EnvironmentFiles()
	if !slices.Equal(paths, []string{"/etc/default/patroni-vip-check", "/etc/sysconfig/patroni-vip-check"}) || !optional[0] || !optional[1] {
		t.Errorf("EnvironmentFile %v %v", paths, optional)
	}
	env := unitfile.ParseEnv("# the node's own URL\nPATRONI_VIP_CHECK_ARGS=\"--interval 200ms http://198.51.100.11:8008/primary\"\n")
	_, argv, err := unitfile.Command(u.Get("Service", "ExecStart"), env)
	if err != nil || !slices.Equal(argv, []string{"/usr/bin/patroni-vip-check", "watch", "--interval", "200ms", "http://198.51.100.11:8008/primary"}) {
		t.Errorf("ExecStart %q (%v)", argv, err)
	}
	_, argv, _ = unitfile.Command(u.Get("Service", "ExecStart"), nil)
	if !slices.Equal(argv, []string{"/usr/bin/patroni-vip-check", "watch"}) {
		t.Errorf("ExecStart without the variable: %q", argv)
	}
	post := u.All("Service", "ExecStopPost")
	if len(post) != 1 {
		t.Fatalf("ExecStopPost %q", post)
	}
	// The command after stop reads the watcher's own arguments, for the same
	// --track-file.
	if _, argv, _ = unitfile.Command(post[0], env); !slices.Equal(argv, []string{"/usr/bin/patroni-vip-check", "watch", "--release", "--interval", "200ms", "http://198.51.100.11:8008/primary"}) {
		t.Errorf("ExecStopPost %q", argv)
	}
}

func TestParseRejects(t *testing.T) {
	for _, text := range []string{"[Service\nA=1", "A=1", "[Service]\nno equals sign"} {
		if _, err := parseUnit(text); err == nil {
			t.Errorf("parseUnit(%q) accepted", text)
		}
	}
}

// TestContinuation: a backslash continues a line with a space, and a comment
// block inside the continuation is skipped (systemd.syntax(7)'s example).
func TestContinuation(t *testing.T) {
	u, err := parseUnit("[Service]\nExecStart=/usr/bin/patroni-vip-check watch \\\n# the node's URL:\n; (or another)\n    http://198.51.100.11:8008/primary\nRestart=always\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Get("Service", "ExecStart"); got != "/usr/bin/patroni-vip-check watch  http://198.51.100.11:8008/primary" {
		t.Errorf("ExecStart=%q", got)
	}
	if got := u.Get("Service", "Restart"); got != "always" {
		t.Errorf("Restart=%q", got)
	}
}
