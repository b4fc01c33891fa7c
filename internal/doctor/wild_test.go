package doctor

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

// The configurations of testdata/wild (its README says where each comes
// from), read as keepalived reads them, and the doctor's findings on each.

// wildFiles are the configurations of the corpus, as paths under testdata.
func wildFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"testdata/wild/samples/keepalived.conf.*", "testdata/wild/real-world/*.conf", "testdata/wild/probes/*.conf"} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !strings.HasSuffix(n, ".doctor") {
				out = append(out, n)
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("only %d configurations in testdata/wild", len(out))
	}
	return out
}

// wildScripts are the check scripts of the corpus, where the
// configurations that run them expect them.
var wildScripts = map[string]string{
	"/usr/local/bin/check_patroni.sh":                "real-world/ru-patroni-guide-check_patroni.sh",
	"/usr/local/bin/chk_primary.sh":                  "real-world/percona-docs-chk_primary.sh",
	"/opt/keepalived/scripts/chk_patroni_leader.sh":  "real-world/tantorlabs-pg_cluster-chk_patroni_leader.sh",
	"/etc/keepalived/chk_haproxy.sh":                 "real-world/alec994-patroni-vip-chk_haproxy.sh",
	"/usr/libexec/keepalived/haproxy_check.sh":       "",
	"/etc/keepalived/check_haproxy.sh":               "",
	"/opt/keepalived/scripts/haproxy_check.sh":       "",
	"/etc/keepalived/scripts/check_high_VI_0.sh":     "",
	"/usr/local/bin/vrrp.sh":                         "",
	"/etc/keepalived/notify.sh":                      "",
	"/usr/lib/keepalived/scripts/chk_haproxy.sh":     "",
	"/etc/keepalived/scripts/check_backup_status.sh": "",
}

// wildAddress is the address of the node a configuration was written
// for: its unicast_src_ip, else the first address its checks ask, else
// 198.51.100.250, which no configuration of the corpus names.
func wildAddress(conf []byte) netip.Addr {
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s*unicast_src_ip\s+(198\.51\.100\.\d+)`),
		regexp.MustCompile(`https?://(198\.51\.100\.\d+)`),
	} {
		if m := re.FindSubmatch(conf); m != nil {
			return netip.MustParseAddr(string(m[1]))
		}
	}
	return netip.MustParseAddr("198.51.100.250")
}

// wildNode is the machine every configuration of the corpus is judged
// on: a Debian 12 node at the configuration's address (wildAddress) on
// eth0, with eth1, ens192 and ens33 beside it, whose Patroni's REST API
// listens on that address only; curl, timeout, killall and the like,
// /bin/sh being dash, keepalived 2.2.7 installed and not running, no
// systemd, and the corpus's check scripts in place.
func wildNode(t *testing.T, conf []byte) *systemtest.Fake {
	t.Helper()
	addr := wildAddress(conf)
	exe := func() *systemtest.File { return &systemtest.File{Mode: 0o755, Data: elfHeader()} }
	files := map[string]*systemtest.File{
		"/etc/keepalived/keepalived.conf": {Mode: 0o644, Data: conf},
		"/bin":                            {Mode: fs.ModeSymlink | 0o777, Target: "usr/bin"},
		"/sbin":                           {Mode: fs.ModeSymlink | 0o777, Target: "usr/sbin"},
		"/usr/bin/sh":                     {Mode: fs.ModeSymlink | 0o777, Target: "dash"},
		"/etc/patroni/15-main.yml": {Mode: 0o640, Data: []byte(
			"name: node1\nrestapi:\n  listen: " + addr.String() + ":8008\n  connect_address: " + addr.String() + ":8008\n" +
				"postgresql:\n  listen: 0.0.0.0:5432\n  connect_address: " + addr.String() + ":5432\n")},
		"/proc/sys/net/ipv4/ip_nonlocal_bind": {Mode: 0o644, Data: []byte("0\n")},
	}
	for _, p := range []string{"dash", "bash", "curl", "timeout", "killall", "pgrep", "pkill", "pidof", "env", "nice", "sudo", "true", "false", "patroni-vip-check", "patronictl", "jq"} {
		files["/usr/bin/"+p] = exe()
	}
	files["/usr/sbin/keepalived"] = exe()
	for at, from := range wildScripts {
		data := []byte("#!/bin/sh\nexit 0\n")
		if from != "" {
			var err error
			if data, err = os.ReadFile("testdata/wild/" + from); err != nil {
				t.Fatal(err)
			}
		}
		files[at] = &systemtest.File{Mode: 0o755, Data: data}
	}
	check := &fakeCheck{reason: "eligible"}
	fake := &systemtest.Fake{
		Files:  files,
		Users:  []system.User{{Name: "root", Home: "/root"}, {Name: "postgres", UID: 105, GID: 110}},
		Groups: map[string]uint32{"root": 0},
		Ifaces: []system.Interface{
			{Name: "lo", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.PrefixFrom(addr, 24)}},
			{Name: "eth1", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::11/64")}},
			{Name: "ens192", Up: true, Addrs: []netip.Prefix{netip.PrefixFrom(addr, 24)}},
			{Name: "ens33", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:33::11/64")}},
		},
		Commands: map[string]func(system.Cmd) system.Result{
			"/usr/bin/patroni-vip-check": check.run,
		},
	}
	return fake
}

// wildRun runs the doctor on a corpus configuration, as keepalived 2.2.7
// would read it, for config id "node1".
func wildRun(t *testing.T, name string) (*keepalived.Config, []Finding) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sys := wildNode(t, data)
	fs := Run(context.Background(), sys, Options{KeepalivedConf: conf, KeepalivedVersion: v227, ConfigID: "node1"})
	cfg, err := keepalived.Load(conf, keepalived.Options{FS: sys.FS(), ConfigID: "node1"})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg, fs
}

// reading says what keepalived makes of each instance.
func reading(cfg *keepalived.Config) string {
	m := cfg.Model()
	var b strings.Builder
	for _, in := range m.Instances {
		g := m.Global
		id, ok, _ := in.RouterID()
		vrid := fmt.Sprint(id)
		if !ok {
			vrid = "none"
		}
		version, _ := in.VRRPVersion(g)
		accept, _ := in.AcceptMode(g)
		strict, _ := in.Strict(g)
		auth := in.Authentication(g)
		fmt.Fprintf(&b, "vrrp_instance %s: virtual_router_id %s, VRRP version %d, priority %d, accept %t, strict %t, authentication %q",
			show(in.Name), vrid, version, in.BasePriority(), accept, strict, auth.Type)
		if group := m.GroupOf(in); group != nil {
			fmt.Fprintf(&b, ", sync group %s", show(group.Name))
		}
		b.WriteString("\n")
		ts, ig := m.Tracking(in)
		for _, t := range ts {
			fmt.Fprintf(&b, "  tracks %s %s weight %d", t.Kind(), show(t.Name()), t.Weight)
			if t.Reverse {
				b.WriteString(" reverse")
			}
			if t.Group != nil {
				b.WriteString(" (sync group)")
			}
			if t.Script != nil {
				if args, _, err := t.Script.Args(v227); err == nil {
					c := readCommand(args)
					fmt.Fprintf(&b, ": runs %s", show(strings.Join(c.argv, " ")))
					if len(c.via) > 0 {
						fmt.Fprintf(&b, " via %s", strings.Join(c.via, ", "))
					}
				}
			}
			b.WriteString("\n")
		}
		for _, i := range ig {
			fmt.Fprintf(&b, "  ignores %s\n", show(i.Why))
		}
	}
	return b.String()
}

// TestWild: the doctor's reading of each configuration of the corpus and
// its findings, as NAME.doctor holds them (PVC_UPDATE_GOLDEN=1 rewrites).
func TestWild(t *testing.T) {
	update := os.Getenv("PVC_UPDATE_GOLDEN") == "1"
	for _, name := range wildFiles(t) {
		cfg, fs := wildRun(t, name)
		var b strings.Builder
		b.WriteString("# what keepalived 2.2.7 makes of it\n" + reading(cfg) + "# the doctor's findings\n")
		for _, f := range fs {
			b.WriteString(f.String() + "\n")
		}
		got := b.String()
		golden := name + ".doctor"
		if update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Errorf("%s: %v (PVC_UPDATE_GOLDEN=1 writes it)", name, err)
			continue
		}
		if got != string(want) {
			t.Errorf("%s: the doctor now says (PVC_UPDATE_GOLDEN=1 to accept):\n%s\ninstead of:\n%s", name, diffLines(string(want), got), "")
		}
	}
}

// diffLines lists the lines only one side has, "-" for want, "+" for got.
func diffLines(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// keepalivedT reads testdata/wild/samples/keepalived-t.txt: for each
// sample, whether keepalived 2.2.7 and 2.3.3 accept it.
func keepalivedT(t *testing.T) map[string][2]string {
	t.Helper()
	f, err := os.Open("testdata/wild/samples/keepalived-t.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][2]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) != 3 || strings.HasPrefix(w[0], "#") {
			continue
		}
		out[w[0]] = [2]string{strings.TrimPrefix(w[1], "2.2.7="), strings.TrimPrefix(w[2], "2.3.3=")}
	}
	if len(out) != 25 {
		t.Fatalf("keepalived-t.txt lists %d samples, not 25", len(out))
	}
	return out
}

// TestSamplesReadClean: keepalived's own samples draw no parse finding
// where keepalived -t (2.2.7 or 2.3.3) accepts them.
func TestSamplesReadClean(t *testing.T) {
	accepted := 0
	for name, exits := range keepalivedT(t) {
		if exits[0] != "0" && exits[1] != "0" {
			continue
		}
		accepted++
		cfg, fs := wildRun(t, "testdata/wild/samples/"+name)
		if len(cfg.Problems) > 0 {
			t.Errorf("%s: keepalived -t accepts it, the reader says %v", name, cfg.Problems)
		}
		for _, f := range fs {
			if strings.Contains(f.Fix, "correct the configuration") {
				t.Errorf("%s: a parse finding: %s", name, f)
			}
		}
	}
	if accepted < 15 {
		t.Errorf("only %d samples accepted", accepted)
	}
}

// TestWildTraps: each trap is flagged where a configuration of the corpus
// holds it.
func TestWildTraps(t *testing.T) {
	traps := []struct {
		trap, file string
		level      Level
		says       []string
	}{
		{"weight 0 reverse", "probes/weight-0-reverse.conf", Failure, []string{"vrrp_instance VI_REV: track_script ok_rev has weight 0 reverse", "the primary never holds the VIP"}},
		{"weight 0 reverse overridden as weight 0", "probes/weight-0-reverse.conf", Failure, []string{"vrrp_instance VI_REV_OVERRIDE: track_script ok_rev has weight 0 reverse"}},
		{"sync group track_script", "probes/sync-group.conf", Failure, []string{"vrrp_instance VI_SYNC: track_script chk_g (from vrrp_sync_group SG1) has weight -20"}},
		{"a sync group that holds no instance", "probes/sync-group.conf", Warning, []string{"(VI_SYNC) ignoring tracked script chk_w"}},
		{"weighted script of a sync group's member", "probes/sync-group.conf", Warning, []string{"(VI_SYNC) ignoring tracked script chk_w with weights due to SYNC group"}},
		{"state MASTER without priority", "probes/sync-group.conf", Warning, []string{"(VI_OWNER) ignoring tracked script chk_w with weights due to address_owner"}},
		{"shell syntax", "real-world/chenhuajun-2020-readonly-vip.conf", Failure, []string{"keepalived runs /usr/bin/curl directly, with no shell: > |"}},
		{"shell syntax", "real-world/ru-1c-notes-nonworking-spbpsql1.conf", Failure, []string{"keepalived runs /usr/bin/curl directly, with no shell: |"}},
		{"shell syntax", "real-world/zh-patroni-notes-health-grep.conf", Failure, []string{"keepalived runs curl directly, with no shell: |"}},
		{"</dev/tcp on dash", "samples/keepalived.conf.vrrp.localcheck", Failure, []string{"vrrp_script chk_http_port: keepalived runs it with /bin/sh, which is dash here and has no /dev/tcp/"}},
		{"</dev/tcp is no relative path", "samples/keepalived.conf.vrrp.localcheck", Warning, []string{"vrrp_script chk_http_port only checks that a TCP connection to 127.0.0.1 port 80 opens"}},
		{"wrapper", "real-world/tantorlabs-pg_cluster-keepalived.rendered-pgnode1.conf", OK, []string{"vrrp_script chk_patroni_leader: timeout runs /opt/keepalived/scripts/chk_patroni_leader.sh"}},
		{"wrapped script asks patronictl", "real-world/tantorlabs-pg_cluster-keepalived.rendered-pgnode1.conf", OK, []string{"chk_patroni_leader.sh asks patronictl"}},
		{"no virtual_router_id", "real-world/orgrim-2021-vip-stepwise-pg1.assembled.conf", Failure, []string{"vrrp_instance RW has no virtual_router_id: keepalived's VRRP process stops at start"}},
		{"vrrp_strict with VRRP version 2", "real-world/orgrim-2021-lvs-kad1.assembled.conf", Failure, []string{"vrrp_strict (which forces no_accept)"}},
		{"no_accept", "real-world/orgrim-2021-vip-final-pg1.conf", Failure, []string{"no_accept makes keepalived 2.2.7 drop every packet addressed to the VIP"}},
		{"auth_type PASS", "real-world/orgrim-2021-vip-final-pg1.conf", Warning, []string{"auth_type PASS sends the password in clear text"}},
		{"auth_pass cut to 8", "real-world/alitman22-haproxy-keepalived.rendered-haproxy-01.conf", Warning, []string{"auth_pass is longer than 8 characters"}},
		{"auth_pass cut to 8", "real-world/rocky9-patroni-guide-pg1.conf", Warning, []string{"auth_pass is longer than 8 characters"}},
		{"/health", "real-world/zh-patroni-notes-health-grep.conf", Warning, []string{"asks http://localhost:8008/health: Patroni answers /health 200 on every node where PostgreSQL runs"}},
		{"/patroni", "real-world/ru-1c-notes-nonworking-spbpsql1.conf", Warning, []string{"asks http://198.51.100.204:8008/patroni: Patroni answers /patroni 200"}},
		{"/leader", "real-world/rocky9-patroni-guide-pg1.conf", Warning, []string{"asks http://198.51.100.35:8008/leader: Patroni answers /leader 200 on the holder of the leader lock, also on a standby cluster's standby leader"}},
		{"/ in a script", "real-world/ru-patroni-guide-track-weight20.conf", Warning, []string{"asks 127.0.0.1:8008: Patroni answers / as it answers /primary"}},
		{"/ in a script", "real-world/alec994-patroni-vip-keepalived.rendered-node1.conf", Warning, []string{"asks http://$IP:8008/: Patroni answers / as it answers /primary"}},
		{"localhost", "real-world/zh-patroni-notes-health-grep.conf", Warning, []string{"asks localhost, but Patroni's REST API listens on 198.51.100.250:8008 only"}},
		{"localhost in a script", "real-world/percona-docs-ha-haproxy-haproxy1.conf", Warning, []string{"(/usr/local/bin/chk_primary.sh) asks localhost, but Patroni's REST API listens on 198.51.100.6:8008 only"}},
		{"127.0.0.1", "real-world/chenhuajun-2020-readonly-vip.conf", Warning, []string{"asks 127.0.0.1, but Patroni's REST API listens on 198.51.100.250:8008 only"}},
		{"curl without --fail", "real-world/rocky9-patroni-guide-pg1.conf", Failure, []string{"curl exits 0 on any answer, Patroni's 503 included, without --fail"}},
		{"script defined after the instance", "real-world/rocky9-patroni-guide-pg1.conf", Failure, []string{"track script chk_patroni not found, ignoring...: vrrp_script chk_patroni comes after this line"}},
		{"weight on the track_script line", "real-world/ru-patroni-guide-track-weight20.conf", Failure, []string{"track_script chk_patroni has weight 20"}},
		{"weighted checks only", "real-world/zh-patroni-notes-health-grep.conf", Failure, []string{"vrrp_instance VI_1 has no check that can put it in FAULT"}},
		{"script_user that does not exist", "real-world/alitman22-haproxy-keepalived.rendered-haproxy-01.conf", Failure, []string{"user keepalived_script does not exist"}},
		{"not a Patroni check", "real-world/andrewmoar-ans-patron-keepalived.rendered.conf", Warning, []string{"checks that a process runs (/usr/bin/killall -0 haproxy): it does not ask Patroni"}},
		{"wrong port", "real-world/orgrim-2021-vip-final-pg1.conf", Warning, []string{"vrrp_script check_patroni_primary asks port 8010, but Patroni's REST API listens on port 8008"}},
	}
	results := map[string][]Finding{}
	for _, tc := range traps {
		fs, ok := results[tc.file]
		if !ok {
			_, fs = wildRun(t, "testdata/wild/"+tc.file)
			results[tc.file] = fs
		}
		t.Run(tc.trap+"/"+tc.file, func(t *testing.T) { want(t, fs, tc.level, tc.says...) })
	}
}

// TestWildScriptLines: the check lines proposed in Patroni's issue 1937
// are shell, not commands keepalived can exec.
func TestWildScriptLines(t *testing.T) {
	data, err := os.ReadFile("testdata/wild/real-world/patroni-issue-1937-script-lines.fragment.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		args := strings.Fields(line)
		cmd := readCommand(args)
		if len(cmd.problems) == 0 || !strings.Contains(cmd.problems[0], "$(...)") || !strings.Contains(cmd.problems[0], "|") {
			t.Errorf("%q: problems %q", line, cmd.problems)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d lines", n)
	}
}
