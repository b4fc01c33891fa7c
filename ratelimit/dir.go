package ratelimit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is an open state directory. Every path inside it is opened relative
// to its descriptor and without following symlinks, so nothing that appears
// in it can redirect a write elsewhere.
type Dir struct {
	path string
	fd   int
}

// OpenDir opens the state directory at path, creating its last component
// with mode perm (0700, or 0711 for a directory that holds other users'
// directories) when missing. It refuses a path with a symlink in any
// component, and a directory not owned by the effective user or writable by
// group or others: whoever can write there could make the check log lies.
func OpenDir(path string, perm uint32) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("state dir %q: not an absolute path", path)
	}
	clean := filepath.Clean(path)
	// Components above the state directory are opened with O_PATH: they
	// need only be searchable (the parent of other users' directories is
	// 0711), not readable.
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", clean, err)
	}
	walked := ""
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	for i, name := range parts {
		if name == "" {
			continue
		}
		walked += "/" + name
		last := i == len(parts)-1
		next, err := openDirAt(fd, name, last)
		if errors.Is(err, unix.ENOENT) && last {
			created := false
			if err = unix.Mkdirat(fd, name, perm&0o755); err == nil {
				created = true
			}
			if err == nil || errors.Is(err, unix.EEXIST) {
				next, err = openDirAt(fd, name, last)
			}
			// mkdir's mode passes through the umask, and keepalived runs
			// scripts with umask 0177: a bare 0600 directory, which its
			// owner cannot enter unless it is root.
			if err == nil && created {
				err = unix.Fchmod(next, perm&0o755)
			}
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) && isSymlinkPath(walked) {
				return nil, fmt.Errorf("state dir %s: %s is a symlink, which is never followed", clean, walked)
			}
			return nil, fmt.Errorf("state dir %s: %s: %w", clean, walked, err)
		}
		fd = next
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("state dir %s: %w", clean, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		unix.Close(fd)
		return nil, fmt.Errorf("state dir %s: owned by uid %d, not %d", clean, st.Uid, euid)
	}
	if st.Mode&0o022 != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("state dir %s: writable by group or others (mode %04o)", clean, st.Mode&0o7777)
	}
	return &Dir{path: clean, fd: fd}, nil
}

func openDirAt(dirfd int, name string, last bool) (int, error) {
	mode := unix.O_PATH
	if last {
		mode = unix.O_RDONLY
	}
	return unix.Openat(dirfd, name, mode|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func isSymlinkPath(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

// Path is the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// ErrLocked is returned by Begin when another run held the state past the
// deadline.
var ErrLocked = errors.New("state file locked by another run past the deadline")

// Tx is one locked read-modify-write of a state file. Runs that overlap
// (keepalived can start a run while the previous one is still going) take
// turns: each sees the state the previous one saved.
type Tx struct {
	dir  *Dir
	name string
	fd   int
	// Repaired says what Begin had to replace to get a usable file: a
	// symlink, a hard link or a special file where the state belongs.
	// The replaced thing itself is never written to or followed.
	Repaired error
	loaded   *State // the valid record read, for Save to rewrite in place
}

// Begin opens and locks the state file name, creating it empty when
// missing, waiting for the lock until deadline at most.
func (d *Dir) Begin(name string, deadline time.Time) (*Tx, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name[0] == '.' {
		return nil, fmt.Errorf("invalid state file name %q", name)
	}
	t := &Tx{dir: d, name: name, fd: -1}
	for pause := 100 * time.Microsecond; ; {
		fd, held, err := d.open(t)
		if err != nil {
			return nil, err
		}
		locked, err := lockBy(fd, deadline, &pause)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		if !locked {
			unix.Close(fd)
			return nil, fmt.Errorf("%s: %w", filepath.Join(d.path, name), ErrLocked)
		}
		// The holder before us may have replaced the file (Save renames a
		// new one into place): then the lock we hold is on a dead inode.
		same, err := d.stillNamed(&held, name)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		if same {
			t.fd = fd
			return t, nil
		}
		unix.Close(fd)
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%s: %w", filepath.Join(d.path, name), ErrLocked)
		}
	}
}

// open returns a descriptor of a regular, singly linked state file and
// its stat, replacing whatever else is found at the name.
func (d *Dir) open(t *Tx) (int, unix.Stat_t, error) {
	const flags = unix.O_RDWR | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	var st unix.Stat_t
	for repairs := 0; ; {
		fd, err := unix.Openat(d.fd, t.name, flags, 0o600)
		what := ""
		switch {
		case errors.Is(err, unix.ELOOP):
			what = "a symlink"
		case errors.Is(err, unix.ENXIO):
			what = "a socket" // open(2) of a unix socket fails with ENXIO
		case errors.Is(err, unix.EISDIR):
			return -1, st, fmt.Errorf("%s is a directory", filepath.Join(d.path, t.name))
		case err != nil:
			return -1, st, fmt.Errorf("%s: %w", filepath.Join(d.path, t.name), err)
		default:
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return -1, st, err
			}
			if what = misfit(st.Mode, uint64(st.Nlink)); what == "" {
				return fd, st, nil
			}
			unix.Close(fd)
			if what == replacedMeanwhile {
				continue // open the file now at the name
			}
		}
		if repairs++; repairs > 1 {
			return -1, st, fmt.Errorf("%s is %s again", filepath.Join(d.path, t.name), what)
		}
		// Rename a fresh empty file over the name: rename replaces the
		// directory entry itself and never touches a link's target.
		if err := d.replace(t.name, nil); err != nil {
			return -1, st, fmt.Errorf("%s was %s and could not be replaced: %w", filepath.Join(d.path, t.name), what, err)
		}
		t.Repaired = fmt.Errorf("%s was %s; replaced it with a fresh state file", filepath.Join(d.path, t.name), what)
	}
}

// replacedMeanwhile is misfit's word for a file unlinked since it was
// opened: another run renamed a new state over it, which is no damage.
const replacedMeanwhile = "replaced meanwhile"

// misfit says what is wrong with the file at a state file's name, from its
// mode and link count, "" if nothing is.
func misfit(mode uint32, nlink uint64) string {
	switch {
	case mode&unix.S_IFMT != unix.S_IFREG:
		return "not a regular file"
	case nlink == 0:
		return replacedMeanwhile
	case nlink > 1:
		return "a hard link"
	}
	return ""
}

// lockBy takes an exclusive flock on fd, polling until deadline. flock has
// no timeout of its own, and a blocked flock could outlive keepalived's.
func lockBy(fd int, deadline time.Time, pause *time.Duration) (bool, error) {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("locking state: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		time.Sleep(min(*pause, left))
		*pause = min(*pause*2, 2*time.Millisecond)
	}
}

// stillNamed reports whether the file held (its stat) is still the one at
// name.
func (d *Dir) stillNamed(held *unix.Stat_t, name string) (bool, error) {
	var named unix.Stat_t
	err := unix.Fstatat(d.fd, name, &named, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return held.Dev == named.Dev && held.Ino == named.Ino, nil
}

// Load reads the state. It returns nil and no error for an empty (new)
// file, and nil and an error wrapping ErrCorrupt for anything unreadable:
// the caller starts afresh either way.
func (t *Tx) Load() (*State, error) {
	buf := make([]byte, RecordLen+1)
	n, err := unix.Pread(t.fd, buf, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrCorrupt, t.name, err)
	}
	if n == 0 {
		return nil, nil
	}
	s, err := Decode(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(t.dir.path, t.name), err)
	}
	t.loaded = &s
	return &s, nil
}

// Save stores s. A state of the same class as the one loaded is rewritten
// in place: same length, no fsync, no rename, so an unchanged state costs
// one pwrite. A new class (or a new file) is written to a temporary file,
// synced and renamed over the old one, so a crash leaves the old state or
// the new, never a torn one.
func (t *Tx) Save(s State) error {
	if t.loaded != nil && t.loaded.Class == s.Class {
		return t.overwrite(s)
	}
	p, err := t.Prepare(s)
	if err != nil {
		return err
	}
	return p.Commit()
}

// overwrite rewrites the record in place.
func (t *Tx) overwrite(s State) error {
	rec, err := Encode(s)
	if err != nil {
		return err
	}
	n, err := unix.Pwrite(t.fd, rec, 0)
	if err == nil && n != len(rec) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(rec))
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", filepath.Join(t.dir.path, t.name), err)
	}
	return nil
}

// Pending is a new state written and synced beside the state file, not yet
// in its place. The caller logs the change, and commits only once the log
// took the line: a change that was not logged stays unsaved, so the next
// run logs it again.
type Pending struct {
	tx  *Tx
	tmp string
}

// Prepare writes s to a temporary file next to the state file and syncs it.
// It fails when the state cannot be saved (a full or read-only file
// system), before anything is logged, so the line can say so.
func (t *Tx) Prepare(s State) (*Pending, error) {
	rec, err := Encode(s)
	if err != nil {
		return nil, err
	}
	tmp, err := t.dir.writeTemp(t.name, rec)
	if err != nil {
		return nil, fmt.Errorf("saving %s: %w", filepath.Join(t.dir.path, t.name), err)
	}
	return &Pending{tx: t, tmp: tmp}, nil
}

// Commit puts the new state in place.
func (p *Pending) Commit() error {
	d := p.tx.dir
	if err := unix.Renameat(d.fd, p.tmp, d.fd, p.tx.name); err != nil {
		unix.Unlinkat(d.fd, p.tmp, 0)
		return fmt.Errorf("saving %s: %w", filepath.Join(d.path, p.tx.name), err)
	}
	return nil
}

// Abort drops the new state: the old one stays.
func (p *Pending) Abort() { unix.Unlinkat(p.tx.dir.fd, p.tmp, 0) }

// Invalidate is for a change that was logged but whose state could not be
// saved (Prepare or Commit failed): it makes sure the next run cannot take
// the old state for the current one, which would leave the change that
// follows unlogged. It writes s over the old record in place, which needs
// no new space (the record has a fixed length), and failing that removes
// the state file. On a read-only file system neither works; then every
// later run fails to save too, and logs.
func (t *Tx) Invalidate(s State) error {
	if err := t.overwrite(s); err == nil {
		return nil
	}
	if err := unix.Unlinkat(t.dir.fd, t.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", filepath.Join(t.dir.path, t.name), err)
	}
	return nil
}

// Close releases the lock.
func (t *Tx) Close() error {
	if t.fd < 0 {
		return nil
	}
	err := unix.Close(t.fd)
	t.fd = -1
	return err
}

// replace atomically puts a file holding data at name: a temporary file in
// the same directory, written, synced, then renamed; removed on failure.
func (d *Dir) replace(name string, data []byte) error {
	tmp, err := d.writeTemp(name, data)
	if err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return err
	}
	return nil
}

// writeTemp writes data to a new temporary file for name and syncs it. The
// directory itself is not synced: the state is meant for tmpfs, and after
// a crash an older state costs one repeated line at most.
func (d *Dir) writeTemp(name string, data []byte) (string, error) {
	d.sweep(name)
	tmp := tempPrefix(name) + strconv.Itoa(os.Getpid()) + ".tmp"
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(d.fd, tmp, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		// Left by a process with our PID that died before renaming.
		unix.Unlinkat(d.fd, tmp, 0)
		fd, err = unix.Openat(d.fd, tmp, flags, 0o600)
	}
	if err != nil {
		return "", err
	}
	if len(data) > 0 {
		n, werr := unix.Write(fd, data)
		if werr == nil && n != len(data) {
			werr = fmt.Errorf("short write (%d of %d bytes)", n, len(data))
		}
		if werr == nil {
			werr = unix.Fsync(fd)
		}
		err = werr
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return "", err
	}
	return tmp, nil
}

func tempPrefix(name string) string { return "." + name + "." }

// sweep removes the temporary files of name left by runs that were killed
// between writing and renaming (keepalived's SIGKILL, an OOM kill): those
// whose PID no longer runs. It is called only when a new state is written,
// which is rare, so an unchanged state costs no directory read.
func (d *Dir) sweep(name string) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), d.path)
	names, _ := f.Readdirnames(-1)
	f.Close()
	prefix := tempPrefix(name)
	for _, n := range names {
		pidText, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		pidText, ok = strings.CutSuffix(pidText, ".tmp")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			unix.Unlinkat(d.fd, n, 0)
		}
	}
}
