package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

// labPatroni is node 1's Patroni configuration in the e2e lab, trimmed.
const labPatroni = `scope: e2e
name: node1
restapi:
  listen: 198.51.100.11:8008
  connect_address: 198.51.100.11:8008
postgresql:
  listen: 0.0.0.0:5432
  connect_address: 198.51.100.11:5432
  data_dir: /var/lib/postgresql/15/main
`

// labNode is a machine like the lab's node 1.
func labNode(keepalivedVersion string) *systemtest.Fake {
	return &systemtest.Fake{
		Files: map[string]*systemtest.File{
			"/etc/patroni/15-main.yml": {Mode: 0o644, Data: []byte(labPatroni)},
			"/etc/patroni/dcs.yml":     {Mode: 0o644, Data: []byte("ttl: 30\n")},
			"/usr/sbin/keepalived":     {Mode: 0o755},
		},
		Ifaces: []system.Interface{
			{Name: "lo", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}},
		},
		Commands: map[string]func(system.Cmd) system.Result{
			"/usr/sbin/keepalived": func(c system.Cmd) system.Result {
				return system.Result{Stderr: []byte("Keepalived v" + keepalivedVersion + " (01/16,2022)\n\nCopyright(C) 2001-2022 Alexandre Cassen\n")}
			},
		},
	}
}

func runConf(t *testing.T, sys system.System, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := keepalivedConf(context.Background(), args, &stdout, &stderr, sys)
	return code, stdout.String(), stderr.String()
}

// On a machine set up like the lab's node 1, the command prints the
// shipped examples: everything but the VIP, the peers and the router id
// comes from Patroni's configuration, the interfaces and keepalived.
func TestKeepalivedConfOnLabNode(t *testing.T) {
	lab := []string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--peer", "198.51.100.13", "--router-id", "51"}
	cases := []struct {
		version, mode, example string
		extra                  []string
	}{
		{"2.2.7", "oneshot", "keepalived.conf", nil},
		{"2.3.3", "oneshot", "keepalived-2.3.conf", nil},
		{"2.2.7", "watch", "keepalived-watch.conf", nil},
		{"2.3.3", "watch", "keepalived-watch.conf", nil},
		{"2.2.7", "watch", "keepalived-read-vip.conf", []string{"--replica-vip", "198.51.100.101/24"}},
		{"2.3.3", "watch", "keepalived-read-vip.conf", []string{"--replica-vip", "198.51.100.101/24", "--max-lag", "16MB"}},
	}
	for _, tc := range cases {
		code, out, errs := runConf(t, labNode(tc.version), append(append([]string{"--mode", tc.mode}, lab...), tc.extra...)...)
		want, err := os.ReadFile("../../packaging/" + tc.example)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || errs != "" || out != string(want) {
			t.Errorf("keepalived %s, %s: exit %d, stderr %q, output differs from packaging/%s: %t",
				tc.version, tc.mode, code, errs, tc.example, out != string(want))
		}
	}
	// The default mode is the recommended one, and the router id comes from the VIP.
	code, out, _ := runConf(t, labNode("2.2.7"), "--vip", "198.51.100.100/24", "--peer", "198.51.100.12")
	if code != 0 || !strings.Contains(out, "track_file patroni_primary {") || !strings.Contains(out, "virtual_router_id 100\n") {
		t.Errorf("defaults: exit %d\n%s", code, out)
	}
}

// The watch wakes on the data directory Patroni's configuration names;
// --pgdata overrides it; without either the generator warns that the watch
// runs on polls alone.
func TestKeepalivedConfPGData(t *testing.T) {
	base := []string{"--mode", "watch", "--vip", "198.51.100.100/24", "--peer", "198.51.100.12"}
	envLine := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if _, v, ok := strings.Cut(l, "PATRONI_VIP_CHECK_ARGS="); ok {
				return v
			}
		}
		return ""
	}
	if code, out, errs := runConf(t, labNode("2.2.7"), base...); code != 0 || errs != "" ||
		envLine(out) != `"--pgdata /var/lib/postgresql/15/main http://198.51.100.11:8008/primary"` {
		t.Errorf("from Patroni's configuration: exit %d, stderr %q, %s", code, errs, envLine(out))
	}
	if code, out, _ := runConf(t, labNode("2.2.7"), append(base, "--pgdata", "/srv/pg/data")...); code != 0 ||
		envLine(out) != `"--pgdata /srv/pg/data http://198.51.100.11:8008/primary"` {
		t.Errorf("--pgdata: exit %d, %s", code, envLine(out))
	}
	if code, _, errs := runConf(t, labNode("2.2.7"), append(base, "--pgdata", "data")...); code != 1 || !strings.Contains(errs, `--pgdata "data" is not an absolute path`) {
		t.Errorf("a relative --pgdata: exit %d, %q", code, errs)
	}
	sys := labNode("2.2.7")
	sys.Files["/etc/patroni/15-main.yml"].Data = []byte(strings.Replace(labPatroni, "  data_dir: /var/lib/postgresql/15/main\n", "", 1))
	if code, out, errs := runConf(t, sys, base...); code != 0 || !strings.Contains(errs, "warning: no postgresql.data_dir") ||
		envLine(out) != `"http://198.51.100.11:8008/primary"` {
		t.Errorf("no data_dir: exit %d, stderr %q, %s", code, errs, envLine(out))
	}
}

// --replica-vip adds the read VIP: its own router id (its last byte), its
// watcher (the template's instance "replica"), /replica?lag= on the node's
// REST API, a label of its own.
func TestKeepalivedConfReadVIP(t *testing.T) {
	base := []string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--peer", "198.51.100.13", "--router-id", "51"}
	code, out, errs := runConf(t, labNode("2.2.7"), append(base, "--replica-vip", "198.51.100.101/24")...)
	for _, want := range []string{
		"vrrp_instance patroni_read_vip {",
		"virtual_router_id 101\n",
		"198.51.100.101/24 dev eth0 label eth0:2\n",
		"file /run/keepalived-patroni-vip-check/replica\n",
		`PATRONI_VIP_CHECK_ARGS="--pgdata /var/lib/postgresql/15/main http://198.51.100.11:8008/replica?lag=16MB"`,
		"systemctl enable --now patroni-vip-check@replica.service",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q: exit %d, stderr %q", want, code, errs)
		}
	}
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	// Without --replica-vip, the shipped example: nothing of a read VIP.
	if _, out, _ := runConf(t, labNode("2.2.7"), base...); strings.Contains(out, "replica") {
		t.Error("a read VIP without --replica-vip")
	}
	// The bound in Patroni's own units; what Patroni would read as none is refused.
	code, out, _ = runConf(t, labNode("2.3.3"), append(base, "--mode", "oneshot", "--replica-vip", "198.51.100.101/24", "--max-lag", "1048576")...)
	if code != 0 || !strings.Contains(out, `script "/usr/bin/patroni-vip-check --interval 200ms --timeout 400ms http://198.51.100.11:8008/replica?lag=1048576"`) {
		t.Errorf("--max-lag 1048576: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--replica-vip", "198.51.100.101/24", "--max-lag", "16mb"}, `--max-lag "16mb": want a whole number of bytes, or one with kB, MB, GB or TB`},
		{[]string{"--replica-vip", "198.51.100.101/24", "--max-lag", "1.5MB"}, "want a whole number"},
		{[]string{"--replica-vip", "198.51.100.101/24", "--max-lag", "16 MB"}, "want a whole number"},
		{[]string{"--max-lag", "16MB"}, "--max-lag needs --replica-vip"},
		{[]string{"--replica-router-id", "7"}, "--replica-router-id needs --replica-vip"},
		{[]string{"--replica-vip", "198.51.100.101"}, `--replica-vip "198.51.100.101": want an address with its prefix`},
		{[]string{"--replica-vip", "198.51.100.0/24", "--replica-router-id", "7"}, "the read VIP 198.51.100.0 is the network address"},
		{[]string{"--replica-vip", "10.0.0.0/8"}, "the read VIP 10.0.0.0 ends in 0: give --replica-router-id"},
		{[]string{"--replica-vip", "198.51.100.51/24"}, "the VIP and the read VIP would share virtual_router_id 51: give --replica-router-id"},
		{[]string{"--replica-vip", "198.51.100.101/24", "--replica-router-id", "0"}, "virtual_router_id -1 is not in 1-255"},
		{[]string{"--replica-vip", "198.51.100.100/24"}, "the read VIP 198.51.100.100 is the VIP"},
		{[]string{"--replica-vip", "198.51.100.12/24"}, "the read VIP 198.51.100.12 is the address of a peer"},
	} {
		code, out, errs := runConf(t, labNode("2.2.7"), append(base, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	// IPv6: no label on either VIP.
	v6 := labNode("2.2.7")
	v6.Ifaces[1].Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8::11/64")}
	code, out, errs = runConf(t, v6, "--mode", "oneshot", "--node", "2001:db8::11", "--peer", "2001:db8::12",
		"--url", "http://[2001:db8::11]:8008/primary", "--vip", "2001:db8::64/64", "--replica-vip", "2001:db8::65/64")
	if code != 0 || strings.Contains(out, " label ") || !strings.Contains(out, "2001:db8::65/64 dev eth0\n") ||
		!strings.Contains(out, "http://[2001:db8::11]:8008/replica?lag=16MB") {
		t.Errorf("IPv6: exit %d, stderr %q\n%s", code, errs, out)
	}
}

// Two clusters on one host: --instance names everything after the
// cluster, and finds its Patroni configuration among several by scope or
// by file name.
func TestKeepalivedConfInstance(t *testing.T) {
	twoClusters := func() *systemtest.Fake {
		sys := labNode("2.2.7")
		sys.Files["/etc/patroni/15-main.yml"].Data = []byte("scope: pg-a\n" + strings.TrimPrefix(labPatroni, "scope: e2e\n"))
		sys.Files["/etc/patroni/16-other.yml"] = &systemtest.File{Mode: 0o644, Data: []byte(strings.NewReplacer(
			"scope: e2e", "scope: pg-b", ":8008", ":8009", "15/main", "16/other").Replace(labPatroni))}
		return sys
	}
	args := []string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--replica-vip", "198.51.100.101/24"}
	for instance, want := range map[string][]string{
		"pg-a": {"vrrp_instance patroni_pg-a_vip {", "vrrp_instance patroni_pg-a_read_vip {", "track_file patroni_pg-a_replica {",
			"file /run/keepalived-patroni-vip-check/pg-a\n", "file /run/keepalived-patroni-vip-check/pg-a-replica\n",
			`PATRONI_VIP_CHECK_ARGS="--pgdata /var/lib/postgresql/15/main http://198.51.100.11:8008/primary"`,
			"/etc/default/patroni-vip-check@pg-a\n", "systemctl enable --now patroni-vip-check@pg-a-replica.service",
			"/etc/keepalived/patroni-pg-a.conf"},
		// By its file's name: Debian's patroni@ units are named so.
		"16-other": {"vrrp_instance patroni_16-other_vip {",
			`PATRONI_VIP_CHECK_ARGS="--pgdata /var/lib/postgresql/16/other http://198.51.100.11:8009/replica?lag=16MB"`},
	} {
		code, out, errs := runConf(t, twoClusters(), append(args, "--instance", instance)...)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("--instance %s: no %q; exit %d, stderr %q", instance, w, code, errs)
			}
		}
		if strings.Contains(out, "patroni_vip {") || strings.Contains(out, "/eligible") {
			t.Errorf("--instance %s: a name of the plain set-up", instance)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "2 Patroni configurations (/etc/patroni/15-main.yml, /etc/patroni/16-other.yml): name it with --patroni-config, or the cluster with --instance"},
		{[]string{"--instance", "pg-c"}, `no Patroni configuration has the scope or file name "pg-c" among /etc/patroni/15-main.yml (scope "pg-a"), /etc/patroni/16-other.yml (scope "pg-b")`},
		{[]string{"--instance", "pg c"}, `--instance "pg c": want up to 32 letters`},
		{[]string{"--instance", ""}, `--instance "": name the cluster`},
		{[]string{"--instance", "pg-replica", "--patroni-config", "/etc/patroni/15-main.yml"}, "names ending in replica are the read VIP watchers'"},
	} {
		code, out, errs := runConf(t, twoClusters(), append(args, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	// --patroni-config names the file; --instance then only names.
	code, out, _ := runConf(t, twoClusters(), append(args, "--instance", "main", "--patroni-config", "/etc/patroni/16-other.yml")...)
	if code != 0 || !strings.Contains(out, "patroni_main_vip") || !strings.Contains(out, ":8009/primary") {
		t.Errorf("--patroni-config with --instance: exit %d\n%s", code, out)
	}
}

// keepalived refuses two instances with one virtual_router_id on one
// interface; the generator refuses to write one that keepalived's present
// configuration gives another instance, and says whose it is.
func TestKeepalivedConfRouterIDsInUse(t *testing.T) {
	other := `vrrp_instance patroni_pg-a_vip {
    interface eth0
    virtual_router_id 100
    unicast_src_ip 198.51.100.11
    virtual_ipaddress {
        198.51.100.100/24
    }
}
vrrp_instance patroni_pg-a_read_vip {
    interface eth0
    virtual_router_id 101
    unicast_src_ip 198.51.100.11
    virtual_ipaddress {
        198.51.100.101/24
    }
}
`
	node := func(conf string) *systemtest.Fake {
		sys := labNode("2.2.7")
		sys.Files["/etc/keepalived/keepalived.conf"] = &systemtest.File{Mode: 0o644, Data: []byte("include /etc/keepalived/patroni-*.conf\n")}
		sys.Files["/etc/keepalived/patroni-pg-a.conf"] = &systemtest.File{Mode: 0o644, Data: []byte(conf)}
		return sys
	}
	args := []string{"--vip", "198.51.100.110/24", "--peer", "198.51.100.12", "--instance", "pg-b"}
	for _, tc := range []struct {
		name string
		conf string
		args []string
		want string // "" for success
	}{
		{"clear", other, nil, ""},
		{"the VIP's", other, []string{"--router-id", "100"},
			"virtual_router_id 100 is already vrrp_instance patroni_pg-a_vip's (/etc/keepalived/patroni-pg-a.conf:3) on eth0: give the VIP another (--router-id)"},
		{"the read VIP's", other, []string{"--replica-vip", "198.51.100.111/24", "--replica-router-id", "101"},
			"virtual_router_id 101 is already vrrp_instance patroni_pg-a_read_vip's (/etc/keepalived/patroni-pg-a.conf:11) on eth0: give the read VIP another (--replica-router-id)"},
		{"another interface", strings.ReplaceAll(other, "eth0", "eth1"), []string{"--router-id", "100"}, ""},
		{"another family", strings.NewReplacer("198.51.100.11\n", "2001:db8::11\n", "198.51.100.10", "2001:db8::10").Replace(other), []string{"--router-id", "100"}, ""},
		{"this cluster's, written before", strings.ReplaceAll(other, "pg-a", "pg-b"), []string{"--router-id", "100"}, ""},
		{"not read when told", other, []string{"--router-id", "100", "--keepalived-conf", ""}, ""},
	} {
		code, _, errs := runConf(t, node(tc.conf), append(args, tc.args...)...)
		if tc.want == "" && code != 0 || tc.want != "" && (code != 1 || !strings.Contains(errs, tc.want)) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.name, code, errs, tc.want)
		}
	}
	// What is wrong in keepalived's configuration is the doctor's to say:
	// it does not stop the generator, which still sees the instances it can.
	sys := node(other)
	sys.Files["/etc/keepalived/keepalived.conf"].Data = []byte("include /etc/keepalived/patroni-*.conf\nvrrp_instance x {\n")
	if code, _, errs := runConf(t, sys, args...); code != 0 {
		t.Errorf("a damaged configuration: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runConf(t, sys, append(args, "--router-id", "100")...); code != 1 || !strings.Contains(errs, "patroni_pg-a_vip's") {
		t.Errorf("a damaged configuration, an id in use: exit %d, stderr %q", code, errs)
	}
}

// Without --peer the peers are Patroni's members but this node.
func TestKeepalivedConfPeersFromCluster(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"members": [{"name": "node1", "host": "127.0.0.1", "role": "leader"},
			{"name": "node2", "host": "127.0.0.2", "role": "replica"}, {"name": "node3", "host": "127.0.0.3"}]}`)
	}))
	defer srv.Close()
	sys := labNode("2.2.7")
	addr := strings.TrimPrefix(srv.URL, "http://")
	sys.Files["/etc/patroni/15-main.yml"].Data = []byte("name: node1\nrestapi:\n  connect_address: " + addr + "\n")
	code, out, errs := runConf(t, sys, "--mode", "oneshot", "--vip", "127.0.0.100/8")
	if code != 0 || !strings.Contains(out, "unicast_peer {\n        127.0.0.2\n        127.0.0.3\n    }") ||
		!strings.Contains(out, `script "/usr/bin/patroni-vip-check http://`+addr+`/primary"`) || !strings.Contains(out, "interface lo\n") {
		t.Errorf("exit %d, stderr %q\n%s", code, errs, out)
	}
	srv.Close()
	code, _, errs = runConf(t, sys, "--vip", "127.0.0.100/8")
	if code != 1 || !strings.Contains(errs, "asking Patroni for its members") || !strings.Contains(errs, "give them with --peer") {
		t.Errorf("Patroni down: exit %d, stderr %q", code, errs)
	}
}

// A node on IPv6: Patroni's connect_address in brackets, its /cluster
// answer asked over IPv6, the URL in brackets, no label, the unicast
// source and peers of the VIP's family.
func TestKeepalivedConfIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"members": [{"name": "node1", "host": "2001:db8::11", "role": "leader"},
			{"name": "node2", "host": "2001:db8::12", "role": "replica"}, {"name": "node3", "host": "[2001:db8::13]"}]}`)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	sys := labNode("2.2.7")
	sys.Files["/etc/patroni/15-main.yml"].Data = []byte(fmt.Sprintf("name: node1\nrestapi:\n  connect_address: '[::1]:%d'\n", port))
	sys.Ifaces = append(sys.Ifaces, system.Interface{Name: "lo", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("::1/128")}})
	code, out, errs := runConf(t, sys, "--mode", "oneshot", "--vip", "2001:db8::100/64", "--router-id", "51", "--node", "::1", "--interface", "eth0")
	for _, want := range []string{
		fmt.Sprintf(`script "/usr/bin/patroni-vip-check http://[::1]:%d/primary"`, port),
		"unicast_src_ip ::1\n",
		"unicast_peer {\n        2001:db8::12\n        2001:db8::13\n    }", // node1 is this node, by name
		"2001:db8::100/64 dev eth0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q: exit %d, stderr %q\n%s", want, code, errs, out)
		}
	}
	if code != 0 || strings.Contains(out, " label ") {
		t.Errorf("exit %d, stderr %q\n%s", code, errs, out)
	}

	// The lab's node on IPv6: the router id from the VIP's last byte, as
	// on IPv4 (::100 ends in 0, which is said); no label unless asked, and
	// one asked for is refused.
	v6 := labNode("2.2.7")
	v6.Ifaces[1].Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8::11/64")}
	args := []string{"--mode", "oneshot", "--node", "2001:db8::11", "--peer", "2001:db8::12", "--url", "http://[2001:db8::11]:8008/primary"}
	code, out, errs = runConf(t, v6, append(args, "--vip", "2001:db8::64/64")...)
	if code != 0 || errs != "" || !strings.Contains(out, "2001:db8::64/64 dev eth0\n") || !strings.Contains(out, "virtual_router_id 100\n") {
		t.Errorf("exit %d, stderr %q\n%s", code, errs, out)
	}
	if code, _, errs := runConf(t, v6, append(args, "--vip", "2001:db8::100/64")...); code != 1 || !strings.Contains(errs, "the VIP 2001:db8::100 ends in 0: give --router-id") {
		t.Errorf("::100: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runConf(t, v6, append(args, "--vip", "2001:db8::64/64", "--label", "eth0:1")...); code != 1 || !strings.Contains(errs, "IPv6, which keepalived cannot label") {
		t.Errorf("--label on IPv6: exit %d, stderr %q", code, errs)
	}
}

func TestKeepalivedConfTLS(t *testing.T) {
	sys := labNode("2.2.7")
	// A certificate for the node's name only: the check must name it.
	sys.Files["/etc/patroni/15-main.yml"].Data = []byte(`name: node1
restapi:
  connect_address: 198.51.100.11:8008
  certfile: /etc/patroni/rest.pem
  keyfile: /etc/patroni/rest.key
  cafile: /etc/patroni/ca.pem
  verify_client: required
`)
	sys.Files["/etc/patroni/rest.pem"] = &systemtest.File{Mode: 0o644, Data: certForName(t, "pg1.example")}
	code, out, errs := runConf(t, sys, "--mode", "oneshot", "--vip", "198.51.100.100/24", "--peer", "198.51.100.12")
	want := `script "/usr/bin/patroni-vip-check --cacert /etc/patroni/ca.pem --cert /etc/patroni/rest.pem --key /etc/patroni/rest.key --servername pg1.example https://198.51.100.11:8008/primary"`
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, stderr %q, no %s in\n%s", code, errs, want, out)
	}
	code, out, _ = runConf(t, sys, "--mode", "oneshot", "--vip", "198.51.100.100/24", "--peer", "198.51.100.12",
		"--servername", "", "--cert", "/etc/ssl/c.pem", "--key", "/etc/ssl/k.pem")
	if code != 0 || !strings.Contains(out, `"/usr/bin/patroni-vip-check --cacert /etc/patroni/ca.pem --cert /etc/ssl/c.pem --key /etc/ssl/k.pem https://`) {
		t.Errorf("overrides: exit %d\n%s", code, out)
	}
}

// certForName is a self-signed certificate for the DNS name name only.
func certForName(t *testing.T, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{name}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestKeepalivedConfErrors(t *testing.T) {
	cases := []struct {
		name string
		sys  func() *systemtest.Fake
		args []string
		want string
	}{
		{"no vip", func() *systemtest.Fake { return labNode("2.2.7") }, nil, "--vip ADDR/PREFIX is required"},
		{"bad vip", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.100"}, "want an address with its prefix"},
		{"bad flag", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.100/24", "--bogus"}, "keepalived-conf: unknown flag --bogus (see --help)"},
		{"bad mode", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.100/24", "--mode", "cron"}, `--mode "cron"`},
		{"bad peer", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.100/24", "--peer", "pg2"}, `--peer "pg2" is not an address`},
		{"router id 0", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--router-id", "0"}, "virtual_router_id -1"},
		{"no keepalived", func() *systemtest.Fake {
			s := labNode("2.2.7")
			delete(s.Files, "/usr/sbin/keepalived")
			return s
		}, []string{"--vip", "198.51.100.100/24"}, "keepalived is not installed"},
		{"garbled version", func() *systemtest.Fake { return labNode("x") }, []string{"--vip", "198.51.100.100/24"}, "no \"Keepalived vX.Y.Z\""},
		{"no patroni", func() *systemtest.Fake {
			s := labNode("2.2.7")
			delete(s.Files, "/etc/patroni/15-main.yml")
			return s
		}, []string{"--vip", "198.51.100.100/24"}, "no Patroni configuration"},
		{"two patronis", func() *systemtest.Fake {
			s := labNode("2.2.7")
			s.Files["/etc/patroni/16-main.yml"] = s.Files["/etc/patroni/15-main.yml"]
			return s
		}, []string{"--vip", "198.51.100.100/24"}, "2 Patroni configurations (/etc/patroni/15-main.yml, /etc/patroni/16-main.yml): name it with --patroni-config"},
		{"no interface", func() *systemtest.Fake {
			s := labNode("2.2.7")
			s.Ifaces = s.Ifaces[:1]
			return s
		}, []string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12"}, "no interface holds 198.51.100.11"},
		{"vip is node", func() *systemtest.Fake { return labNode("2.2.7") }, []string{"--vip", "198.51.100.11/24", "--peer", "198.51.100.12"}, "this node's own address"},
		{"password in url", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--url", "ftp://u:S3CRET@198.51.100.11:8008/primary"}, `--url: invalid URL "ftp://u:xxxxx@198.51.100.11:8008/primary"`},
		{"credentials in url", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--url", "http://u:S3CRET@198.51.100.11:8008/primary"},
			`--url: invalid URL "http://u:xxxxx@198.51.100.11:8008/primary": credentials belong in --user and --password-file, not the URL`},
		{"fragment in url", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--url", "http://198.51.100.11:8008/primary#replica"}, "a fragment means nothing to Patroni"},
		{"user without password file", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--user", "pvc"}, "--user needs --password-file"},
		{"password file without user", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--password-file", "/etc/patroni/pw"}, "--password-file needs --user"},
		{"user with a colon", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--user", "a:S3CRET", "--password-file", "/etc/patroni/pw"}, "--user holds a colon"},
		{"vip is a peer", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.12/24", "--peer", "198.51.100.12"}, "the VIP 198.51.100.12 is the address of the peer 198.51.100.12"},
		{"vip is the broadcast address", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.255/24", "--peer", "198.51.100.12"}, "broadcast address of 198.51.100.0/24"},
		{"vip is the network address", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.0/24", "--peer", "198.51.100.12", "--router-id", "7"}, "network address of 198.51.100.0/24"},
		{"a flag the check refuses", func() *systemtest.Fake { return labNode("2.2.7") },
			[]string{"--vip", "198.51.100.100/24", "--peer", "198.51.100.12", "--mode", "oneshot", "--servername", "a\tb", "--url", "https://198.51.100.11:8008/primary"},
			"the check would refuse its command line"},
	}
	for _, tc := range cases {
		code, out, errs := runConf(t, tc.sys(), tc.args...)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if code != 1 || out != "" || len(lines) != 1 || !strings.HasPrefix(errs, "patroni-vip-check: error: ") ||
			!strings.Contains(errs, tc.want) || strings.HasSuffix(strings.TrimSpace(errs), ".") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, want one error line with %q", tc.name, code, out, errs, tc.want)
		}
		if strings.Contains(errs, "S3CRET") {
			t.Errorf("%s: the password shows: %q", tc.name, errs)
		}
	}
	code, out, _ := runConf(t, labNode("2.2.7"), "--help")
	if code != 0 || !strings.HasPrefix(out, "usage: patroni-vip-check keepalived-conf") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

// Basic auth goes to the check as flags, the password in its file: never
// into keepalived.conf.
func TestKeepalivedConfBasicAuth(t *testing.T) {
	sys := labNode("2.2.7")
	sys.Files["/etc/patroni/vip-check.pw"] = &systemtest.File{Mode: 0o600, Data: []byte("S3CRET\n")}
	code, out, errs := runConf(t, sys, "--mode", "oneshot", "--vip", "198.51.100.100/24", "--peer", "198.51.100.12",
		"--user", "pvc", "--password-file", "/etc/patroni/vip-check.pw")
	want := `script "/usr/bin/patroni-vip-check --user pvc --password-file /etc/patroni/vip-check.pw http://198.51.100.11:8008/primary"`
	if code != 0 || errs != "" || !strings.Contains(out, want) || strings.Contains(out, "S3CRET") {
		t.Errorf("exit %d, stderr %q, want %s in\n%s", code, errs, want, out)
	}
	// A password file that is not there yet is said, not refused: it may be
	// made after the configuration.
	code, _, errs = runConf(t, labNode("2.2.7"), "--vip", "198.51.100.100/24", "--peer", "198.51.100.12",
		"--user", "pvc", "--password-file", "/etc/patroni/vip-check.pw")
	if code != 0 || !strings.Contains(errs, "warning: --password-file /etc/patroni/vip-check.pw is not a file here") {
		t.Errorf("missing password file: exit %d, stderr %q", code, errs)
	}
}

func TestKeepalivedConfWarnsOutsideSubnet(t *testing.T) {
	code, out, errs := runConf(t, labNode("2.2.7"), "--vip", "203.0.113.10/24", "--peer", "198.51.100.12")
	if code != 0 || out == "" || !strings.Contains(errs, "patroni-vip-check: warning: the VIP 203.0.113.10/24 is not in eth0's subnet 198.51.100.0/24") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
