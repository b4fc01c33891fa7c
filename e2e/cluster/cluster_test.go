package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests need neither root nor namespaces: they run with `go test ./...`.

func TestNodeKeepalivedConfSwapsOnlyNodeAddresses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	example := string(b)
	addrs := []string{NodeAddr(1), NodeAddr(2), NodeAddr(3)}
	if got := NodeKeepalivedConf(example, addrs, 0); got != example {
		t.Fatal("node 1's configuration must be the example itself")
	}
	for self := 1; self < 3; self++ {
		conf := NodeKeepalivedConf(example, addrs, self)
		own := addrs[self]
		if want := `script "/usr/bin/patroni-vip-check http://` + own + `:8008/primary"`; !strings.Contains(conf, want) {
			t.Errorf("node %d: no %s", self+1, want)
		}
		if !strings.Contains(conf, "unicast_src_ip "+own) {
			t.Errorf("node %d: unicast_src_ip is not %s", self+1, own)
		}
		peers := between(conf, "unicast_peer {", "}")
		for i, a := range addrs {
			if in := strings.Contains(peers, a); in != (i != self) {
				t.Errorf("node %d: peer %s listed=%v:\n%s", self+1, a, in, peers)
			}
		}
		if !strings.Contains(conf, VIP+"/24 dev eth0 label eth0:1") {
			t.Errorf("node %d: the VIP line changed", self+1)
		}
		// Only lines with a node address differ, and comments never.
		el, cl := strings.Split(example, "\n"), strings.Split(conf, "\n")
		if len(el) != len(cl) {
			t.Fatalf("node %d: %d lines, example %d", self+1, len(cl), len(el))
		}
		for i := range el {
			if el[i] != cl[i] && (!ipv4Re.MatchString(el[i]) || strings.HasPrefix(strings.TrimSpace(el[i]), "#")) {
				t.Errorf("node %d line %d changed: %q → %q", self+1, i+1, el[i], cl[i])
			}
		}
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	in, _, _ := strings.Cut(rest, to)
	return in
}

func TestReplaceScript(t *testing.T) {
	conf := "vrrp_script x {\n    script \"/usr/bin/patroni-vip-check http://a:8008/primary\"  # why\n    interval 1\n}\n"
	got, err := ReplaceScript(conf, CurlCommand("198.51.100.12"))
	if err != nil {
		t.Fatal(err)
	}
	want := "vrrp_script x {\n    script \"/usr/bin/curl -X GET -I --fail http://198.51.100.12:8008/primary\"  # why\n    interval 1\n}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if ScriptCommand(got) != CurlCommand("198.51.100.12") {
		t.Errorf("ScriptCommand = %q", ScriptCommand(got))
	}
	if _, err := ReplaceScript("vrrp_instance x {}\n", "true"); err == nil {
		t.Error("no script line: want an error")
	}
}

func TestParseSyslog(t *testing.T) {
	at := time.Now()
	for _, c := range []struct {
		raw, tag, msg string
		pri, pid      int
	}{
		{"<30>Nov 25 16:41:11 patroni-vip-check[26540]: not primary: 503 from http://x/primary", "patroni-vip-check", "not primary: 503 from http://x/primary", 30, 26540},
		{"<30>Nov  5 06:01:02 Keepalived_vrrp[24497]: (patroni_vip) Entering FAULT STATE", "Keepalived_vrrp", "(patroni_vip) Entering FAULT STATE", 30, 24497},
		{"<13>Nov 25 16:41:11 root: hello", "root", "hello", 13, 0},
		{"no header at all", "", "no header at all", -1, 0},
	} {
		l := parseSyslog(at, c.raw)
		if l.Tag != c.tag || l.Message != c.msg || l.Priority != c.pri || l.PID != c.pid {
			t.Errorf("%q: got tag %q msg %q pri %d pid %d", c.raw, l.Tag, l.Message, l.Priority, l.PID)
		}
	}
}

func TestCheckState(t *testing.T) {
	for _, c := range []struct {
		msg, state string
		reminder   bool
		eligible   bool
	}{
		{"primary: 200 from http://x/primary (role=master, timeline=2)", "primary", false, true},
		{"not primary: 503 from http://x/primary (role=replica); was primary for 6s", "not primary", false, false},
		{"timeout: http://x/primary: no answer within 734ms", "timeout", false, false},
		{"still not primary since 2026-11-25T16:41:11Z (1h0m0s, 3599 checks not logged): 503 from http://x/primary", "not primary", true, false},
	} {
		st, rem := CheckState(LogLine{Message: c.msg})
		if st != c.state || rem != c.reminder || CheckEligible(st) != c.eligible {
			t.Errorf("%q: state %q reminder %v eligible %v", c.msg, st, rem, CheckEligible(st))
		}
	}
}

// The watch's lines about its files are told from its verdicts.
func TestWatchFileLine(t *testing.T) {
	for msg, want := range map[string]bool{
		"data directory /tmp/x/n1/pg/data: cannot watch it (no such file or directory); asking Patroni every --interval until it is there": true,
		"data directory /tmp/x/n1/pg/data: fine again":                                              true,
		"still track file /run/keepalived-patroni-vip-check/eligible: cannot write it (since …)":    true,
		"track directory /run/keepalived-patroni-vip-check: it was removed and made again …":        true,
		"primary: 200 from http://x/primary (role=master, timeline=2)":                              false,
		"not primary: 503 from http://x/primary (role=replica); was primary for 6s":                 false,
		"still not primary since 2026-11-25T16:41:11Z (1h0m0s, 3599 checks not logged): 503 from …": false,
	} {
		if got := WatchFileLine(LogLine{Tag: CheckTag, Message: msg}); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
	if WatchFileLine(LogLine{Tag: "Keepalived_vrrp", Message: "track file /x: y"}) {
		t.Error("keepalived's line taken for the watch's")
	}
}

func TestStallReport(t *testing.T) {
	for _, c := range []struct {
		l     LogLine
		stall bool
	}{
		{LogLine{Tag: "Keepalived_vrrp", Message: "A thread timer expired 2.113207 seconds ago"}, true},
		{LogLine{Tag: CheckTag, Message: "timeout: http://x:8008/primary: the run overran its 800ms deadline by 77ms (the process was stalled or blocked); exit 1"}, true},
		{LogLine{Tag: CheckTag, Message: "timeout: http://x:8008/primary: no answer from x:8008 within 750ms"}, false},
		{LogLine{Tag: "Keepalived_vrrp", Message: "(patroni_vip) Entering FAULT STATE"}, false},
	} {
		if got := StallReport(c.l); got != c.stall {
			t.Errorf("%q: %v", c.l.Message, got)
		}
	}
}

func TestAnalyze(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	up := []bool{true, true, true}
	tl := Timeline{
		{At: at(-0.5), Holders: []string{"n1"}, Leader: "n1", Roles: []string{"primary", "replica", "replica"}, Reachable: up},
		{At: at(0.0), Holders: []string{"n1"}, Leader: "n1", Roles: []string{"primary", "replica", "replica"}, Reachable: up},
		{At: at(1.0), Holders: nil, Leader: "n1", Roles: []string{"", "replica", "replica"}, Reachable: up},
		{At: at(2.0), Holders: nil, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: up},
		{At: at(3.0), Holders: []string{"n2", "n3"}, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: up},
		{At: at(3.5), Holders: []string{"n2"}, Leader: "n2", Roles: []string{"replica", "primary", "replica"}, Reachable: up},
		{At: at(4.0), Holders: []string{"n2"}, Leader: "n2", Roles: []string{"replica", "primary", "replica"}, Reachable: up},
	}
	m := tl.Analyze(t0, "n1")
	sec := func(d time.Duration) float64 { return d.Seconds() }
	if m.New != "n2" || !m.Settled {
		t.Fatalf("new %q settled %v", m.New, m.Settled)
	}
	for name, c := range map[string][2]float64{
		"to primary":     {sec(m.ToPrimary), 2},
		"VIP gone":       {sec(m.ToVIPGone), 1},
		"VIP on new":     {sec(m.ToVIPOnNew), 3},
		"follow":         {sec(m.FollowDelay()), 1},
		"no VIP":         {sec(m.NoVIP), 2},
		"double":         {sec(m.Double), 0.5},
		"on non-primary": {sec(m.OnNonPrimary), 0.5}, // n3, a replica, held it at 3.0
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	// A holder that clients cannot reach does not count as a second holder.
	cut := []bool{false, true, true}
	tl2 := Timeline{
		{At: at(0), Holders: []string{"n1", "n2"}, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: cut},
		{At: at(1), Holders: []string{"n1", "n2"}, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: cut},
	}
	if m := tl2.Analyze(t0, "n1"); m.Double != 0 || !m.Settled || m.ToVIPGone != -1 {
		t.Errorf("cut holder: double %v settled %v VIP gone %v", m.Double, m.Settled, m.ToVIPGone)
	}
}

func TestAnalyzeWrites(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	up := []bool{true, true, true}
	w := func(ws ...bool) []bool { return ws }
	roles := []string{"primary", "replica", "replica"}
	// n1 stops taking writes at 1.0 and keeps the VIP until 1.5; n2 takes writes from 2.0
	// and gets the VIP at 2.5; n1, frozen, takes writes again from 3.0 (two writers) but
	// holds no VIP.
	tl := Timeline{
		{At: at(0.0), Holders: []string{"n1"}, Leader: "n1", Roles: roles, Reachable: up, Writable: w(true, false, false)},
		{At: at(1.0), Holders: []string{"n1"}, Leader: "n1", Roles: roles, Reachable: up, Writable: w(false, false, false)},
		{At: at(1.5), Holders: nil, Leader: "n1", Roles: roles, Reachable: up, Writable: w(false, false, false)},
		{At: at(2.0), Holders: nil, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(2.5), Holders: []string{"n2"}, Leader: "n2", Roles: []string{"", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(3.0), Holders: []string{"n2"}, Leader: "n2", Roles: []string{"primary", "primary", "replica"}, Reachable: up, Writable: w(true, true, false)},
		{At: at(4.0), Holders: []string{"n2"}, Leader: "n2", Roles: []string{"replica", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
	}
	m := tl.Analyze(t0, "n1")
	for name, c := range map[string][2]time.Duration{
		"unwritable":         {m.Unwritable, 500 * time.Millisecond},
		"longest unwritable": {m.LongestUnwritable, 500 * time.Millisecond},
		"to unwritable":      {m.ToUnwritable, time.Second},
		"two writable":       {m.TwoWritable, time.Second},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	// The longest stretch, not the sum: two stretches of 0.2 s are 0.4 s in all.
	tl2 := Timeline{
		{At: at(0.0), Holders: []string{"n1"}, Roles: roles, Reachable: up, Writable: w(false, false, false)},
		{At: at(0.2), Holders: []string{"n1"}, Roles: roles, Reachable: up, Writable: w(true, false, false)},
		{At: at(0.4), Holders: []string{"n1"}, Roles: roles, Reachable: up, Writable: w(false, false, false)},
		{At: at(0.6), Holders: []string{"n1"}, Roles: roles, Reachable: up, Writable: w(true, false, false)},
		{At: at(0.7), Holders: []string{"n1"}, Roles: roles, Reachable: up, Writable: w(true, false, false)},
	}
	m = tl2.Analyze(t0, "n1")
	if m.Unwritable != 400*time.Millisecond || m.LongestUnwritable != 200*time.Millisecond {
		t.Errorf("two stretches: unwritable %v longest %v", m.Unwritable, m.LongestUnwritable)
	}
	// A holder clients cannot reach does not count.
	cut := []bool{false, true, true}
	tl3 := Timeline{
		{At: at(0), Holders: []string{"n1", "n2"}, Leader: "n2", Roles: roles, Reachable: cut, Writable: w(false, true, false)},
		{At: at(1), Holders: []string{"n1", "n2"}, Leader: "n2", Roles: roles, Reachable: cut, Writable: w(false, true, false)},
	}
	if m := tl3.Analyze(t0, "n1"); m.Unwritable != 0 {
		t.Errorf("unreachable holder: unwritable %v", m.Unwritable)
	}
}

func TestProbeState(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		name string
		ps   probeState
		want bool
	}{
		{"wrote just now", probeState{ok: true, done: now.Add(-50 * time.Millisecond)}, true},
		{"refused just now", probeState{ok: false, done: now.Add(-50 * time.Millisecond)}, false},
		{"wrote, next probe under way", probeState{ok: true, done: now.Add(-150 * time.Millisecond), since: now.Add(-50 * time.Millisecond)}, true},
		{"wrote, next probe hangs", probeState{ok: true, done: now.Add(-1200 * time.Millisecond), since: now.Add(-1100 * time.Millisecond)}, false},
		{"no probe for long", probeState{ok: true, done: now.Add(-10 * time.Second)}, false},
		{"never probed", probeState{}, false},
	} {
		if got := c.ps.writable(now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
