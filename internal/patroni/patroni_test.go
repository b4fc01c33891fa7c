package patroni

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// debian is what Debian's pg_createconfig_patroni writes, trimmed.
const debian = `scope: "15-main"
namespace: "/postgresql-common/"
name: pg1

restapi:
  listen: 0.0.0.0:8008
  connect_address: 198.51.100.11:8008
  certfile: /etc/patroni/rest.pem
  keyfile: /etc/patroni/rest.key
  verify_client: required

ctl:
  certfile: /etc/patroni/ctl.pem
  keyfile: /etc/patroni/ctl.key

postgresql:
  listen: "*:5432"
  connect_address: 198.51.100.11:5432
  parameters:
    listen_addresses: "localhost"
    unix_socket_directories: '/var/run/postgresql/'
`

func TestParse(t *testing.T) {
	c, err := Parse("/etc/patroni/15-main.yml", []byte(debian))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scope != "15-main" || c.Name != "pg1" || c.RestAPI.ConnectAddress != "198.51.100.11:8008" ||
		!c.HTTPS() || !c.ClientCertRequired() || c.Ctl.CertFile != "/etc/patroni/ctl.pem" ||
		c.PostgreSQL.Listen != "*:5432" || c.PostgreSQL.ListenAddresses != "localhost" {
		t.Errorf("parsed %+v", c)
	}
	for _, bad := range []string{"restapi: [", "restapi:\n  listen: {a: b}\n"} {
		if _, err := Parse("x.yml", []byte(bad)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q): error %v, want one line", bad, err)
		}
	}
	if c, err := Parse("empty.yml", nil); err != nil || c.HTTPS() {
		t.Errorf("empty file: %+v %v", c, err)
	}
}

func TestFind(t *testing.T) {
	node := &fstest.MapFile{Data: []byte(debian)}
	dcs := &fstest.MapFile{Data: []byte("ttl: 30\nloop_wait: 10\n")} // Debian's template, no restapi
	c, err := Find(fstest.MapFS{"etc/patroni/15-main.yml": node, "etc/patroni/dcs.yml": dcs})
	if err != nil || c.Path != "/etc/patroni/15-main.yml" {
		t.Errorf("Find: %+v %v", c, err)
	}
	if c, err := Find(fstest.MapFS{"etc/patroni.yml": node}); err != nil || c.Path != "/etc/patroni.yml" {
		t.Errorf("Find /etc/patroni.yml: %+v %v", c, err)
	}
	_, err = Find(fstest.MapFS{"etc/patroni/15-main.yml": node, "etc/patroni/16-main.yml": node})
	if err == nil || !strings.Contains(err.Error(), "/etc/patroni/15-main.yml, /etc/patroni/16-main.yml") {
		t.Errorf("two configurations: %v", err)
	}
	if _, err := Find(fstest.MapFS{"etc/patroni/dcs.yml": dcs}); err == nil {
		t.Error("no configuration: no error")
	}
}

func TestListen(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.100")
	cases := []struct {
		listen string
		hosts  []string
		covers bool
	}{
		{"*:5432", []string{"*"}, true},
		{"0.0.0.0:5432", []string{"0.0.0.0"}, true},
		{"127.0.0.1,198.51.100.11:5432", []string{"127.0.0.1", "198.51.100.11"}, false},
		{"198.51.100.100, 127.0.0.1:5433", []string{"198.51.100.100", "127.0.0.1"}, true},
		{"[::]:5432", []string{"::"}, true},
		{"localhost:5432", []string{"localhost"}, false},
	}
	for _, tc := range cases {
		hosts, _, err := PostgreSQL{Listen: tc.listen}.ListenHosts()
		if err != nil || !reflect.DeepEqual(hosts, tc.hosts) || Covers(hosts, vip) != tc.covers {
			t.Errorf("%q: hosts %q err %v covers %t", tc.listen, hosts, err, Covers(hosts, vip))
		}
	}
	if _, _, err := (PostgreSQL{Listen: "0.0.0.0"}).ListenHosts(); err == nil {
		t.Error("no port: no error")
	}
	if got := SplitList(`'localhost, 198.51.100.100'`); !reflect.DeepEqual(got, []string{"localhost", "198.51.100.100"}) {
		t.Errorf("SplitList: %q", got)
	}
}

// certs makes a CA, a REST API certificate it signed for names, and a
// self-signed one, in dir.
func certs(t *testing.T, dir string, ips []net.IP, names []string) (ca, signed, self string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	write := func(name, typ string, der []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips, DNSNames: names}
	signedDER, _ := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, key)
	selfDER, _ := x509.CreateCertificate(rand.Reader, leaf, leaf, &key.PublicKey, key)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write("key.pem", "EC PRIVATE KEY", keyDER)
	return write("ca.pem", "CERTIFICATE", caDER), write("signed.pem", "CERTIFICATE", signedDER), write("self.pem", "CERTIFICATE", selfDER)
}

func TestCheckTLS(t *testing.T) {
	dir := t.TempDir()
	ca, signed, self := certs(t, dir, []net.IP{net.ParseIP("198.51.100.11")}, nil)
	_, named, _ := certs(t, t.TempDir(), nil, []string{"pg1.example", "pg1"})
	cases := []struct {
		name string
		cfg  Config
		want TLSFiles
		err  string
	}{
		{"http", Config{}, TLSFiles{}, ""},
		{"cafile", Config{RestAPI: RestAPI{CertFile: signed, CAFile: ca}}, TLSFiles{CACert: ca}, ""},
		{"self-signed", Config{RestAPI: RestAPI{CertFile: self}}, TLSFiles{CACert: self}, ""},
		{"public CA", Config{RestAPI: RestAPI{CertFile: signed}}, TLSFiles{}, ""},
		{"name only", Config{RestAPI: RestAPI{CertFile: named, CAFile: ca}}, TLSFiles{CACert: ca, ServerName: "pg1.example"}, ""},
		{"verify_client", Config{RestAPI: RestAPI{CertFile: signed, KeyFile: "/k", CAFile: ca, VerifyClient: "required"}},
			TLSFiles{CACert: ca, Cert: signed, Key: "/k"}, ""},
		{"ctl cert", Config{RestAPI: RestAPI{CertFile: signed, CAFile: ca, VerifyClient: "optional"}, Ctl: Ctl{CertFile: "/c", KeyFile: "/ck"}},
			TLSFiles{CACert: ca, Cert: "/c", Key: "/ck"}, ""},
		{"encrypted", Config{RestAPI: RestAPI{CertFile: signed, KeyFile: "/k", KeyFilePassword: "x", CAFile: ca, VerifyClient: "required"}},
			TLSFiles{}, "encrypted"},
		{"missing", Config{RestAPI: RestAPI{CertFile: dir + "/nope.pem"}}, TLSFiles{}, "no such file"},
	}
	for _, tc := range cases {
		got, err := tc.cfg.CheckTLS("198.51.100.11", os.ReadFile)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestMembers(t *testing.T) {
	const body = `{"members": [
	  {"name": "pg1", "role": "leader", "state": "running", "api_url": "http://198.51.100.11:8008/patroni", "host": "198.51.100.11", "port": 5432, "timeline": 4},
	  {"name": "pg2", "role": "replica", "state": "streaming", "host": "198.51.100.12", "port": 5432, "lag": 0},
	  {"name": "pg3", "role": "sync_standby", "state": "streaming", "host": "198.51.100.13", "port": 5432}],
	 "scope": "demo"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cluster" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	client, err := Client(TLSFiles{}, false, 2*time.Second, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Members(context.Background(), client, srv.URL)
	if err != nil || len(ms) != 3 || ms[2].Host != "198.51.100.13" || ms[0].Role != "leader" {
		t.Errorf("members %+v %v", ms, err)
	}
	// A self-signed certificate that is no CA, trusted as --cacert the way
	// CheckTLS picks it, verifies: the check's Go TLS takes it the same way.
	dir := t.TempDir()
	_, _, self := certs(t, dir, []net.IP{net.ParseIP("127.0.0.1")}, nil)
	pair, err := tls.LoadX509KeyPair(self, dir+"/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewUnstartedServer(srv.Config.Handler)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	files, err := (&Config{RestAPI: RestAPI{CertFile: self}}).CheckTLS("127.0.0.1", os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsClient, err := Client(files, false, 2*time.Second, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := Members(context.Background(), tlsClient, tlsSrv.URL); err != nil || len(ms) != 3 {
		t.Errorf("https with a self-signed certificate as CA: %v", err)
	}
	if _, err := Members(context.Background(), client, srv.URL+"/x"); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("404: %v", err)
	}
	for _, bad := range []string{`{"members": []}`, `<html>`, `{"members": 1}`} {
		if _, err := ParseCluster([]byte(bad)); err == nil {
			t.Errorf("ParseCluster(%q): no error", bad)
		}
	}
}
