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
	}{
		{"2.2.7", "oneshot", "keepalived.conf"},
		{"2.3.3", "oneshot", "keepalived-2.3.conf"},
		{"2.2.7", "watch", "keepalived-watch.conf"},
		{"2.3.3", "watch", "keepalived-watch.conf"},
	}
	for _, tc := range cases {
		code, out, errs := runConf(t, labNode(tc.version), append([]string{"--mode", tc.mode}, lab...)...)
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
