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

// The unit's CapabilityBoundingSet=, as setpriv is told it; several lines add up, an
// empty one empties the set.
func TestBoundingSet(t *testing.T) {
	for _, tc := range []struct{ unit, want string }{
		{"[Service]\nType=notify\n", ""},
		{"[Service]\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH\n", "-all,+dac_read_search"},
		{"[Service]\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH\nCapabilityBoundingSet=CAP_NET_RAW CAP_DAC_READ_SEARCH\n", "-all,+dac_read_search,+net_raw"},
		{"[Service]\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH\n[Service]\nCapabilityBoundingSet=\n", "-all"},
	} {
		u, err := parseUnit(tc.unit)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := boundingSet(u); err != nil || got != tc.want {
			t.Errorf("%q: %q (%v), want %q", tc.unit, got, err, tc.want)
		}
	}
	for _, bad := range []string{"[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n", "[Service]\nCapabilityBoundingSet=dac_read_search\n"} {
		u, _ := parseUnit(bad)
		if _, err := boundingSet(u); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	b, err := os.ReadFile("../../packaging/patroni-vip-check.service")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := parseUnit(string(b))
	if got, err := boundingSet(u); err != nil || got != "-all,+dac_read_search" {
		t.Errorf("the shipped unit: %q (%v)", got, err)
	}
}

// The watcher's arguments: what the generator's comment says for nodes 2 and 3, --pgdata
// and the URL for node 1, after the benchmarks' own; without --pgdata when it polls alone.
func TestWatchEnv(t *testing.T) {
	b, err := os.ReadFile("../../packaging/keepalived-watch.conf")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := GeneratedWatchArgs(string(b))
	if want := []string{"--pgdata", "/var/lib/postgresql/15/main", "http://198.51.100.11:8008/primary"}; err != nil || !slices.Equal(gen, want) {
		t.Errorf("GeneratedWatchArgs of the example: %q (%v), want %q", gen, err, want)
	}
	if _, err := GeneratedWatchArgs("vrrp_instance x {\n}\n"); err == nil {
		t.Error("a configuration without the line: no error")
	}
	c := &Cluster{opts: Options{WatchArgs: []string{"--interval", "1s"}}}
	n1 := &Node{Name: "n1", Index: 1, Addr: NodeAddr(1), c: c, pgDir: "/tmp/x/n1/pg"}
	n2 := &Node{Name: "n2", Index: 2, Addr: NodeAddr(2), c: c, genArgs: []string{"--pgdata", "/tmp/x/n2/pg/data", "http://198.51.100.12:8008/primary"}}
	for _, tc := range []struct {
		n     *Node
		alone bool
		want  string
	}{
		{n1, false, `PATRONI_VIP_CHECK_ARGS="--interval 1s --pgdata /tmp/x/n1/pg/data http://198.51.100.11:8008/primary"` + "\n"},
		{n2, false, `PATRONI_VIP_CHECK_ARGS="--interval 1s --pgdata /tmp/x/n2/pg/data http://198.51.100.12:8008/primary"` + "\n"},
		{n1, true, `PATRONI_VIP_CHECK_ARGS="--interval 1s http://198.51.100.11:8008/primary"` + "\n"},
		{n2, true, `PATRONI_VIP_CHECK_ARGS="--interval 1s http://198.51.100.12:8008/primary"` + "\n"},
	} {
		c.opts.WatchPollsAlone = tc.alone
		if got := tc.n.watchEnv(); got != tc.want {
			t.Errorf("%s, alone %v: %q, want %q", tc.n.Name, tc.alone, got, tc.want)
		}
	}
}
