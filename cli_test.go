package main

// Tests of the real command, run back to back as keepalived runs it, with
// its log sent to a syslog socket of the test's own.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syslogd collects what the command sends to its --log-socket.
type syslogd struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func newSyslogd(t *testing.T) *syslogd {
	t.Helper()
	s := &syslogd{path: filepath.Join(t.TempDir(), "log.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.at = append(s.at, time.Now())
			s.mu.Unlock()
		}
	}()
	return s
}

// lines waits briefly for datagrams in flight, then returns the messages
// without their syslog header.
func (s *syslogd) lines() []string {
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.msgs))
	for i, m := range s.msgs {
		_, msg, _ := strings.Cut(m, "]: ")
		out[i] = msg
	}
	return out
}

// cmd is one check: a command line, and where its state and log go.
type cmd struct {
	t        *testing.T
	bin      string
	stateDir string
	log      *syslogd
}

func newCmd(t *testing.T) *cmd {
	t.Helper()
	bin, err := exec.LookPath("patroni-vip-check")
	if err != nil {
		t.Fatal(err)
	}
	return &cmd{t: t, bin: bin, stateDir: filepath.Join(t.TempDir(), "state"), log: newSyslogd(t)}
}

func (c *cmd) command(args ...string) *exec.Cmd {
	base := []string{"--log", "syslog", "--log-socket", c.log.path, "--state-dir", c.stateDir}
	return exec.Command(c.bin, append(base, args...)...)
}

// run runs the check once and returns its exit status and stderr.
func (c *cmd) run(args ...string) (int, string) {
	c.t.Helper()
	x := c.command(args...)
	var stderr bytes.Buffer
	x.Stderr = &stderr
	err := x.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stderr.String()
	}
	c.t.Fatalf("run: %v", err)
	return -1, ""
}

func (c *cmd) mustExit(want int, args ...string) {
	c.t.Helper()
	if got, stderr := c.run(args...); got != want {
		c.t.Fatalf("exit %d, want %d; stderr: %s", got, want, stderr)
	}
}

func TestQuietReplica(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	for i := 0; i < 300; i++ {
		c.mustExit(1, p.URL+"/primary")
	}
	lines := c.log.lines()
	if len(lines) != 1 {
		t.Fatalf("300 runs logged %d lines: %q", len(lines), lines)
	}
	if want := "not primary: 503 from " + p.URL + "/primary (role=replica, timeline=4)"; lines[0] != want {
		t.Errorf("logged %q, want %q", lines[0], want)
	}
}

func TestPromotionLogsOnce(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	for i := 0; i < 20; i++ {
		c.mustExit(1, p.URL+"/primary")
	}
	p.set(200, "master")
	for i := 0; i < 20; i++ {
		c.mustExit(0, p.URL+"/primary")
	}
	lines := c.log.lines()
	if len(lines) != 2 {
		t.Fatalf("logged %d lines: %q", len(lines), lines)
	}
	re := regexp.MustCompile(`^primary: 200 from http://127\.0\.0\.1:\d+/primary \(role=master, timeline=4\); was not primary for [0-9.]+m?s$`)
	if !re.MatchString(lines[1]) {
		t.Errorf("promotion logged as %q", lines[1])
	}
}

func TestErrorStateReminds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/primary"
	ln.Close()
	c := newCmd(t)
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		c.mustExit(1, "--remind", "300ms", url)
		time.Sleep(20 * time.Millisecond)
	}
	lines := c.log.lines()
	if len(lines) < 3 || len(lines) > 5 {
		t.Fatalf("1.2s of a refused port with --remind 300ms logged %d lines: %q", len(lines), lines)
	}
	if !strings.HasPrefix(lines[0], "unreachable: "+url+": connecting to") {
		t.Errorf("first line %q", lines[0])
	}
	re := regexp.MustCompile(`^still unreachable since \S+ \([0-9.]+m?s, [1-9]\d* checks not logged\): ` + regexp.QuoteMeta(url) + `: connecting to`)
	for _, l := range lines[1:] {
		if !re.MatchString(l) {
			t.Errorf("reminder %q", l)
		}
	}
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	// The policy spaces its decisions --remind apart; the lines are timed
	// on arrival here, a few milliseconds after each decision, so allow
	// that much jitter. Runs come every 20-40 ms: a reminder per run
	// would still fail.
	const jitter = 20 * time.Millisecond
	for i := 1; i < len(c.log.at); i++ {
		if gap := c.log.at[i].Sub(c.log.at[i-1]); gap < 300*time.Millisecond-jitter {
			t.Errorf("lines %d and %d only %v apart", i-1, i, gap)
		}
	}
}

// TestOverlappingRunsLogOnce starts 40 runs at once after a change, as an
// overloaded keepalived might: one line between them.
func TestOverlappingRunsLogOnce(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	c.mustExit(1, p.URL+"/primary")
	p.set(200, "master")
	var wg sync.WaitGroup
	codes := make([]int, 40)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = c.run(p.URL + "/primary")
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != 0 {
			t.Errorf("run %d exited %d", i, code)
		}
	}
	lines := c.log.lines()
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "primary: 200") {
		t.Errorf("logged %q, want the first state and one change", lines)
	}
}

func stateFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.state"))
	if err != nil || len(m) != 1 {
		t.Fatalf("state files %v (%v)", m, err)
	}
	return m[0]
}

func TestStateCannotMakeTheCheckWrong(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	url := p.URL + "/primary"

	t.Run("corrupt state file", func(t *testing.T) {
		c := newCmd(t)
		c.mustExit(0, url)
		os.WriteFile(stateFile(t, c.stateDir), []byte("pvc1 garbage\n"), 0o600)
		c.mustExit(0, url)
		c.mustExit(0, url)
		lines := c.log.lines()
		if len(lines) != 2 || !strings.Contains(lines[1], "corrupt") || !strings.Contains(lines[1], "starting afresh") {
			t.Errorf("logged %q, want the first state, then one warning", lines)
		}
	})

	t.Run("state dir is a regular file", func(t *testing.T) {
		c := newCmd(t)
		os.WriteFile(c.stateDir, []byte("not a directory"), 0o600)
		c.mustExit(0, url)
		p.set(503, "replica")
		defer p.set(200, "master")
		c.mustExit(1, url)
		lines := c.log.lines()
		if len(lines) != 2 || !strings.Contains(lines[0], "not a directory; logging every check until it is fixed") {
			t.Errorf("logged %q", lines)
		}
		if b, _ := os.ReadFile(c.stateDir); string(b) != "not a directory" {
			t.Errorf("the file became %q", b)
		}
	})

	t.Run("state file replaced by a symlink", func(t *testing.T) {
		c := newCmd(t)
		c.mustExit(0, url)
		victim := filepath.Join(t.TempDir(), "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o644)
		sf := stateFile(t, c.stateDir)
		os.Remove(sf)
		os.Symlink(victim, sf)
		c.mustExit(0, url)
		c.mustExit(0, url)
		if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
			t.Errorf("the symlink's target now holds %q", b)
		}
		lines := c.log.lines()
		if len(lines) != 2 || !strings.Contains(lines[1], "was a symlink; replaced it with a fresh state file") {
			t.Errorf("logged %q", lines)
		}
	})

	t.Run("state dir owned by someone else", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		c := newCmd(t)
		os.Mkdir(c.stateDir, 0o700)
		os.Chown(c.stateDir, 65534, 65534)
		c.mustExit(0, url)
		if lines := c.log.lines(); len(lines) != 1 || !strings.Contains(lines[0], "owned by uid 65534") {
			t.Errorf("logged %q", lines)
		}
	})

	t.Run("state locked past the deadline", func(t *testing.T) {
		c := newCmd(t)
		c.mustExit(0, url)
		f, err := os.OpenFile(stateFile(t, c.stateDir), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		start := time.Now()
		c.mustExit(0, "--timeout", "300ms", url)
		if took := time.Since(start); !raceEnabled && took > 300*time.Millisecond+100*time.Millisecond {
			t.Errorf("a locked state held the run for %v", took)
		}
		lines := c.log.lines()
		if len(lines) != 2 || !strings.Contains(lines[1], "locked by another run past the deadline") {
			t.Errorf("logged %q", lines)
		}
	})
}

// TestSIGTERM: keepalived's timeout kill ends a hung request at once,
// with exit status 1, and the interruption is logged.
func TestSIGTERM(t *testing.T) {
	hung := hungPeer(t)
	c := newCmd(t)
	x := c.command("--timeout", "10s", hung)
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	x.Process.Signal(syscall.SIGTERM)
	err := x.Wait()
	took := time.Since(sent)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Exited() || ee.ExitCode() != 1 {
		t.Fatalf("after SIGTERM: %v, want exit status 1", err)
	}
	if !raceEnabled && took > 100*time.Millisecond {
		t.Errorf("exited %v after SIGTERM", took)
	}
	lines := c.log.lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "interrupted: ") {
		t.Errorf("logged %q", lines)
	}
}

// TestStalledRunLogs: a run stopped past its deadline (SIGSTOP, or a
// machine too loaded to schedule it) exits 1 at once when it can run
// again, and still says why, once.
func TestStalledRunLogs(t *testing.T) {
	hung := hungPeer(t)
	for i := 0; i < 5; i++ {
		c := newCmd(t)
		x := c.command("--timeout", "300ms", hung)
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		x.Process.Signal(syscall.SIGSTOP)
		time.Sleep(600 * time.Millisecond)
		cont := time.Now()
		x.Process.Signal(syscall.SIGCONT)
		err := x.Wait()
		took := time.Since(cont)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ee.Exited() || ee.ExitCode() != 1 {
			t.Fatalf("stalled run: %v, want exit status 1", err)
		}
		if !raceEnabled && took > 50*time.Millisecond {
			t.Errorf("exited %v after SIGCONT", took)
		}
		if lines := c.log.lines(); len(lines) != 1 || !strings.HasPrefix(lines[0], "timeout: ") {
			t.Errorf("run %d logged %q, want one timeout line", i, lines)
		}
	}
}

// TestProcessDeadline: the whole process, start-up and exit included, is
// gone shortly after --timeout, whatever the peer does.
func TestProcessDeadline(t *testing.T) {
	hung := hungPeer(t)
	drip, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	go func() {
		for {
			conn, err := drip.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Read(make([]byte, 4096))
				for _, b := range []byte("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 1000)) {
					if _, err := conn.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}()
	c := newCmd(t)
	for _, tc := range []struct{ name, url string }{
		{"accepts and never answers", hung},
		{"drips headers", "http://" + drip.Addr().String() + "/primary"},
	} {
		start := time.Now()
		code, stderr := c.run("--timeout", "200ms", tc.url)
		took := time.Since(start)
		if code != 1 {
			t.Errorf("%s: exit %d (%s)", tc.name, code, stderr)
		}
		// The deadline, the watchdog's grace, and a process start.
		if !raceEnabled && took > 200*time.Millisecond+grace+30*time.Millisecond {
			t.Errorf("%s: process took %v with --timeout 200ms", tc.name, took)
		}
	}
}

// TestJournalFields: --log journal sends structured fields.
func TestJournalFields(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	x := exec.Command(c.bin, "--log", "journal", "--log-socket", c.log.path, "--state-dir", c.stateDir, p.URL+"/primary")
	if err := x.Run(); err == nil {
		t.Fatal("exit 0 for a replica")
	}
	time.Sleep(20 * time.Millisecond)
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	if len(c.log.msgs) != 1 {
		t.Fatalf("%d datagrams", len(c.log.msgs))
	}
	msg := c.log.msgs[0]
	for _, want := range []string{
		"MESSAGE=not primary: 503 from " + p.URL + "/primary (role=replica, timeline=4)\n",
		"PRIORITY=6\n", "SYSLOG_IDENTIFIER=patroni-vip-check\n", "REASON=not-eligible\n",
		"URL=" + p.URL + "/primary\n", "HTTP_STATUS=503\n", "ROLE=replica\n", "TIMELINE=4\n", "EVENT=first\n",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("datagram lacks %q:\n%s", want, msg)
		}
	}
	if !regexp.MustCompile(`(?m)^ELAPSED=[0-9.]+[µm]s$`).MatchString(msg) {
		t.Errorf("datagram lacks ELAPSED:\n%s", msg)
	}
}

// TestProxyIgnoredInNamespace: a check of a non-loopback address (Go never
// proxies loopback) ignores proxy variables. Runs in a network namespace
// of its own with 198.51.100.7 on its loopback device.
func TestProxyIgnoredInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ns := fmt.Sprintf("pvc-unit-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "addr", "add", "198.51.100.7/32", "dev", "lo")

	// A fake Patroni inside the namespace: the command itself cannot serve,
	// so use a tiny server from the test binary's own listener, created
	// while this thread is in the namespace.
	ln := listenInNamespace(t, ns, "198.51.100.7:8008")
	p := newPatroniOn(ln, 200, "master")
	defer p.Close()

	c := newCmd(t)
	x := exec.Command("ip", "netns", "exec", ns, c.bin, "--log", "none", "--no-state", "-v", "http://198.51.100.7:8008/primary")
	dead := "http://127.0.0.1:9"
	x.Env = append(os.Environ(), "HTTP_PROXY="+dead, "http_proxy="+dead, "HTTPS_PROXY="+dead, "https_proxy="+dead, "ALL_PROXY="+dead, "NO_PROXY=")
	out, err := x.CombinedOutput()
	if err != nil {
		t.Fatalf("with proxy variables set: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "connected to 198.51.100.7:8008") {
		t.Errorf("did not connect directly:\n%s", out)
	}
}

// listenInNamespace opens a TCP listener inside the named network
// namespace. A socket belongs to the namespace it was made in, so it can be
// served from anywhere; the thread that entered the namespace is locked
// and ends with its goroutine, never returning to Go's pool.
func listenInNamespace(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listening in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}

func newPatroniOn(ln net.Listener, status int, role string) *fakePatroni {
	p := newPatroni(status, role)
	p.Server.Close()
	q := &fakePatroni{}
	q.set(status, role)
	q.Server = httptest.NewUnstartedServer(p.Server.Config.Handler)
	q.Server.Listener.Close()
	q.Server.Listener = ln
	q.Server.Config.ErrorLog = p.Server.Config.ErrorLog
	q.Server.Start()
	return q
}

func TestNoStateLogsEveryRun(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	for i := 0; i < 3; i++ {
		x := exec.Command(c.bin, "--log", "syslog", "--log-socket", c.log.path, "--no-state", p.URL+"/primary")
		if err := x.Run(); err == nil {
			t.Fatal("exit 0 for a replica")
		}
	}
	if lines := c.log.lines(); len(lines) != 3 {
		t.Errorf("--no-state logged %d lines for 3 runs: %q", len(lines), lines)
	}
	if _, err := os.Stat(c.stateDir); err == nil {
		t.Error("--no-state created a state directory")
	}
}

// TestScriptUser runs the check as an unprivileged user, as keepalived's
// script_user does (umask 0177 included), with the default state
// directory: it keeps its own private directory and de-duplicates as
// root's does.
func TestScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	const uid = 65534 // nobody
	dir := fmt.Sprintf("/tmp/patroni-vip-check-%d", uid)
	if _, err := os.Lstat(dir); err == nil {
		t.Fatalf("%s exists already; remove it to run this test", dir)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	// The command must be reachable by nobody: copy it out of the test's
	// private temporary directories.
	bin := filepath.Join(t.TempDir(), "patroni-vip-check")
	copyFile(t, c.bin, bin, 0o755)
	for _, p := range []string{bin, c.log.path} {
		for d := filepath.Dir(p); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // t.TempDir makes 0700 directories
		}
	}
	os.Chmod(c.log.path, 0o777)
	for i := 0; i < 10; i++ {
		// keepalived runs scripts with umask 0177.
		x := exec.Command("/bin/sh", "-c", `umask 0177; exec "$0" "$@"`, bin, "--log", "syslog", "--log-socket", c.log.path, p.URL+"/primary")
		x.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		var stderr bytes.Buffer
		x.Stderr = &stderr
		err := x.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("run %d as nobody: %v %s", i, err, stderr.String())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: uid %d mode %v, want %d and 0700", dir, st.Uid, fi.Mode(), uid)
	}
	if lines := c.log.lines(); len(lines) != 1 {
		t.Errorf("10 runs as nobody logged %d lines: %q", len(lines), lines)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// hungPeer is the URL of a peer that accepts connections and never
// answers, until the test ends.
func hungPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go hangOn(ln)
	return "http://" + ln.Addr().String() + "/primary"
}
