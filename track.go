package main

// The files patroni-vip-check watch writes: keepalived's track file, which
// one watcher keeps at a time, and node_exporter's textfile. Root writes
// them into directories that others may share, so every temporary file is
// created exclusively, no path is opened through a symbolic link, and no
// open can block: a FIFO, device or directory planted at a path is
// replaced or refused, never waited on.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileID is a file's identity: its device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(st *unix.Stat_t) fileID { return fileID{uint64(st.Dev), st.Ino} }

// trackFile is keepalived's track file, kept by this process. keepalived
// watches the file's directory with inotify and reads the file after a
// close-after-write or a rename into place; with "weight 0 reverse" it
// takes any non-zero number as healthy (it reads the file with strtol)
// and 0, no file, an empty file or garbage as FAULT.
type trackFile struct {
	path, dir, name string
	lock            *os.File // PATH.lock, locked while this process runs
	lockID          fileID
	dirID           fileID // the directory keepalived watches, as it was at the start
	written         string // what this process last wrote: "1", "0" or ""
}

// lockPath is where the lock of a track file lives: beside it, so that it
// names the track file it guards.
func lockPath(track string) string { return track + ".lock" }

// keptError says that another process keeps the track file.
type keptError struct {
	path string
	pid  int // 0 when unknown
}

func (e *keptError) Error() string {
	who := "another process"
	if e.pid > 0 {
		who = "process " + strconv.Itoa(e.pid)
	}
	return fmt.Sprintf("%s is kept by %s (patroni-vip-check watch; its lock is %s)", e.path, who, lockPath(e.path))
}

// takeTrackFile makes this process the one keeper of the track file at
// path: it holds an exclusive lock on PATH.lock for as long as it runs,
// which the kernel releases when it exits, however it exits. A second
// watcher of the same file gets a *keptError and must not touch the file.
// Temporary files that a killed keeper left are removed.
func takeTrackFile(path string) (*trackFile, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	t := &trackFile{path: path, dir: filepath.Clean(dir), name: name}
	var st unix.Stat_t
	if err := unix.Stat(t.dir, &st); err != nil {
		return nil, trackDirError(t.dir, err)
	}
	t.dirID = idOf(&st)
	lock, id, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	t.lock, t.lockID = lock, id
	sweepTemps(t.dir, t.name)
	return t, nil
}

func trackDirError(dir string, err error) error {
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("its directory %s does not exist (it is made at boot by tmpfiles.d, and must exist before keepalived starts)", dir)
	}
	return fmt.Errorf("its directory %s: %w", dir, err)
}

// lockFile takes the exclusive lock of track's lock file and writes this
// process's PID into it, for the error of a second watcher. The lock is an
// open file description lock (F_OFD_SETLK): it belongs to this open file,
// so no other open or close of the file in this process can release it,
// and it goes when the process does.
func lockFile(track string) (*os.File, fileID, error) {
	path := lockPath(track)
	for range 3 {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fileID{}, fmt.Errorf("opening the lock %s: %w", path, err)
		}
		f := os.NewFile(uintptr(fd), path)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			f.Close()
			return nil, fileID{}, fmt.Errorf("the lock %s is not a regular file", path)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
		if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err != nil {
			pid := 0
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				pid = readPID(f)
				f.Close()
				return nil, fileID{}, &keptError{path: track, pid: pid}
			}
			f.Close()
			return nil, fileID{}, fmt.Errorf("locking %s: %w", path, err)
		}
		// Held, unless the file was removed or replaced between the open
		// and the lock: then another process may hold the lock of the file
		// that is there now. Take that one instead.
		var now unix.Stat_t
		if unix.Lstat(path, &now) == nil && idOf(&now) == idOf(&st) {
			if err := f.Truncate(0); err == nil {
				f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			}
			return f, idOf(&st), nil
		}
		f.Close()
	}
	return nil, fileID{}, fmt.Errorf("the lock %s keeps being replaced", path)
}

// readPID is the PID a keeper wrote into its lock file, 0 if none.
func readPID(f *os.File) int {
	buf := make([]byte, 16)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// stillKept checks, at each poll, that the lock file is still the one this
// process locked. Someone who removed it lets a second watcher take the
// track file; this process then takes the new lock file if it can, and
// gives the track file up (a *keptError) if another process has.
func (t *trackFile) stillKept() (retaken bool, err error) {
	var st unix.Stat_t
	if unix.Lstat(lockPath(t.path), &st) == nil && idOf(&st) == t.lockID {
		return false, nil
	}
	lock, id, err := lockFile(t.path)
	if err != nil {
		return false, err
	}
	t.lock.Close()
	t.lock, t.lockID = lock, id
	return true, nil
}

// dirReplaced reports whether the track file's directory is no longer the
// one the watcher started with: removed and made again, keepalived's
// inotify watch stays on the old one and never sees the file again.
func (t *trackFile) dirReplaced() bool {
	var st unix.Stat_t
	return unix.Stat(t.dir, &st) == nil && idOf(&st) != t.dirID
}

// keep makes the file say eligible. It writes only when the verdict changed
// or the file is not what this process wrote (deleted, or changed by
// someone else).
func (t *trackFile) keep(eligible bool) error {
	want := "0"
	if eligible {
		want = "1"
	}
	if t.written == want {
		if got, ok := t.read(); ok && got == want {
			return nil
		}
	}
	return t.write(eligible)
}

// readIfTaken is read, for a track file that may not be taken yet (nil).
func (t *trackFile) readIfTaken() (value string, ok bool) {
	if t == nil {
		return "", false
	}
	return t.read()
}

// read returns the file's value, trimmed; ok is false when the path holds
// no regular file (missing, a link, a FIFO...) or cannot be read.
func (t *trackFile) read() (value string, ok bool) {
	b, ok := readRegular(t.path, 16)
	return strings.TrimSpace(string(b)), ok
}

// readRegular reads up to max bytes of the regular file at path, without
// following a link or waiting on a FIFO.
func readRegular(path string, max int) ([]byte, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false
	}
	buf := make([]byte, max)
	n, _ := io.ReadFull(f, buf)
	return buf[:n], true
}

// write replaces the file with 1 or 0 (replaceFile). No fsync: the file
// lives in /run, and after a crash nothing of it is wanted.
func (t *trackFile) write(eligible bool) error {
	value := "0\n"
	if eligible {
		value = "1\n"
	}
	t.written = ""
	err := replaceFile(t.path, []byte(value))
	if err == nil {
		t.written = value[:1]
		return nil
	}
	if errors.Is(err, unix.ENOENT) {
		return trackDirError(t.dir, err)
	}
	if !eligible {
		// A 1 that cannot be replaced must not stay: no file is FAULT too.
		if rerr := unix.Unlink(t.path); rerr == nil || errors.Is(rerr, unix.ENOENT) {
			return fmt.Errorf("%w; removed it instead", err)
		}
	}
	return err
}

// release is the unit's ExecStopPost: once the watcher has ended, however
// it ended, no 1 may stay behind. If no process keeps the track file, it
// is removed (no file is FAULT); if one does (another watcher of the same
// file, whose unit this is not), it is left to it.
func releaseTrackFile(path string) error {
	lock, _, err := lockFile(path)
	if err != nil {
		return err
	}
	defer lock.Close()
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	sweepTemps(filepath.Clean(dir), name)
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// replaceFile puts data at path atomically: a new temporary file in the
// same directory (created exclusively, so never through a file planted in
// its place), renamed over the path. A rename replaces whatever entry is
// at the path, a link or a FIFO included, without opening it.
func replaceFile(path string, data []byte) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // keepalived and node_exporter read it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return unwrapPath(err)
	}
	return nil
}

// tempPattern names the temporary files of name: hidden, and recognisable
// by sweepTemps.
func tempPattern(name string) string { return "." + name + ".*.tmp" }

// sweepTemps removes the temporary files of name that a killed writer
// left in dir. unlink never follows a link.
func sweepTemps(dir, name string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + name + "."
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".tmp") && !e.IsDir() {
			unix.Unlink(filepath.Join(dir, n))
		}
	}
}

// unwrapPath keeps the syscall error of a path error: the caller names the
// file once.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
