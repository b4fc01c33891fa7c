package main

// patroni-vip-check watch, run as a process: the track file follows
// Patroni, fails closed, and the log says each change once, whatever the
// log socket does.

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watcherProc is a running `patroni-vip-check watch`.
type watcherProc struct {
	t     *testing.T
	c     *cmd
	x     *exec.Cmd
	track string
}

// startWatch starts a watcher of a track file in a directory of its own,
// polling every 20 ms and logging to the test's syslog.
func startWatch(t *testing.T, c *cmd, env []string, args ...string) *watcherProc {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "track")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return startWatchAt(t, c, filepath.Join(dir, "eligible"), nil, env, args...)
}

// startWatchAt is startWatch for the track file path, whatever is there;
// wrap runs the watcher through another command (setpriv...).
func startWatchAt(t *testing.T, c *cmd, track string, wrap, env []string, args ...string) *watcherProc {
	t.Helper()
	w := &watcherProc{t: t, c: c, track: track}
	argv := append(append(append([]string(nil), wrap...), c.bin, "watch", "--interval", "20ms", "--track-file", track,
		"--log", "syslog", "--log-socket", c.log.path), args...)
	w.x = exec.Command(argv[0], argv[1:]...)
	w.x.Env = append(os.Environ(), env...)
	if err := w.x.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.x.ProcessState == nil {
			w.x.Process.Kill()
			w.x.Wait()
		}
	})
	return w
}

// value is what the track file says now: "1", "0", "" if missing.
func (w *watcherProc) value() string {
	b, _ := readRegular(w.track, 16) // never blocks on a FIFO planted there
	return strings.TrimSpace(string(b))
}

// await waits until the track file says want, as keepalived would see it:
// woken by inotify on the file's directory.
func (w *watcherProc) await(want string, within time.Duration) {
	w.t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		w.t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(w.track), unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	buf := make([]byte, 4096)
	for w.value() != want {
		left := time.Until(deadline)
		if left <= 0 {
			w.t.Fatalf("the track file says %q after %v, want %q", w.value(), within, want)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		unix.Read(fd, buf)
	}
}

func (w *watcherProc) signal(sig syscall.Signal) int {
	w.t.Helper()
	w.x.Process.Signal(sig)
	stop := bound(w.x)
	defer stop()
	w.x.Wait()
	return w.x.ProcessState.ExitCode()
}

// TestWatchFollowsPatroni: the file says 1 on a primary, 0 once it is a
// replica, 0 again after SIGTERM; the log says the first state and the
// change, once each.
func TestWatchFollowsPatroni(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	p.set(503, "replica")
	w.await("0", 5*time.Second)
	p.set(200, "primary")
	w.await("1", 5*time.Second)
	p.waitPolls(t, 5) // of an unchanged state: no line
	if code := w.signal(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if v := w.value(); v != "0" {
		t.Errorf("after SIGTERM the track file says %q, want 0", v)
	}
	lines := c.log.lines(t)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "primary: 200") ||
		!strings.HasPrefix(lines[1], "not primary: 503") || !strings.Contains(lines[2], "was not primary for") {
		t.Errorf("logged %q, want the first state and two changes", lines)
	}
}

// TestWatchStopSignals: every signal that asks a watcher to stop (a
// person's SIGINT or SIGHUP, SIGQUIT, and the SIGABRT that a systemd older
// than 240 sends for its watchdog) leaves 0 in the track file and exits 0,
// like SIGTERM.
func TestWatchStopSignals(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGABRT} {
		w := startWatch(t, c, nil, p.URL+"/primary")
		w.await("1", 5*time.Second)
		if code := w.signal(sig); code != 0 {
			t.Errorf("exit %d after %v, want 0", code, sig)
		}
		if v := w.value(); v != "0" {
			t.Errorf("after %v the track file says %q, want 0", sig, v)
		}
	}
}

// TestWatchRepairsTrackFile: a track file deleted or overwritten by
// someone else is written again at the next poll.
func TestWatchRepairsTrackFile(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	os.Remove(w.track)
	w.await("1", time.Second)
	os.WriteFile(w.track, []byte("garbage\n"), 0o644)
	w.await("1", time.Second)
	var names []string
	entries, _ := os.ReadDir(filepath.Dir(w.track))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"eligible", "eligible.lock"}) {
		t.Errorf("the track directory holds %q, want only the track file and its lock", names)
	}
}

// TestWatchFailsClosed: a stale 1 from a killed watcher is 0 at once when
// the next one starts against a hung Patroni, and stays 0; a Patroni that
// is gone gives 0 too.
func TestWatchFailsClosed(t *testing.T) {
	hung, _ := hungPeer(t)
	c := newCmd(t)
	w := startWatch(t, c, nil, "--timeout", "2s", hung)
	os.WriteFile(w.track, []byte("1\n"), 0o644)
	w.await("0", time.Second)
	w.signal(syscall.SIGTERM)

	p := newPatroni(200, "master")
	w = startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	p.Close()
	w.await("0", 5*time.Second)
}

// TestWatchStalledLog: while the log socket has stopped reading, the
// track file still follows Patroni at once; when it reads again, the
// change it missed is logged.
func TestWatchStalledLog(t *testing.T) {
	p := newPatroni(503, "replica")
	defer p.Close()
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("0", 5*time.Second)
	c.log.lines(t) // the first state is in
	resume := c.log.pause()
	fill(t, c.log.path)
	p.set(200, "master")
	start := time.Now()
	w.await("1", 5*time.Second)
	if took := time.Since(start); !raceEnabled && took > 500*time.Millisecond {
		t.Errorf("with a stalled log the track file took %v to follow", took)
	}
	p.set(503, "replica")
	w.await("0", 5*time.Second)
	p.set(200, "master")
	w.await("1", 5*time.Second)
	resume()
	// Every change is logged, none dropped while the log was stalled.
	changes := func() (heads []string) {
		for _, l := range c.log.lines(t) {
			if strings.Contains(l, "; was ") {
				heads = append(heads, strings.SplitN(l, ":", 2)[0])
			}
		}
		return heads
	}
	guard := time.Now().Add(10 * time.Second)
	for len(changes()) < 3 && time.Now().Before(guard) {
		c.log.waitFor(t, "; was ") // and then for the next line, if any
	}
	if got := changes(); !slices.Equal(got, []string{"primary", "not primary", "primary"}) {
		t.Errorf("after the log came back, logged the changes %q, want each of the three", got)
	}
}

// TestWatchNotifiesSystemd: READY=1 once the track file holds the first
// verdict, then WATCHDOG=1 while it runs, STOPPING=1 on SIGTERM.
func TestWatchNotifiesSystemd(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	dir, err := os.MkdirTemp("", "pvc-notify-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newCmd(t)
	w := startWatch(t, c, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=100000"}, p.URL+"/primary")
	read := func() string {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if v := w.value(); v != "1" {
		t.Errorf("READY=1 came with the track file saying %q", v)
	}
	for i := 0; i < 3; i++ {
		if got := read(); got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", got)
		}
	}
	w.x.Process.Signal(syscall.SIGTERM)
	for {
		if got := read(); got == "STOPPING=1" {
			break
		}
	}
	w.x.Wait()
}

// TestWatchTrackDirMissing: without the track file's directory the watcher
// says so, once, and takes the file as soon as the directory is made.
func TestWatchTrackDirMissing(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	dir := filepath.Join(t.TempDir(), "missing")
	w := startWatchAt(t, c, filepath.Join(dir, "eligible"), nil, nil, p.URL+"/primary")
	defer bound(w.x)()
	c.log.waitFor(t, "does not exist")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.await("1", 5*time.Second)
	c.log.waitFor(t, "fine again")
	w.signal(syscall.SIGTERM)
	var about []string
	for _, l := range c.log.lines(t) {
		if strings.HasPrefix(l, "track file "+w.track) {
			about = append(about, l)
		}
	}
	if len(about) != 2 || !strings.Contains(about[0], "must exist before keepalived starts") || !strings.HasSuffix(about[1], ": fine again") {
		t.Errorf("lines about the track file %q, want its missing directory once, then that it is fine", about)
	}
}

// TestWatchTextfile: the node_exporter textfile holds the verdict.
func TestWatchTextfile(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	text := filepath.Join(t.TempDir(), "pvc.prom")
	w := startWatch(t, c, nil, "--textfile", text, p.URL+"/primary")
	w.await("1", 5*time.Second)
	p.set(503, "replica")
	w.await("0", 5*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, _ := os.ReadFile(text)
		s := string(b)
		if strings.Contains(s, "patroni_vip_check_eligible 0\n") && strings.Contains(s, `patroni_vip_check_reason{reason="not-eligible"} 1`) &&
			strings.Contains(s, "patroni_vip_check_transitions_total 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("textfile:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchBadStart: bad flags end the watcher with status 1 and touch
// nothing (it may not be the one that keeps the file; the unit's
// ExecStopPost fails closed for the one that is); a URL that cannot be used
// ends the watcher that keeps the file with status 1 and the file at 0.
func TestWatchBadStart(t *testing.T) {
	c := newCmd(t)
	track := filepath.Join(t.TempDir(), "eligible")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "--track-file", track, "--interval", "1ms"}, "1\n"},
		{[]string{"watch", "--track-file", track, "--log", "none", "ftp://127.0.0.1/primary"}, "0\n"},
	} {
		os.WriteFile(track, []byte("1\n"), 0o644)
		out, err := exec.Command(c.bin, tc.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "patroni-vip-check: error: ") {
			t.Errorf("%q: %v %q", tc.args, err, out)
		}
		if b, _ := os.ReadFile(track); string(b) != tc.want {
			t.Errorf("%q: track file %q after a watcher that could not start, want %q", tc.args, b, tc.want)
		}
	}
}
