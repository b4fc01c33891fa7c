//go:build e2e

package systemd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the node looks like: the paths of the package, of Debian's node_exporter and
// PostgreSQL, and an address of the node's own on which Patroni may listen.
const (
	unitName = "patroni-vip-check.service"
	trackDir = "/run/keepalived-patroni-vip-check"
	track    = trackDir + "/eligible"
	promDir  = "/var/lib/prometheus/node-exporter"
	prom     = promDir + "/patroni_vip_check.prom"
	dataDir  = "/var/lib/postgresql/15/main"
	tlsDir   = "/etc/patroni/tls"
	nodeAddr = "198.51.100.11"
	probe    = "/usr/local/bin/pvc-probe"
)

// Set up once by TestMain.
var (
	skipWhy  string            // why this run cannot boot containers
	stacks   []string          // the stacks to test on (PVC_SYSTEMD_STACKS, default all)
	rootDirs map[string]string // each stack's root filesystem
	pvcBin   string            // the watch under test
	probeBin string
	repo     string // the repository's root
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipWhy = "needs root: namespaces, mounts, cgroups"
		return m.Run()
	}
	ctx := context.Background()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	var err error
	if repo, err = filepath.Abs("../.."); err != nil {
		logf("%v", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", fmt.Sprintf("pvc-e2e-systemd-%d-0-", os.Getpid())) // swept like a container's if this process is killed
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if pvcBin = os.Getenv("PVC_BIN"); pvcBin == "" {
		pvcBin = filepath.Join(tmp, "patroni-vip-check")
		if err := goBuild(ctx, pvcBin, ".", "nethttpomithttp2"); err != nil {
			logf("%v", err)
			return 1
		}
	}
	probeBin = filepath.Join(tmp, "pvc-probe")
	if err := goBuild(ctx, probeBin, "./e2e/systemd/testdata/probe", ""); err != nil {
		logf("%v", err)
		return 1
	}
	stacks = Stacks
	if s := os.Getenv("PVC_SYSTEMD_STACKS"); s != "" {
		stacks = strings.Fields(s)
	}
	rootDirs = make(map[string]string)
	for _, stack := range stacks {
		spec, err := Lookup(stack)
		if err != nil {
			logf("%v", err)
			return 1
		}
		root, err := EnsureRoot(ctx, spec, logf)
		if err != nil {
			logf("%v", err)
			return 1
		}
		defer root.Close()
		rootDirs[stack] = root.Dir
	}
	return m.Run()
}

// onEachStack runs f as a subtest per stack, the stacks side by side: each boots
// containers of its own.
func onEachStack(t *testing.T, f func(t *testing.T, stack string)) {
	t.Helper()
	if skipWhy != "" {
		if os.Getenv("PVC_REQUIRE_ROOT") == "1" {
			t.Fatalf("%s (PVC_REQUIRE_ROOT=1)", skipWhy)
		}
		t.Skip(skipWhy)
	}
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			t.Parallel()
			f(t, stack)
		})
	}
}

func goBuild(ctx context.Context, out, pkg, tags string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", tags, "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
	}
	return nil
}

// node is one booted container set up as a Patroni node: Patroni (a stand-in served by the
// test) on 127.0.0.1:8008 and on the node's address, with TLS and client certificates on
// 127.0.0.1:8443; PostgreSQL's user, data directory and certificate files; Debian's
// node_exporter running; the package's tmpfiles.d entry applied at boot.
type node struct {
	*Container
	t       *testing.T
	patroni *standin
}

func newNode(t *testing.T, stack string) *node {
	t.Helper()
	tmpfiles, err := os.ReadFile(filepath.Join(repo, "packaging/tmpfiles.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Boot(t.Context(), Config{
		Root: rootDirs[stack],
		Binds: []Bind{
			{Source: pvcBin, Target: "/usr/bin/patroni-vip-check", ReadOnly: true},
			{Source: probeBin, Target: probe, ReadOnly: true},
		},
		Files: []File{
			{Path: "/usr/lib/tmpfiles.d/patroni-vip-check.conf", Data: string(tmpfiles)},
			// What PostgreSQL's packages make, for what the watch may read.
			{Path: "/usr/lib/sysusers.d/pvc-e2e.conf", Data: "u postgres - \"PostgreSQL administrator\" /var/lib/postgresql /bin/sh\n"},
			{Path: "/etc/tmpfiles.d/pvc-e2e.conf", Data: strings.Join([]string{
				"d /var/lib/postgresql 0755 postgres postgres -",
				"d /var/lib/postgresql/15 0755 postgres postgres -",
				"d " + dataDir + " 0700 postgres postgres -",
				"f " + dataDir + "/PG_VERSION 0600 postgres postgres - 15",
				"d /etc/patroni 0755 root root -",
				"d " + tlsDir + " 0700 postgres postgres -",
			}, "\n") + "\n"},
		},
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Container: c, t: t, patroni: &standin{}}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := c.Run(context.Background(), "journalctl", "--no-pager", "-n", "60", "-o", "short-precise"); err == nil {
				t.Logf("the container's journal, last lines:\n%s", out)
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	n.patroni.primary.Store(true)

	// The node's address on an interface of its own (a veth pair: this kernel has no dummy).
	for _, args := range [][]string{
		{"link", "add", "pvc0", "type", "veth", "peer", "name", "pvc1"},
		{"addr", "add", nodeAddr + "/24", "dev", "pvc0"},
		{"link", "set", "pvc0", "up"},
		{"link", "set", "pvc1", "up"},
	} {
		cmd := exec.CommandContext(t.Context(), "nsenter", append([]string{"--net=" + c.NetNS(), "ip"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ca, server, clientCert, clientKey := makeCerts(t)
	for _, f := range []struct{ name, data string }{
		{"ca.pem", ca}, {"client.pem", clientCert}, {"client.key", clientKey},
	} {
		p := tlsDir + "/" + f.name
		if err := c.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		n.run("chown", "postgres:postgres", p)
	}
	n.serve("127.0.0.1:8008", nil)
	n.serve(nodeAddr+":8008", nil)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(ca))
	n.serve("127.0.0.1:8443", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
	return n
}

// serve answers as Patroni on addr inside the container, for the test's lifetime.
func (n *node) serve(addr string, tlsConfig *tls.Config) {
	l, err := n.Listen("tcp", addr)
	if err != nil {
		n.t.Fatal(err)
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	srv := &http.Server{Handler: n.patroni, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	n.t.Cleanup(func() { srv.Close() })
}

// run runs a command inside as root; any failure fails the test.
func (n *node) run(argv ...string) string {
	n.t.Helper()
	out, err := n.Run(n.t.Context(), argv...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// install installs the unit file text, the drop-in (none if "") and the environment file
// that gives the watch args, and reloads systemd.
func (n *node) install(unit, dropIn string, args ...string) {
	n.t.Helper()
	if err := n.WriteFile("/etc/default/patroni-vip-check", "PATRONI_VIP_CHECK_ARGS=\""+strings.Join(args, " ")+"\"\n", 0o644); err != nil {
		n.t.Fatal(err)
	}
	n.run("mkdir", "-p", "/etc/systemd/system/"+unitName+".d")
	conf := "/etc/systemd/system/" + unitName + ".d/50-test.conf"
	if dropIn == "" {
		n.run("rm", "-f", conf)
	} else if err := n.WriteFile(conf, dropIn, 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := n.InstallUnit(n.t.Context(), unitName, unit); err != nil {
		n.t.Fatal(err)
	}
}

// start starts the unit: systemctl returns once the watch has said READY=1 (Type=notify),
// or fails after the unit's TimeoutStartSec=.
func (n *node) start() {
	n.t.Helper()
	if _, err := n.Systemctl(n.t.Context(), "start", unitName); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) show(props ...string) map[string]string {
	n.t.Helper()
	m, err := n.Show(n.t.Context(), unitName, props...)
	if err != nil {
		n.t.Fatal(err)
	}
	return m
}

// trackValue is the track file's content, or "missing".
func (n *node) trackValue() string {
	b, err := n.ReadFile(track)
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(b)
}

func (n *node) waitTrack(want string) {
	n.t.Helper()
	waitFor(n.t, "track file "+want, 10*time.Second, func() (bool, string) {
		got := n.trackValue()
		return got == want, "it says " + got
	})
}

// journal is what journalctl selects with args, one MESSAGE a line.
func (n *node) journal(args ...string) string {
	n.t.Helper()
	e, err := n.Journal(n.t.Context(), args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return Messages(e)
}

// waitJournal waits until the lines journalctl selects with args contain want.
func (n *node) waitJournal(want string, args ...string) {
	n.t.Helper()
	waitFor(n.t, fmt.Sprintf("journal line %q", want), 10*time.Second, func() (bool, string) {
		got := n.journal(args...)
		return strings.Contains(got, want), "the journal says:\n" + tail(got, 15)
	})
}

// probeResults parses pvc-probe's lines in the journal: "OP ARG" to "ok" or the error.
func (n *node) probeResults() map[string]string {
	n.t.Helper()
	res := make(map[string]string)
	for _, line := range strings.Split(n.journal("-t", "pvc-probe"), "\n") {
		if what, result, ok := strings.Cut(line, ": "); ok {
			res[what] = result
		}
	}
	return res
}

// metrics is what node_exporter, the real one in the container, serves.
func (n *node) metrics() string {
	n.t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://127.0.0.1:9100/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

// shippedUnit is packaging/patroni-vip-check.service, through edit when given.
func shippedUnit(t *testing.T, edit ...func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "packaging/patroni-vip-check.service"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, e := range edit {
		s = e(s)
	}
	return s
}

// withoutLinesNaming drops the lines that contain s.
func withoutLinesNaming(s string) func(string) string {
	return func(unit string) string {
		var keep []string
		for _, l := range strings.Split(unit, "\n") {
			if !strings.Contains(l, s) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
}

// waitFor polls cond until it holds, or fails the test after timeout with cond's last
// word on why not.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %v: %s", what, timeout, why)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// standin answers like Patroni 3.0.2's REST API (the body of packaging/testdata's stand-in,
// from a real /primary): 200 and role master while primary, else 503 and role replica.
type standin struct {
	primary  atomic.Bool
	requests atomic.Int64
	mtls     atomic.Int64 // requests that came with a verified client certificate
}

const patroniBody = `{"state": "running", "role": "%s", "server_version": 150000,
 "timeline": 1, "xlog": {"location": 67108864}, "dcs_last_seen": 1764000000,
 "database_system_identifier": "7300000000000000000",
 "patroni": {"version": "3.0.2", "scope": "standin", "name": "standin"}}
`

func (s *standin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		s.mtls.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	role, code := "replica", http.StatusServiceUnavailable
	if s.primary.Load() {
		role, code = "master", http.StatusOK
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, patroniBody, role)
}

// makeCerts makes a CA, Patroni's server certificate for 127.0.0.1 signed by it, and a
// client certificate and key for the watch (PEM).
func makeCerts(t *testing.T) (caPEM string, server tls.Certificate, clientPEM, clientKeyPEM string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pvc-e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	serverDER, serverKey := issue(2, "patroni", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	clientDER, clientKey := issue(3, "patroni-vip-check", x509.ExtKeyUsageClientAuth, nil)
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", caDER), server, pemOf("CERTIFICATE", clientDER), pemOf("PRIVATE KEY", keyDER)
}

// dirEvents records inotify events in a directory of the container, seen from the host.
type dirEvents struct {
	mu     sync.Mutex
	events []dirEvent
}

type dirEvent struct {
	at   time.Time
	mask uint32
	name string
}

func watchDir(t *testing.T, dir string) *dirEvents {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_DELETE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a pending Read
	d := &dirEvents{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				// struct inotify_event: wd, mask, cookie, len, then the name.
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				size := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+size]), "\x00")
				d.mu.Lock()
				d.events = append(d.events, dirEvent{now, mask, name})
				d.mu.Unlock()
				off += unix.SizeofInotifyEvent + size
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return d
}

// deletedAfter reports whether name was deleted after t.
func (d *dirEvents) deletedAfter(name string, t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.events {
		if e.name == name && e.mask&unix.IN_DELETE != 0 && e.at.After(t) {
			return true
		}
	}
	return false
}
