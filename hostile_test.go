package main

// The command against hostile hosts and peers: a full or read-only state
// file system, a stalled or missing log daemon, a peer whose answer holds
// control characters, a password in the URL, signals at any moment, a
// full or closed stderr, a run stopped past its deadline.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
)

// mountTmpfs mounts a tmpfs with opts on a new directory, unmounted when
// the test ends.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "pvc-unit-state", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillUp writes to dir until it has no space or no inodes left.
func fillUp(t *testing.T, dir string, inodes bool) {
	t.Helper()
	for i := 0; i < 1<<20; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("filler-%d", i)))
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
		if !inodes {
			_, err = f.Write(make([]byte, 1<<20))
		}
		f.Close()
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
	}
	t.Fatal("the file system never filled")
}

// TestChangeLoggedWhenStateCannotBeSaved: a promotion whose state cannot
// be saved is logged, and so is the demotion that follows, on a state file
// system that is full of data, out of inodes, or read-only.
func TestChangeLoggedWhenStateCannotBeSaved(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
	}{
		{"no space", func(t *testing.T, dir string) { fillUp(t, dir, false) }},
		{"no inodes", func(t *testing.T, dir string) { fillUp(t, dir, true) }},
		{"read-only", func(t *testing.T, dir string) {
			if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
				t.Fatalf("remount: %v: %s", err, out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPatroni(503, "replica")
			defer p.Close()
			c := newCmd(t)
			fs := mountTmpfs(t, "size=256k,nr_inodes=64,mode=0700")
			c.stateDir = filepath.Join(fs, "state")
			c.mustExit(1, p.URL+"/primary")
			tc.spoil(t, fs)
			p.set(200, "master")
			c.mustExit(0, p.URL+"/primary")
			p.set(503, "replica")
			c.mustExit(1, p.URL+"/primary")
			lines := c.log.lines(t)
			if len(lines) < 3 || !strings.HasPrefix(lines[0], "not primary: ") {
				t.Fatalf("logged %q, want the first state, the promotion and the demotion", lines)
			}
			if !strings.HasPrefix(lines[1], "primary: 200 from ") {
				t.Errorf("promotion logged as %q", lines[1])
			}
			if !strings.HasPrefix(lines[2], "not primary: 503 from ") {
				t.Errorf("the demotion after an unsaved promotion logged as %q", lines[2])
			}
			for _, l := range lines[1:] {
				if !strings.Contains(l, "[") {
					t.Errorf("%q does not say what is wrong with the state", l)
				}
			}
		})
	}
}

// TestChangeLoggedWhenLogStalls: a promotion whose line the log daemon
// does not take (it has stopped reading) is not saved, so the next run,
// once the daemon reads again, logs it.
func TestChangeLoggedWhenLogStalls(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	c.mustExit(1, p.URL+"/primary")
	resume := c.log.pause()
	fill(t, c.log.path)
	p.set(200, "master")
	c.mustExit(0, "--timeout", "200ms", p.URL+"/primary")
	resume()
	c.log.sync(t)
	c.log.mu.Lock()
	c.log.msgs = nil // what the stalled socket held: the filler and the late line
	c.log.mu.Unlock()
	c.mustExit(0, p.URL+"/primary")
	c.mustExit(0, p.URL+"/primary")
	lines := c.log.lines(t)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "primary: 200 from ") || !strings.Contains(lines[0], "was not primary") {
		t.Errorf("after the daemon came back, logged %q, want the promotion once", lines)
	}
}

// TestChangeLoggedWhenLogMissing: with --log syslog and no daemon at the
// socket, the line reaches stderr only, which is not the log: the next
// run with a daemon there logs the change.
func TestChangeLoggedWhenLogMissing(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	c.mustExit(1, p.URL+"/primary")
	missing := filepath.Join(t.TempDir(), "missing.sock")
	p.set(200, "master")
	x := exec.Command(c.bin, "--log", "syslog", "--log-socket", missing, "--state-dir", c.stateDir, p.URL+"/primary")
	out, err := x.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "primary: 200") {
		t.Fatalf("with no daemon: %v, stderr %q", err, out)
	}
	c.mustExit(0, p.URL+"/primary")
	lines := c.log.lines(t)
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "primary: 200 from ") {
		t.Errorf("logged %q, want the first state and the promotion", lines)
	}
}

// forged is a role a hostile peer might send: a newline, a line that
// looks like sshd's, an ANSI erase.
const forged = "replica\n" + `Nov  5 09:04:05 db1 sshd[1]: Accepted password for root from 198.51.100.9 port 22 ssh2` + "\x1b[2K\r"

// peerSaying answers every request with status and a Patroni body whose
// role is role (any bytes, JSON-encoded).
func peerSaying(t *testing.T, status int, role string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"state": "running", "role": role, "timeline": 4,
		"patroni": map[string]string{"version": "3.0.2\n\x1b[31m", "scope": "demo"}})
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Start()
	t.Cleanup(s.Close)
	return s.URL + "/primary"
}

// TestNoForgedLines: whatever the peer puts in its answer, every log line,
// journal field and -v line is one line, with no terminal escape.
func TestNoForgedLines(t *testing.T) {
	url := peerSaying(t, 503, forged)
	c := newCmd(t)
	code, stderr := c.run("--log", "stderr", "--no-state", "-v", url)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "patroni-vip-check: ") || strings.ContainsAny(l, "\x1b\r") {
			t.Errorf("stderr line %q", l)
		}
	}
	if strings.Contains(stderr, "\nNov  5") {
		t.Errorf("a forged line on stderr:\n%s", stderr)
	}
	c.mustExit(1, "--no-state", url)
	for _, d := range c.log.raw(t) {
		if strings.ContainsAny(d, "\n\r\x1b") {
			t.Errorf("syslog datagram %q", d)
		}
	}
	x := exec.Command(c.bin, "--log", "journal", "--log-socket", c.log.path, "--no-state", url)
	x.Run()
	msgs := c.log.raw(t)
	journal := msgs[len(msgs)-1]
	for _, field := range strings.Split(strings.TrimSuffix(journal, "\n"), "\n") {
		if !strings.Contains(field, "=") || strings.ContainsAny(field, "\r\x1b") {
			t.Errorf("journal field %q", field)
		}
	}
	if !strings.Contains(journal, `ROLE=replica\nNov  5 09:04:05 db1 sshd[1]: Accepted password`) {
		t.Errorf("the role is not spelled out in the journal:\n%s", journal)
	}
}

// TestHugeRoleReachesTheJournal: a 60 KB role is cut, so the datagram is
// taken and the line does not fall back to stderr.
func TestHugeRoleReachesTheJournal(t *testing.T) {
	url := peerSaying(t, 503, strings.Repeat("r", 60<<10))
	c := newCmd(t)
	x := exec.Command(c.bin, "--log", "journal", "--log-socket", c.log.path, "--no-state", url)
	var stderr bytes.Buffer
	x.Stderr = &stderr
	x.Run()
	msgs := c.log.raw(t)
	if len(msgs) != 1 || stderr.Len() != 0 {
		t.Fatalf("%d datagrams; stderr %q", len(msgs), stderr.String())
	}
	if len(msgs[0]) > 8<<10 {
		t.Errorf("a datagram of %d bytes", len(msgs[0]))
	}
}

// TestPasswordAppearsNowhere: a password in the URL is in no message, no
// journal field, no -v line, no state file name, no error.
func TestPasswordAppearsNowhere(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	secret := "S3CRETpw"
	url := strings.Replace(p.URL, "http://", "http://keepalived:"+secret+"@", 1) + "/primary"
	c := newCmd(t)
	var seen []string
	for _, args := range [][]string{
		{"--log", "journal", "--log-socket", c.log.path, "--state-dir", c.stateDir, "-v", url},
		{"--log", "journal", "--log-socket", c.log.path, "--state-dir", c.stateDir, url, "--bogus"},
		{"--log", "syslog", "--log-socket", c.log.path, "--state-dir", c.stateDir, "--timeout", "abc", url},
		{"--log", "journal", "--log-socket", c.log.path, "--state-dir", c.stateDir, strings.Replace(url, "/primary", ":99999/primary", 1)},
		{"--log", "journal", "--log-socket", c.log.path, "--state-dir", c.stateDir, strings.Replace(url, secret, "S3C/RETpw", 1)},
		// Bad arguments that quote the URL: a second positional, a flag
		// made of it.
		{"--log", "syslog", "--log-socket", c.log.path, "--state-dir", c.stateDir, url, "extra"},
		{"--log", "stderr", url, "extra"},
		{"--log", "stderr", "---" + url},
		{"watch", "--log", "syslog", "--log-socket", c.log.path, url, "extra"},
		{"watch", "--log", "stderr", "--print", url, "extra"},
	} {
		x := exec.Command(c.bin, args...)
		out, _ := x.CombinedOutput()
		seen = append(seen, string(out))
	}
	seen = append(seen, c.log.raw(t)...)
	entries, _ := os.ReadDir(c.stateDir)
	for _, e := range entries {
		seen = append(seen, e.Name())
	}
	// Two of the URLs are the same once redacted, and share a state.
	if len(c.log.raw(t)) < 4 {
		t.Errorf("only %d lines logged", len(c.log.raw(t)))
	}
	for _, s := range seen {
		for _, part := range []string{secret, "S3C", "RETpw"} {
			if strings.Contains(s, part) {
				t.Errorf("the password shows in %q", s)
			}
		}
	}
}

// startedMarker is the signal that catchSignals ignores last (one of the
// two it sets by hand), so that seeing it ignored means every disposition
// is in place. Not SIGHUP: nohup and some supervisors start processes with
// SIGHUP ignored, children inherit that across exec, and a child would
// look started before its main ran.
const startedMarker = 34

// started waits until the process has installed its signal dispositions
// (the signals it ignores show in /proc/PID/status), the earliest moment
// Go code of the program has run.
func started(pid int) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if ignores(pid, startedMarker) {
			return true
		}
		time.Sleep(20 * time.Microsecond)
	}
	return false
}

// ignores reads whether process pid ("self" for 0) ignores signal sig.
func ignores(pid int, sig int) bool { return sigMask(pid, "SigIgn", sig) }

// sigMask reads whether sig is in the mask field (SigIgn, SigCgt) of
// process pid ("self" for 0).
func sigMask(pid int, field string, sig int) bool {
	who := "self"
	if pid != 0 {
		who = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + who + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, field+":\t"); ok {
			mask, _ := strconv.ParseUint(hex, 16, 64)
			return mask&(1<<(sig-1)) != 0
		}
	}
	return false
}

// catching waits until process pid catches SIGTERM: a single run catches
// it from onceCatchAfter on, and ignores it before.
func catching(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !sigMask(pid, "SigCgt", int(syscall.SIGTERM)); {
		if time.Now().After(deadline) {
			t.Fatalf("process %d does not catch SIGTERM after 5 s", pid)
		}
		time.Sleep(100 * time.Microsecond) // waits for the handler, measures nothing
	}
}

// needMarkerFree fails a test whose children would inherit the marker
// ignored, and so look started at exec.
func needMarkerFree(t *testing.T) {
	t.Helper()
	if ignores(0, startedMarker) {
		t.Fatalf("this test process ignores signal %d, and its children inherit that: run it from a process that does not", startedMarker)
	}
}

// TestEverySignalExitsZeroOrOne: whatever signal arrives, at whatever
// moment once the program runs, the exit status is 0 or 1, on the normal
// path and on the bad-flags path. SIGKILL and the stop signals are not
// for a process to handle.
func TestEverySignalExitsZeroOrOne(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(15 * time.Millisecond)
		w.WriteHeader(200)
		io.WriteString(w, `{"state":"running","role":"master"}`)
	}))
	defer slow.Close()
	needMarkerFree(t)
	c := newCmd(t)
	skip := map[syscall.Signal]bool{syscall.SIGKILL: true, syscall.SIGSTOP: true, syscall.SIGTSTP: true,
		syscall.SIGTTIN: true, syscall.SIGTTOU: true, syscall.SIGCONT: true}
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if skip[sig] {
			continue
		}
		runs := [][]string{
			{"--no-state", slow.URL + "/primary"},
			{"--no-state", slow.URL + "/primary"},
			{"--no-state", "--bogus"},
		}
		if raceEnabled {
			// The race runtime starts the command some 50 times slower:
			// one run per signal there, every run without -race.
			runs = runs[:1]
		}
		for i, args := range runs {
			x := c.command(args...)
			if err := x.Start(); err != nil {
				t.Fatal(err)
			}
			defer bound(x)()
			ok := started(x.Process.Pid)
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			x.Process.Signal(sig)
			err := x.Wait()
			if !ok && x.ProcessState.ExitCode() < 0 {
				t.Fatalf("signal %d: the process ended before it could be seen starting: %v", sig, err)
			}
			ws := x.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() || !(ws.ExitStatus() == 0 || ws.ExitStatus() == 1) {
				t.Errorf("signal %d (%v), run %d: %v", sig, sig, i, x.ProcessState)
			}
		}
	}
}

// TestClosedStderr: with stderr a pipe nobody reads any more (SIGPIPE on
// each write), a healthy primary is still eligible.
func TestClosedStderr(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	x := exec.Command(c.bin, "-v", "--no-state", "--log", "stderr", p.URL+"/primary")
	x.Stderr = w
	err = x.Run()
	w.Close()
	if err != nil {
		t.Errorf("healthy primary, stderr closed: %v", err)
	}
}

// TestFullStderr: a stderr pipe that is full never holds the process
// past its deadline: not on the bad-flags path, not with -v (which blocks
// before the request: exit 1, could not tell), not with the line itself
// going to stderr (the verdict is known: exit 0).
func TestFullStderr(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--log", "stderr", "--timeout", "bogus", p.URL + "/primary"}, 1},
		{[]string{"--log", "none", "--timeout", "300ms", "-v", "--no-state", p.URL + "/primary"}, 1},
		{[]string{"--log", "stderr", "--timeout", "300ms", "--no-state", p.URL + "/primary"}, 0},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		fd := int(w.Fd())
		unix.SetNonblock(fd, true)
		for {
			if _, err := unix.Write(fd, make([]byte, 4096)); err != nil {
				break
			}
		}
		unix.SetNonblock(fd, false)
		x := exec.Command(c.bin, tc.args...)
		x.Stderr = w
		start := time.Now()
		err = x.Start()
		if err == nil {
			defer bound(x)()
			err = x.Wait()
		}
		took := time.Since(start)
		r.Close()
		w.Close()
		if got := x.ProcessState.ExitCode(); got != tc.want {
			t.Errorf("%q with a full stderr: %v, want exit %d", tc.args, err, tc.want)
		}
		if !raceEnabled && took > cmdline.DefaultTimeout+grace+200*time.Millisecond {
			t.Errorf("%q with a full stderr took %v", tc.args, took)
		}
	}
}

// TestExitAgreesWithLine: a run stopped and continued past its deadline,
// at any moment, exits with the status its line says: 0 with "primary",
// 1 with anything else. Both outcomes must be seen (a run stopped before
// its verdict, one stopped after), a few times each; stop moments are
// random, so runs go on until they are.
func TestExitAgreesWithLine(t *testing.T) {
	needMarkerFree(t)
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	seen := map[bool]int{} // primary or not
	for i := 0; i < 300 && (seen[true] < 3 || seen[false] < 3); i++ {
		before := len(c.log.raw(t))
		x := c.command("--no-state", "--timeout", "60ms", p.URL+"/primary")
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		defer bound(x)()
		started(x.Process.Pid)
		time.Sleep(time.Duration(rand.IntN(6000)) * time.Microsecond)
		x.Process.Signal(syscall.SIGSTOP)
		time.Sleep(150 * time.Millisecond) // past the deadline while stopped
		x.Process.Signal(syscall.SIGCONT)
		x.Wait()
		code := x.ProcessState.ExitCode()
		msgs := c.log.lines(t)[before:]
		if len(msgs) != 1 {
			t.Errorf("run %d: exit %d with lines %q", i, code, msgs)
			continue
		}
		primary := strings.HasPrefix(msgs[0], "primary: ")
		if primary != (code == 0) {
			t.Errorf("run %d: exit %d, but logged %q", i, code, msgs[0])
		}
		seen[primary]++
	}
	if seen[true] < 3 || seen[false] < 3 {
		t.Errorf("outcomes seen: %d primary, %d other; want both, 3 times each", seen[true], seen[false])
	}
}

// bound kills a process the test started if it is still there after 10 s,
// so that a process that hangs fails its test rather than hangs it too.
func bound(x *exec.Cmd) (stop func()) {
	t := time.AfterFunc(10*time.Second, func() { x.Process.Kill() })
	return func() { t.Stop() }
}

// fill sends datagrams to a socket nobody reads until it takes no more.
func fill(t *testing.T, path string) {
	t.Helper()
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 1000)
	for i := 0; i < 1e6; i++ {
		conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := conn.Write(msg); err != nil {
			return
		}
	}
	t.Fatal("the socket never filled")
}

// TestClosedStdio: a parent that left stdin, stdout and stderr closed
// does not make the next file opened take their place (a line meant for
// stderr would land in the state file): the Go runtime opens /dev/null on
// them before main (since Go 1.22), which this test keeps true.
func TestClosedStdio(t *testing.T) {
	hung, accepted := hungPeer(t)
	c := newCmd(t)
	x := exec.Command("sh", "-c", `exec "$@" <&- >&- 2>&-`, "sh", c.bin, "-v", "--log", "stderr", "--state-dir", c.stateDir, hung)
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	defer bound(x)()
	waitFor(t, "connection", accepted)
	// sh execs the check in place: its PID is the check's.
	for fd := 0; fd <= 2; fd++ {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", x.Process.Pid, fd))
		if err != nil || target != "/dev/null" {
			t.Errorf("fd %d is %q (%v), want /dev/null", fd, target, err)
		}
	}
	catching(t, x.Process.Pid)
	x.Process.Signal(syscall.SIGTERM)
	if err := x.Wait(); x.ProcessState.ExitCode() != 1 {
		t.Errorf("after SIGTERM: %v", err)
	}
	b, err := os.ReadFile(stateFile(t, c.stateDir))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := ratelimit.Decode(b); err != nil || s.Class != "interrupted" {
		t.Errorf("state file %q: %v", b, err)
	}
}
