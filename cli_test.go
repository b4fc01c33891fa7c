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
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syslogd collects what the command sends to its --log-socket.
type syslogd struct {
	path  string
	conn  *net.UnixConn
	mu    sync.Mutex
	msgs  []string
	at    []time.Time
	marks chan struct{} // a barrier datagram was read
	gate  sync.Mutex    // held while reading is paused
	added chan struct{} // closed and replaced at every message
}

// barrier is a datagram the test sends itself: datagrams on a unix socket
// arrive in order, so once it is read, everything sent before it is too.
const barrier = "\x00barrier"

func newSyslogd(t *testing.T) *syslogd {
	t.Helper()
	// Not in t.TempDir, whose name holds the test's: a socket path is
	// limited to 107 bytes.
	dir, err := os.MkdirTemp("", "pvc-log-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &syslogd{path: filepath.Join(dir, "log.sock"), marks: make(chan struct{}, 1), added: make(chan struct{})}
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
			// The lock is a gate: a paused reader waits here, after at most one more read.
			s.gate.Lock()
			s.gate.Unlock() //lint:ignore SA2001 the empty section is the gate
			if string(buf[:n]) == barrier {
				s.marks <- struct{}{}
				continue
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.at = append(s.at, time.Now())
			close(s.added)
			s.added = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	return s
}

// sync returns once every datagram sent so far has been read.
func (s *syslogd) sync(t *testing.T) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(barrier)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.marks:
	case <-time.After(10 * time.Second):
		t.Fatal("the log socket's reader is stuck")
	}
}

// pause stops reading (a stalled daemon) until the returned func is called.
func (s *syslogd) pause() (resume func()) {
	s.gate.Lock()
	return s.gate.Unlock
}

// lines returns the messages received, without their syslog header, once
// every datagram sent so far is in.
func (s *syslogd) lines(t *testing.T) []string {
	t.Helper()
	s.sync(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.msgs))
	for i, m := range s.msgs {
		_, msg, _ := strings.Cut(m, "]: ")
		out[i] = msg
	}
	return out
}

// waitFor waits until a message holding text has arrived, and returns it.
func (s *syslogd) waitFor(t *testing.T, text string) string {
	t.Helper()
	guard := time.After(10 * time.Second)
	for seen := 0; ; {
		s.mu.Lock()
		for ; seen < len(s.msgs); seen++ {
			if strings.Contains(s.msgs[seen], text) {
				_, msg, _ := strings.Cut(s.msgs[seen], "]: ")
				s.mu.Unlock()
				return msg
			}
		}
		added := s.added
		s.mu.Unlock()
		select {
		case <-added:
		case <-guard:
			t.Fatalf("no line with %q in %q", text, s.lines(t))
		}
	}
}

// raw returns the datagrams received, once every datagram sent is in.
func (s *syslogd) raw(t *testing.T) []string {
	t.Helper()
	s.sync(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
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
	base := []string{"--log", "syslog", "--log-socket", c.log.path}
	if !slices.Contains(args, "--no-state") {
		base = append(base, "--state-dir", c.stateDir)
	}
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
	lines := c.log.lines(t)
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
	lines := c.log.lines(t)
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
	lines := c.log.lines(t)
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
	lines := c.log.lines(t)
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
		lines := c.log.lines(t)
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
		lines := c.log.lines(t)
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
		lines := c.log.lines(t)
		if len(lines) != 2 || !strings.Contains(lines[1], "was a symlink; replaced it with a fresh state file") {
			t.Errorf("logged %q", lines)
		}
	})

	t.Run("state dir owned by someone else", func(t *testing.T) {
		needRoot(t)
		c := newCmd(t)
		os.Mkdir(c.stateDir, 0o700)
		os.Chown(c.stateDir, 65534, 65534)
		c.mustExit(0, url)
		if lines := c.log.lines(t); len(lines) != 1 || !strings.Contains(lines[0], "owned by uid 65534") {
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
		lines := c.log.lines(t)
		if len(lines) != 2 || !strings.Contains(lines[1], "locked by another run past the deadline") {
			t.Errorf("logged %q", lines)
		}
	})
}

// TestEarlySIGTERM: a SIGTERM before the run catches it (onceCatchAfter)
// is ignored: the run goes on to its verdict and its exit status, 0 here.
// Tried until the signal goes out before the handler is in place.
func TestEarlySIGTERM(t *testing.T) {
	needMarkerFree(t)
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	for try := 0; try < 20; try++ {
		before := len(c.log.lines(t))
		x := c.command("--no-state", p.URL+"/primary")
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		defer bound(x)()
		if !started(x.Process.Pid) {
			t.Fatal("the run was not seen starting")
		}
		caught := sigMask(x.Process.Pid, "SigCgt", int(syscall.SIGTERM))
		x.Process.Signal(syscall.SIGTERM)
		err := x.Wait()
		if caught {
			continue // this machine was too slow to send it early
		}
		if err != nil {
			t.Errorf("after an early SIGTERM: %v, want the primary's exit status 0", err)
		}
		if lines := c.log.lines(t)[before:]; len(lines) != 1 || !strings.HasPrefix(lines[0], "primary: ") {
			t.Errorf("logged %q, want the verdict", lines)
		}
		return
	}
	t.Fatal("in 20 runs, no SIGTERM went out before the run caught it")
}

// TestSIGTERM: keepalived's timeout kill ends a hung request at once,
// with exit status 1, and the interruption is logged.
func TestSIGTERM(t *testing.T) {
	hung, accepted := hungPeer(t)
	c := newCmd(t)
	x := c.command("--timeout", "10s", hung)
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connection", accepted) // the request is under way
	catching(t, x.Process.Pid)
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
	lines := c.log.lines(t)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "interrupted: ") {
		t.Errorf("logged %q", lines)
	}
}

// TestStalledRunLogs: a run stopped past its deadline (SIGSTOP, or a
// machine too loaded to schedule it) exits 1 at once when it can run
// again, and still says why, once.
func TestStalledRunLogs(t *testing.T) {
	hung, accepted := hungPeer(t)
	for i := 0; i < 5; i++ {
		c := newCmd(t)
		x := c.command("--timeout", "300ms", hung)
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "connection", accepted) // stopped while waiting for the answer
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
		if lines := c.log.lines(t); len(lines) != 1 || !strings.HasPrefix(lines[0], "timeout: ") {
			t.Errorf("run %d logged %q, want one timeout line", i, lines)
		}
	}
}

// TestProcessDeadline: the whole process, start-up and exit included, is
// gone shortly after --timeout, whatever the peer does.
func TestProcessDeadline(t *testing.T) {
	hung, _ := hungPeer(t)
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
	msgs := c.log.raw(t)
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams", len(msgs))
	}
	msg := msgs[0]
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
	needRoot(t)
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
	if lines := c.log.lines(t); len(lines) != 3 {
		t.Errorf("--no-state logged %d lines for 3 runs: %q", len(lines), lines)
	}
	if _, err := os.Stat(c.stateDir); err == nil {
		t.Error("--no-state created a state directory")
	}
}

// TestScriptUser runs the check as an unprivileged user, as keepalived's
// script_user does (umask 0177 included), with the default state
// directory, in a mount namespace whose /run is the test's own: it keeps
// its state in /run/patroni-vip-check/nobody, made by root as the packages'
// tmpfiles.d would, and de-duplicates as root's does. Another user cannot
// take that directory first, and without it the check says how to make it.
func TestScriptUser(t *testing.T) {
	needRoot(t)
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
	script := `set -e
mount -t tmpfs -o mode=0755 pvc-unit-run /run
mkdir -m 0711 /run/patroni-vip-check
as() { uid=$1; shift; setpriv --reuid=$uid --regid=$uid --clear-groups sh -c 'umask 0177; exec "$@"' sh "$@"; }
# Another user cannot make nobody's directory first.
if as 12345 mkdir /run/patroni-vip-check/nobody 2>/dev/null; then echo "PRE-EMPTED"; exit 0; fi
# Without its directory the check says how to make it.
as 65534 "$BIN" --log stderr "$URL" 2>&1 || true
install -d -m 0700 -o 65534 -g 65534 /run/patroni-vip-check/nobody
for i in 1 2 3 4 5 6 7 8 9 10; do
	as 65534 "$BIN" --log syslog --log-socket "$SOCK" "$URL" || echo "exit $?"
done
stat -c '%u %a' /run/patroni-vip-check/nobody
ls /run/patroni-vip-check/nobody
`
	x := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	x.Env = append(os.Environ(), "BIN="+bin, "URL="+p.URL+"/primary", "SOCK="+c.log.path)
	out, err := x.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := string(out)
	if strings.Contains(got, "PRE-EMPTED") {
		t.Fatal("another user created nobody's state directory")
	}
	if !strings.Contains(got, `only root can create it: add "d /run/patroni-vip-check/nobody 0700 nobody nobody -"`) {
		t.Errorf("without its directory, the check does not say how to make it:\n%s", got)
	}
	if strings.Count(got, "exit 1") != 10 {
		t.Errorf("10 runs of a replica did not all exit 1:\n%s", got)
	}
	if !strings.Contains(got, "65534 700\n") || !regexp.MustCompile(`(?m)^127\.0\.0\.1_\d+_primary-[0-9a-f]{16}\.state$`).MatchString(got) {
		t.Errorf("the state directory or its file:\n%s", got)
	}
	if lines := c.log.lines(t); len(lines) != 1 {
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
// answers, until the test ends, and a channel that receives each
// connection as it is accepted.
func hungPeer(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 100)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	return "http://" + ln.Addr().String() + "/primary", accepted
}

// waitFor waits for an event the test needs before it acts.
func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

// TestIntervalIgnored: a check told keepalived's interval (--interval, as
// packaging/keepalived-2.3.conf passes it) says so when keepalived runs it
// far less often, as keepalived before 2.3.2 does with a fractional
// interval; at the pace it was told, it says nothing.
func TestIntervalIgnored(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	for _, tc := range []struct {
		name  string
		pace  time.Duration
		warns bool
	}{
		{"runs at the interval", 20 * time.Millisecond, false},
		{"runs five times slower", 100 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCmd(t)
			for i := 0; i < 1+cadenceRuns+5; i++ {
				start := time.Now()
				c.mustExit(1, "--interval", "20ms", p.URL+"/primary")
				time.Sleep(tc.pace - time.Since(start)) // keepalived's schedule
			}
			lines := c.log.lines(t)
			warned := 0
			for _, l := range lines {
				if strings.Contains(l, "keepalived runs this check every") {
					warned++
					if !strings.Contains(l, "not every 20ms (--interval): keepalived before 2.3.2 ignores a fractional interval") {
						t.Errorf("warning %q", l)
					}
				}
			}
			if want := map[bool]int{false: 0, true: 1}[tc.warns]; warned != want || len(lines) != 1+want {
				t.Errorf("%d warnings in %q, want %d", warned, lines, want)
			}
		})
	}
}
