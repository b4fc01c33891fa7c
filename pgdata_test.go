package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inotifyEvent is one event as the kernel writes it.
func inotifyEvent(mask uint32, name string) []byte {
	var b bytes.Buffer
	padded := len(name)
	if name != "" {
		padded = (len(name) + 1 + 15) / 16 * 16
	}
	binary.Write(&b, binary.NativeEndian, unix.InotifyEvent{Wd: 1, Mask: mask, Len: uint32(padded)})
	b.WriteString(name)
	b.Write(make([]byte, padded-len(name)))
	return b.Bytes()
}

// TestPGWake: which of the data directory's events make the watch ask at
// once: PostgreSQL's role and life files, lost events, the directory
// going; not the rest of what PostgreSQL writes.
func TestPGWake(t *testing.T) {
	for _, tc := range []struct {
		events     [][]byte
		wake, gone bool
	}{
		{[][]byte{inotifyEvent(unix.IN_CREATE, "promote")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_DELETE, "standby.signal")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_CLOSE_WRITE, "standby.signal")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_CREATE, "recovery.signal")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_MOVED_TO, "postmaster.pid")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_CLOSE_WRITE, "postmaster.opts"), inotifyEvent(unix.IN_CREATE, "pg_wal"),
			inotifyEvent(unix.IN_CLOSE_WRITE, "postgresql.auto.conf"), inotifyEvent(unix.IN_CREATE, "promoted")}, false, false},
		{[][]byte{inotifyEvent(unix.IN_CREATE, "pg_wal"), inotifyEvent(unix.IN_DELETE, "postmaster.pid")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_Q_OVERFLOW, "")}, true, false},
		{[][]byte{inotifyEvent(unix.IN_DELETE_SELF, ""), inotifyEvent(unix.IN_IGNORED, "")}, true, true},
	} {
		wake, gone := pgWake(bytes.Join(tc.events, nil))
		if wake != tc.wake || gone != tc.gone {
			t.Errorf("%q: wake %v gone %v, want %v %v", tc.events, wake, gone, tc.wake, tc.gone)
		}
	}
}

// FuzzPGWake: whatever the buffer holds, reading it never goes past its end.
func FuzzPGWake(f *testing.F) {
	f.Add(inotifyEvent(unix.IN_CREATE, "promote"))
	f.Add(append(inotifyEvent(unix.IN_DELETE_SELF, ""), 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) { pgWake(b) })
}

// TestLoopWakesOnPGFiles: with --pgdata, a promotion's files start a poll
// at once and a burst every burstEvery until the verdict changes; then
// the watch polls every --interval again. A data directory removed (a
// reinit) is said, polled around, and watched again once it is back.
func TestLoopWakesOnPGFiles(t *testing.T) {
	pgdata := filepath.Join(t.TempDir(), "pgdata")
	if err := os.Mkdir(pgdata, 0o700); err != nil {
		t.Fatal(err)
	}
	h := newLoop(t, "--pgdata", pgdata, "--interval", "1s")
	h.run()
	start := h.poll()
	h.answers <- replica()
	h.clk.waitTimer(t, start.Add(time.Second))
	h.log.next(t)

	// pg_ctl promote: a poll at once, the clock not moved.
	if err := os.WriteFile(filepath.Join(pgdata, "promote"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if at := h.poll(); !at.Equal(start) {
		t.Fatalf("the poll after promote came %v after the last, want at once", at.Sub(start))
	}
	// Patroni still says replica: again every burstEvery.
	h.answers <- replica()
	h.settleWith(replica(), start.Add(burstEvery))
	h.clk.Advance(burstEvery)
	at := h.poll()
	h.answers <- primary()
	// The verdict changed: back to --interval.
	h.settleWith(primary(), at.Add(time.Second))
	h.waitValue("1")
	if l := h.log.next(t); !strings.HasPrefix(l, "primary: 200") {
		t.Errorf("line %q", l)
	}

	// A reinit: the directory goes, the watch says so, and watches the new
	// one once it is there.
	if err := os.RemoveAll(pgdata); err != nil {
		t.Fatal(err)
	}
	at = h.poll() // woken by the directory going
	h.answers <- primary()
	h.settleWith(primary(), at.Add(burstEvery))
	h.clk.Advance(burstEvery)
	at = h.poll()
	if l := h.log.next(t); !strings.HasPrefix(l, "data directory "+pgdata+": cannot watch it (no such file or directory)") {
		t.Errorf("line %q, want the missing data directory", l)
	}
	if err := os.Mkdir(pgdata, 0o700); err != nil {
		t.Fatal(err)
	}
	// Still in the burst the directory's going began: the next poll
	// watches it again.
	h.answers <- primary()
	h.settleWith(primary(), at.Add(burstEvery))
	h.clk.Advance(burstEvery)
	h.poll()
	if l := h.log.next(t); l != "data directory "+pgdata+": fine again" {
		t.Errorf("line %q, want the data directory watched again", l)
	}
}

// TestWatchPGDataUnreadable: a data directory the watcher may not read
// (without CAP_DAC_READ_SEARCH, postgres's 0700), or may not even reach (a
// 0700 directory of postgres above it), is said once, with why, and the
// watch follows Patroni on --interval alone.
func TestWatchPGDataUnreadable(t *testing.T) {
	needRoot(t)
	for _, closed := range []string{"the directory", "its parent"} {
		t.Run(closed, func(t *testing.T) { watchPGDataUnreadable(t, closed == "its parent") })
	}
}

func watchPGDataUnreadable(t *testing.T, parentClosed bool) {
	p := newPatroni(503, "replica")
	defer p.Close()
	parent := filepath.Join(t.TempDir(), "pg")
	pgdata := filepath.Join(parent, "data")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(pgdata, 0o700); err != nil {
		t.Fatal(err)
	}
	closed := []string{pgdata}
	if parentClosed {
		closed = append(closed, parent)
	}
	for _, d := range closed {
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	c := newCmd(t)
	// Root without the capabilities that pass over file modes.
	w := startWatchAt(t, c, filepath.Join(t.TempDir(), "eligible"),
		[]string{"setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"}, nil,
		"--pgdata", pgdata, p.URL+"/primary")
	defer bound(w.x)()
	line := c.log.waitFor(t, "data directory ")
	if !strings.Contains(line, "permission denied: the unit needs CAP_DAC_READ_SEARCH") || !strings.Contains(line, "every --interval only") {
		t.Errorf("line %q, want why the data directory cannot be watched", line)
	}
	w.await("0", 5*time.Second)
	p.set(200, "master")
	w.await("1", 5*time.Second)
	if code := w.signal(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
	n := 0
	for _, l := range c.log.lines(t) {
		if strings.HasPrefix(l, "data directory ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lines about the data directory, want 1", n)
	}
}
