package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAnalyzeRead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	up := []bool{true, true, true}
	w := func(ws ...bool) []bool { return ws }
	read := func(h ...string) map[string][]string { return map[string][]string{ReadVIP: h, VIP6: {"n1"}} }
	// n2 holds the read VIP and is promoted at 1.0 (takes writes from 1.5); the read VIP
	// leaves it at 2.0, is nowhere until 2.5, on n1 and n3 at once at 3.0, then on n3.
	tl := Timeline{
		{At: at(-0.5), Holders: []string{"n1"}, Others: read("n2"), Roles: []string{"primary", "replica", "replica"}, Reachable: up, Writable: w(true, false, false)},
		{At: at(0.0), Holders: []string{"n1"}, Others: read("n2"), Roles: []string{"primary", "replica", "replica"}, Reachable: up, Writable: w(true, false, false)},
		{At: at(1.0), Holders: nil, Others: read("n2"), Roles: []string{"", "primary", "replica"}, Reachable: up, Writable: w(false, false, false)},
		{At: at(1.5), Holders: []string{"n2"}, Others: read("n2"), Roles: []string{"", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(2.0), Holders: []string{"n2"}, Others: read(), Roles: []string{"", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(2.5), Holders: []string{"n2"}, Others: read("n3"), Roles: []string{"replica", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(3.0), Holders: []string{"n2"}, Others: read("n1", "n3"), Roles: []string{"replica", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(3.5), Holders: []string{"n2"}, Others: read("n3"), Roles: []string{"replica", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
		{At: at(4.0), Holders: []string{"n2"}, Others: read("n3"), Roles: []string{"replica", "primary", "replica"}, Reachable: up, Writable: w(false, true, false)},
	}
	m := tl.AnalyzeRead(t0, "n2")
	if m.Old != "n2" || m.New != "n3" || !m.Settled {
		t.Fatalf("old %q new %q settled %v", m.Old, m.New, m.Settled)
	}
	for name, c := range map[string][2]time.Duration{
		"gone":                {m.ToGone, 2 * time.Second},
		"on new":              {m.ToOnNew, 2500 * time.Millisecond}, // n3 holds it from 2.5, beside n1 at 3.0
		"nowhere":             {m.Nowhere, 500 * time.Millisecond},
		"double":              {m.Double, 500 * time.Millisecond},
		"on primary":          {m.OnPrimary, time.Second},             // n2 out of recovery from 1.0
		"on writable":         {m.OnWritable, 500 * time.Millisecond}, // n2 took writes from 1.5
		"longest on writable": {m.LongestOnWritable, 500 * time.Millisecond},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	// The IPv6 VIP's timeline is its own.
	if v6 := tl.For(VIP6).Analyze(t0, "n1"); v6.ToVIPGone != -1 || v6.Double != 0 {
		t.Errorf("IPv6 VIP: gone %v double %v", v6.ToVIPGone, v6.Double)
	}
	// Ending on a node that is not a replica is not settled.
	last := tl[len(tl)-1]
	last.Others = read("n2")
	if m := append(tl[:len(tl)-1:len(tl)-1], last).AnalyzeRead(t0, "n2"); m.Settled || m.ToGone != 2*time.Second {
		t.Errorf("ends on the primary: settled %v gone %v", m.Settled, m.ToGone)
	}
}

func TestLinesFor(t *testing.T) {
	url := "http://198.51.100.11:8008/primary"
	lines := []LogLine{
		{Message: "primary: 200 from " + url + " (role=master, timeline=1)"},
		{Message: "replica: 200 from http://198.51.100.11:8008/replica?lag=16MB (role=replica, timeline=1)"},
		{Message: "not primary: 503 from http://[2001:db8::11]:8008/primary (role=replica, timeline=2)"},
		{Message: "unreachable: " + url + ": connecting to 198.51.100.11:8008: connection refused"},
		{Message: "timeout: " + url + "; was primary for 3s"},
		{Message: "primary: 200 from " + url + "x (role=master)"},
		{Message: "not primary: 503 from " + url},
	}
	got := LinesFor(lines, url)
	if len(got) != 4 || got[0] != lines[0] || got[1] != lines[3] || got[2] != lines[4] || got[3] != lines[6] {
		t.Errorf("LinesFor kept %v", got)
	}
}

func TestListenIPv6(t *testing.T) {
	c := &Cluster{opts: Options{Stack: HostStack(), TTL: 10, LoopWait: 1, RetryTimeout: 4}}
	n := &Node{Name: "n1", Index: 1, Addr: NodeAddr(1), c: c, pgDir: "/tmp/pg"}
	conf, err := listenIPv6(c.patroniConfig(n), n)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen: '[::]:8008'", "connect_address: 198.51.100.11:8008", "listen: '*:5432'",
		"- host all all 2001:db8::/64 trust", "- host replication all 2001:db8::/64 trust"} {
		if !strings.Contains(conf, want) {
			t.Errorf("no %q in\n%s", want, conf)
		}
	}
	if _, err := listenIPv6("scope: e2e\n", n); err == nil {
		t.Error("a configuration without the lines to change passed")
	}
}

// Each template instance takes the arguments the generator's comment gives the watcher of
// its URL; node 1's read VIP watcher, which the example describes, --pgdata and its URL.
func TestInstanceArgs(t *testing.T) {
	b, err := os.ReadFile("../../packaging/keepalived-read-vip.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for url, want := range map[string][]string{
		"http://198.51.100.11:8008/primary":          {"--pgdata", "/var/lib/postgresql/15/main", "http://198.51.100.11:8008/primary"},
		"http://198.51.100.11:8008/replica?lag=16MB": {"--pgdata", "/var/lib/postgresql/15/main", "http://198.51.100.11:8008/replica?lag=16MB"},
	} {
		if got, err := GeneratedArgsFor(conf, url); err != nil || !slices.Equal(got, want) {
			t.Errorf("GeneratedArgsFor(%s): %q (%v), want %q", url, got, err, want)
		}
	}
	for _, url := range []string{"http://198.51.100.11:8008/replica", "http://198.51.100.12:8008/primary"} {
		if got, err := GeneratedArgsFor(conf, url); err == nil {
			t.Errorf("GeneratedArgsFor(%s): %q, want an error", url, got)
		}
	}

	c := &Cluster{opts: Options{WatchArgs: []string{"--interval", "1s"}, ReadVIP: true}}
	n1 := &Node{Name: "n1", Index: 1, Addr: NodeAddr(1), c: c, pgDir: "/tmp/x/n1/pg"}
	n2 := &Node{Name: "n2", Index: 2, Addr: NodeAddr(2), c: c, pgDir: "/tmp/x/n2/pg"}
	gen := strings.NewReplacer("198.51.100.11", "198.51.100.12", "/var/lib/postgresql/15/main", "/srv/n2/data").Replace(conf)
	if err := n2.setInstanceArgs(ReadInstance, gen, n2.ReadURL()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n     *Node
		alone bool
		want  string
	}{
		{n1, false, `PATRONI_VIP_CHECK_ARGS="--interval 1s --pgdata /tmp/x/n1/pg/data http://198.51.100.11:8008/replica?lag=16MB"` + "\n"},
		// The generator's data directory, not the harness's idea of it.
		{n2, false, `PATRONI_VIP_CHECK_ARGS="--interval 1s --pgdata /srv/n2/data http://198.51.100.12:8008/replica?lag=16MB"` + "\n"},
		{n2, true, `PATRONI_VIP_CHECK_ARGS="--interval 1s http://198.51.100.12:8008/replica?lag=16MB"` + "\n"},
	} {
		c.opts.WatchPollsAlone = tc.alone
		if got := tc.n.instanceEnv(ReadInstance, tc.n.ReadURL()); got != tc.want {
			t.Errorf("%s, alone %v: %q, want %q", tc.n.Name, tc.alone, got, tc.want)
		}
	}
}
