package check

// Peers for the tests: fake Patroni servers, hostile raw listeners, and a
// throwaway PKI.

import (
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
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// patroniBody is what Patroni 3.0.2 answers on a health endpoint, trimmed.
func patroniBody(state, role string, timeline int) string {
	return fmt.Sprintf(`{"state": %q, "postmaster_start_time": "2026-11-25 10:00:00.000000+00:00", "role": %q, `+
		`"server_version": 150010, "xlog": {"location": 67108864}, "timeline": %d, `+
		`"dcs_last_seen": 1764064800, "database_system_identifier": "7300000000000000000", `+
		`"patroni": {"version": "3.0.2", "scope": "demo"}}`, state, role, timeline)
}

// answer is an http.Handler that answers with a fixed status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// listen opens a raw TCP listener on loopback, closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// rawPeer serves each accepted connection with handle, in its own
// goroutine, until the test ends. It counts connections.
func rawPeer(t *testing.T, handle func(n int, c net.Conn)) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln := listen(t)
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(conns.Add(1))
			t.Cleanup(func() { c.Close() })
			go handle(n, c)
		}
	}()
	return ln.Addr().String(), conns
}

// readRequest consumes the request head so a reply is not a reset.
func readRequest(c net.Conn) {
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.Read(buf)
	c.SetReadDeadline(time.Time{})
}

// drip writes s one byte per interval until the connection fails.
func drip(c net.Conn, s string, interval time.Duration) {
	for i := 0; ; i = (i + 1) % len(s) {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(interval)
	}
}

// reset closes c with an RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pki is a test CA with a server certificate for "patroni.test" and
// 127.0.0.1, and a client certificate, written as PEM files.
type pki struct {
	caFile            string // the CA that signed everything below
	otherCAFile       string // a CA that signed nothing here
	certFile, keyFile string // the client's
	pool              *x509.CertPool
	server            tls.Certificate // for patroni.test and 127.0.0.1
	elsewhere         tls.Certificate // for elsewhere.test only
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{pool: x509.NewCertPool()}
	ca, caKey := selfSigned(t, "patroni-vip-check test CA")
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	other, _ := selfSigned(t, "unrelated CA")
	p.otherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)

	srv, srvKey := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "patroni.test"},
		DNSNames:    []string{"patroni.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.server = tls.Certificate{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}
	wrong, wrongKey := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "elsewhere.test"},
		DNSNames:    []string{"elsewhere.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.elsewhere = tls.Certificate{Certificate: [][]byte{wrong.Raw}, PrivateKey: wrongKey}

	cli, cliKey := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "keepalived"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cli.Raw)
	p.keyFile = writeKey(t, dir, "client-key.pem", cliKey)
	return p
}

var serial atomic.Int64

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKey(t *testing.T, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}
