package main

// watch --pgdata: the watch wakes when PostgreSQL's own files change, and
// asks Patroni at once. Polling alone makes speed and cost fight: a short
// --interval follows a promotion fast but costs the node a poll (a few ms
// of CPU in Patroni, PostgreSQL and the watcher) several times a second.
// The files tell when to ask: during a switchover, measured with Patroni
// 3.0.2 and PostgreSQL 15, `pg_ctl promote` creates promote on the new
// primary and PostgreSQL deletes standby.signal 7 ms later, 12 ms before
// Patroni says primary; the old primary rewrites postmaster.pid with
// "stopping" 3 ms before Patroni says so, and deletes it 30 ms later; a
// replica following the new leader rewrites standby.signal. These files
// are PostgreSQL's, the same for every DCS and Patroni version.
//
// An event only makes the watch ask sooner: the verdict still comes from
// Patroni's answer, by every rule of a single run. Whatever happens to the
// directory (not there yet, removed and made again by a reinit, not
// readable, inotify's limits), the watch says so and polls on --interval.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// burstEvery and burstFor: after an event the watch asks at once, then
	// every burstEvery while the verdict stays what it was, for burstFor at
	// most: Patroni's answer trails the file by a few to some tens of ms.
	burstEvery = 20 * time.Millisecond
	burstFor   = time.Second
)

// pgFiles are the data directory's files whose changes mean PostgreSQL's
// role or life is changing.
func isPGFile(name string) bool {
	switch name {
	case "promote", "standby.signal", "recovery.signal", "postmaster.pid":
		return true
	}
	return false
}

// pgEvents is what is watched in the data directory: a file made, written
// and closed, moved in or out, or removed; and the directory itself going.
const pgEvents = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// pgWatch watches one data directory with inotify.
type pgWatch struct {
	dir   string
	wake  chan struct{} // one wake-up at most waits
	armed atomic.Bool   // the directory is watched now
	ino   *os.File      // the inotify instance, once made
	id    fileID        // the directory watched
}

func newPGWatch(dir string) *pgWatch {
	return &pgWatch{dir: dir, wake: make(chan struct{}, 1)}
}

// ensure watches the directory if it is not watched: at the start, and
// before each poll while it cannot be (not there yet, removed by a reinit
// and not made again yet). The error says why it cannot.
func (p *pgWatch) ensure() error {
	if p.armed.Load() {
		// A directory removed and made again between two polls is a new
		// one: inotify watched the old inode.
		var st unix.Stat_t
		if unix.Stat(p.dir, &st) == nil && idOf(&st) == p.id {
			return nil
		}
		p.armed.Store(false)
	}
	if p.ino == nil {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return fmt.Errorf("cannot watch it (inotify: %w%s); asking Patroni every --interval only", err, limitHint(err))
		}
		// A non-blocking descriptor in an os.File is read through the
		// runtime's poller, so that Close ends a pending Read.
		p.ino = os.NewFile(uintptr(fd), "inotify")
		go p.read(p.ino)
	}
	var st unix.Stat_t
	if err := unix.Stat(p.dir, &st); errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cannot watch it (%w); asking Patroni every --interval until it is there", err)
	} else if err != nil {
		// A parent it may not search (postgres's 0700 directory above it).
		return fmt.Errorf("cannot watch it (%w%s); asking Patroni every --interval only", err, limitHint(err))
	}
	if _, err := unix.InotifyAddWatch(int(p.ino.Fd()), p.dir, pgEvents); err != nil {
		return fmt.Errorf("cannot watch it (%w%s); asking Patroni every --interval only", err, limitHint(err))
	}
	p.id = idOf(&st)
	p.armed.Store(true)
	return nil
}

// limitHint says which of inotify's limits was reached.
func limitHint(err error) string {
	switch {
	case errors.Is(err, unix.EMFILE):
		return ": too many inotify instances, see fs.inotify.max_user_instances"
	case errors.Is(err, unix.ENOSPC):
		return ": too many inotify watches, see fs.inotify.max_user_watches"
	case errors.Is(err, unix.EACCES):
		return ": the unit needs CAP_DAC_READ_SEARCH to watch a directory of postgres"
	}
	return ""
}

// read turns inotify's events into wake-ups until f is closed.
func (p *pgWatch) read(f *os.File) {
	buf := make([]byte, 16<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		wake, gone := pgWake(buf[:n])
		if gone {
			// The directory went (a reinit removes it): watched again
			// before the next poll once it is back.
			p.armed.Store(false)
		}
		if wake {
			select {
			case p.wake <- struct{}{}:
			default: // one is waiting already
			}
		}
	}
}

// pgWake reads a buffer of inotify events: whether one is worth asking
// Patroni at once, and whether the directory itself went.
func pgWake(buf []byte) (wake, gone bool) {
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		end := off + unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			wake = true // events were lost: ask anyway
		case ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
			wake, gone = true, true
		case isPGFile(name):
			wake = true
		}
		off = end
	}
	return wake, gone
}

func (p *pgWatch) close() {
	if p.ino != nil {
		p.ino.Close()
	}
}
