package main

// The track file has one keeper, and nothing planted at its path or beside
// it can turn the watcher's writes against root or stop the loop.

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileEvents records what happens to one file of a directory: every
// creation, write, rename, removal or change of attributes, as inotify
// reports it.
type fileEvents struct {
	fd   int
	name string
}

func watchFile(t *testing.T, path string) *fileEvents {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	mask := uint32(unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ATTRIB)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		t.Fatal(err)
	}
	return &fileEvents{fd: fd, name: filepath.Base(path)}
}

// since returns the events on the file since the last call.
func (f *fileEvents) since() []string {
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(f.fd, buf)
		if err != nil || n <= 0 {
			return out
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			if name == f.name {
				out = append(out, strconv.FormatUint(uint64(ev.Mask), 16))
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// TestWatchOneKeeper: a second watcher of the same track file, whatever it
// is (a person's -v, a mistyped flag, another URL), never touches the file:
// it exits 1 with one line that names the keeper's PID and says how to
// watch by hand; --print watches by hand without touching it.
func TestWatchOneKeeper(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	replica := newPatroni(503, "replica")
	defer replica.Close()
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	events := watchFile(t, w.track)
	pid := strconv.Itoa(w.x.Process.Pid)
	for _, args := range [][]string{
		{"-v", p.URL + "/primary"},
		{"--log", "stderr", replica.URL + "/primary"},
		{"--interval", "1ms"},
		{"--bogus", p.URL + "/primary"},
	} {
		x := exec.Command(c.bin, append([]string{"watch", "--track-file", w.track}, args...)...)
		var stderr bytes.Buffer
		x.Stderr = &stderr
		err := x.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("second watcher %q: %v, want exit 1", args, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "patroni-vip-check: error: ") {
			t.Errorf("second watcher %q said %q, want one error line", args, stderr.String())
		}
		if args[0] != "--interval" && args[0] != "--bogus" && (!strings.Contains(lines[0], "kept by process "+pid) || !strings.Contains(lines[0], "watch --print")) {
			t.Errorf("second watcher %q said %q, want the keeper's PID %s and the hint", args, lines[0], pid)
		}
	}

	// By hand: the verdicts on stdout, the file untouched, Ctrl-C ends it.
	x := exec.Command(c.bin, "watch", "--print", "--interval", "20ms", replica.URL+"/primary")
	out, err := x.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	defer bound(x)()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if _, msg, _ := strings.Cut(line, " "); !strings.HasPrefix(msg, "not primary: 503 from "+replica.URL) {
		t.Errorf("--print printed %q", line)
	}
	x.Process.Signal(syscall.SIGINT)
	if err := x.Wait(); err != nil {
		t.Errorf("--print after SIGINT: %v, want exit 0", err)
	}

	p.waitPolls(t, 2) // the keeper's polls go on
	if ev := events.since(); len(ev) > 0 {
		t.Errorf("the track file was touched by another process than its keeper: inotify events %q", ev)
	}
	if v := w.value(); v != "1" {
		t.Errorf("track file %q, want the keeper's 1", v)
	}
}

// TestWatchRelease: the unit's ExecStopPost (watch --release) leaves the
// file of a keeper that runs, and removes a stale 1 once it is gone, even
// with flags that do not parse.
func TestWatchRelease(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	release := func(extra ...string) string {
		t.Helper()
		out, err := exec.Command(c.bin, append([]string{"watch", "--release", "--track-file", w.track}, extra...)...).CombinedOutput()
		if err != nil {
			t.Errorf("watch --release %q: %v: %s", extra, err, out)
		}
		return string(out)
	}
	if out := release(); !strings.Contains(out, "kept by process "+strconv.Itoa(w.x.Process.Pid)) || !strings.Contains(out, "left to it") {
		t.Errorf("--release beside a keeper said %q", out)
	}
	if v := w.value(); v != "1" {
		t.Errorf("--release beside a keeper: track file %q, want its 1", v)
	}
	w.x.Process.Kill()
	w.x.Wait()
	if v := w.value(); v != "1" {
		t.Fatalf("after kill -9 the track file says %q; the test needs the stale 1", v)
	}
	release("--bogus", "--interval", "1ms")
	if _, err := os.Lstat(w.track); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after --release the track file is still there (%v)", err)
	}
}

// TestWatchHostileTrackPath: what is planted at the track path or at a
// temporary name is replaced, never written through, and never blocks the
// loop (a FIFO with no writer would block an open for ever).
func TestWatchHostileTrackPath(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	victim := filepath.Join(t.TempDir(), "victim")
	for _, plant := range []struct {
		name  string
		plant func(track string) error
	}{
		{"symlink at the track path", func(track string) error { return os.Symlink(victim, track) }},
		{"symlink at the old temporary name", func(track string) error {
			return os.Symlink(victim, filepath.Join(filepath.Dir(track), ".eligible.tmp"))
		}},
		{"FIFO at the track path", func(track string) error { return unix.Mkfifo(track, 0o644) }},
		{"stale temporary files", func(track string) error {
			return os.WriteFile(filepath.Join(filepath.Dir(track), ".eligible.123456.tmp"), []byte("1\n"), 0o644)
		}},
	} {
		t.Run(plant.name, func(t *testing.T) {
			os.WriteFile(victim, []byte("victim\n"), 0o644)
			dir := filepath.Join(t.TempDir(), "track")
			os.Mkdir(dir, 0o755)
			track := filepath.Join(dir, "eligible")
			if err := plant.plant(track); err != nil {
				t.Fatal(err)
			}
			w := startWatchAt(t, c, track, nil, nil, p.URL+"/primary")
			w.await("1", 5*time.Second)
			if code := w.signal(syscall.SIGTERM); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			if b, _ := os.ReadFile(victim); string(b) != "victim\n" {
				t.Errorf("the victim says %q: written through a planted link", b)
			}
			fi, err := os.Lstat(track)
			if err != nil || !fi.Mode().IsRegular() {
				t.Errorf("the track path is %v (%v), want a regular file", fi.Mode(), err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "eligible" && e.Name() != "eligible.lock" {
					t.Errorf("left in the track directory: %s", e.Name())
				}
			}
		})
	}
}

// TestWatchTrackPathDirectory: a directory at the track path cannot be
// replaced; the watcher says so once, keeps polling, and still stops at once.
func TestWatchTrackPathDirectory(t *testing.T) {
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	dir := filepath.Join(t.TempDir(), "track")
	track := filepath.Join(dir, "eligible")
	if err := os.MkdirAll(track, 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWatchAt(t, c, track, nil, nil, p.URL+"/primary")
	defer bound(w.x)()
	c.log.waitFor(t, "track file "+track+": ")
	p.waitPolls(t, 3)
	if code := w.signal(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	n := 0
	for _, l := range c.log.lines(t) {
		if strings.HasPrefix(l, "track file "+track+": ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lines about the track file, want 1: %q", n, c.log.lines(t))
	}
}

// TestWatchTextfileReadOnly: a textfile that cannot be written is said
// once, with how to let the unit write it.
func TestWatchTextfileReadOnly(t *testing.T) {
	needRoot(t)
	p := newPatroni(200, "master")
	defer p.Close()
	c := newCmd(t)
	ro := mountTmpfs(t, "ro,size=64k")
	w := startWatch(t, c, nil, "--textfile", filepath.Join(ro, "pvc.prom"), p.URL+"/primary")
	w.await("1", 5*time.Second)
	line := c.log.waitFor(t, "textfile ")
	p.waitPolls(t, 3)
	w.signal(syscall.SIGTERM)
	n := 0
	for _, l := range c.log.lines(t) {
		if strings.HasPrefix(l, "textfile ") {
			n++
		}
	}
	if n != 1 || !strings.Contains(line, "read-only file system") || !strings.Contains(line, "ReadWritePaths=") {
		t.Errorf("%d lines about the textfile, the first %q; want one, with the unit's fix", n, line)
	}
}
