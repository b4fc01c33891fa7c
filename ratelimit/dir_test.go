package ratelimit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Dir, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state")
	d, err := OpenDir(path, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func soon() time.Time { return time.Now().Add(time.Second) }

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// update is one run's read-modify-write.
func update(t *testing.T, d *Dir, name, class string, now time.Time) Decision {
	t.Helper()
	dec, err := tryUpdate(d, name, class, now)
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

// tryUpdate is update for a goroutine other than the test's, which may not
// call t.Fatal.
func tryUpdate(d *Dir, name, class string, now time.Time) (Decision, error) {
	tx, err := d.Begin(name, soon())
	if err != nil {
		return Decision{}, err
	}
	defer tx.Close()
	prev, err := tx.Load()
	if err != nil {
		return Decision{}, err
	}
	next, dec := Policy{Remind: time.Hour}.Next(prev, class, class != "eligible", now)
	return dec, tx.Save(next)
}

func TestOpenDirCreatesPrivateDir(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("mode %v, want drwx------", fi.Mode())
	}
}

func TestOpenDirRefuses(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	os.Symlink(real, filepath.Join(base, "link"))
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	groupw := filepath.Join(base, "groupw")
	os.Mkdir(groupw, 0o770)
	os.Chmod(groupw, 0o770)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	cases := map[string]string{
		filepath.Join(base, "link"):           "is a symlink",
		filepath.Join(base, "link", "sub"):    "is a symlink",
		open:                                  "writable by group or others",
		groupw:                                "writable by group or others",
		file:                                  "not a directory",
		"relative/state":                      "not an absolute path",
		filepath.Join(base, "missing", "sub"): "no such file",
	}
	for path, want := range cases {
		if _, err := OpenDir(path, 0o700); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenDir(%s): %v, want %q", path, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(real, "sub")); err == nil {
		t.Error("created a directory through a symlink")
	}
}

func TestOpenDirRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	path := filepath.Join(t.TempDir(), "theirs")
	os.Mkdir(path, 0o700)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(path, 0o700); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("OpenDir of a directory owned by nobody: %v", err)
	}
}

func TestSaveInPlaceWhenUnchanged(t *testing.T) {
	d, path := openTemp(t)
	now := time.Unix(1764064800, 0)
	if k := update(t, d, "x.state", "not-eligible", now).Kind; k != First {
		t.Fatalf("first run: %v", k)
	}
	file := filepath.Join(path, "x.state")
	fi, _ := os.Stat(file)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode())
	}
	ino := inode(t, file)
	for i := 1; i <= 5; i++ {
		if k := update(t, d, "x.state", "not-eligible", now.Add(time.Duration(i)*time.Second)).Kind; k != Quiet {
			t.Fatalf("run %d: %v", i, k)
		}
	}
	if inode(t, file) != ino {
		t.Error("an unchanged state replaced the file; it should be rewritten in place")
	}
	b, _ := os.ReadFile(file)
	if s, err := Decode(b); err != nil || s.Suppressed != 5 {
		t.Errorf("state %+v (%v), want 5 suppressed", s, err)
	}
	if k := update(t, d, "x.state", "eligible", now.Add(time.Minute)).Kind; k != Change {
		t.Fatalf("promotion: %v", k)
	}
	if inode(t, file) == ino {
		t.Error("a new state was written in place; it should replace the file")
	}
	entries, _ := os.ReadDir(path)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(entries))
	}
}

func TestCorruptStateStartsAfresh(t *testing.T) {
	d, path := openTemp(t)
	file := filepath.Join(path, "x.state")
	os.WriteFile(file, []byte("garbage\n"), 0o600)
	tx, err := d.Begin("x.state", soon())
	if err != nil {
		t.Fatal(err)
	}
	prev, err := tx.Load()
	if prev != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load of garbage: %v, %v", prev, err)
	}
	next, _ := Policy{}.Next(nil, "timeout", true, time.Now())
	if err := tx.Save(next); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if k := update(t, d, "x.state", "timeout", time.Now()).Kind; k != Quiet {
		t.Errorf("run after a repaired state: %v, want quiet", k)
	}
}

func TestReplacesWhatIsNotAStateFile(t *testing.T) {
	for _, kind := range []string{"symlink", "dangling symlink", "hard link", "fifo", "socket"} {
		t.Run(kind, func(t *testing.T) {
			d, path := openTemp(t)
			file := filepath.Join(path, "x.state")
			victim := filepath.Join(t.TempDir(), "victim")
			os.WriteFile(victim, []byte("precious\n"), 0o644)
			switch kind {
			case "symlink":
				os.Symlink(victim, file)
			case "dangling symlink":
				victim = filepath.Join(t.TempDir(), "nothing-here")
				os.Symlink(victim, file)
			case "hard link":
				victim = filepath.Join(path, "other")
				os.WriteFile(victim, []byte("precious\n"), 0o600)
				os.Link(victim, file)
			case "fifo":
				syscall.Mkfifo(file, 0o600)
			case "socket":
				ln, err := net.Listen("unix", file)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			tx, err := d.Begin("x.state", soon())
			if err != nil {
				t.Fatal(err)
			}
			if tx.Repaired == nil {
				t.Error("no repair reported")
			}
			prev, _ := tx.Load()
			next, _ := Policy{}.Next(prev, "timeout", true, time.Now())
			if err := tx.Save(next); err != nil {
				t.Fatal(err)
			}
			tx.Close()
			fi, err := os.Lstat(file)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("state file is %v (%v)", fi.Mode(), err)
			}
			switch kind {
			case "dangling symlink":
				if _, err := os.Lstat(victim); err == nil {
					t.Error("created the symlink's target")
				}
			case "symlink", "hard link":
				if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
					t.Errorf("the other file now holds %q", b)
				}
			}
		})
	}
}

func TestDirectoryInPlaceOfStateFile(t *testing.T) {
	d, path := openTemp(t)
	os.Mkdir(filepath.Join(path, "x.state"), 0o700)
	if _, err := d.Begin("x.state", soon()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Begin: %v", err)
	}
}

func TestLockTimesOut(t *testing.T) {
	d, _ := openTemp(t)
	held, err := d.Begin("x.state", soon())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	start := time.Now()
	_, err = d.Begin("x.state", start.Add(50*time.Millisecond))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Begin while locked: %v", err)
	}
	if took := time.Since(start); took < 50*time.Millisecond || took > 150*time.Millisecond {
		t.Errorf("gave up after %v, deadline 50ms", took)
	}
}

// TestOverlappingRuns: 40 runs at once after a change, each with its own
// descriptor as separate processes would have, log the change exactly
// once between them, and lose no count.
func TestOverlappingRuns(t *testing.T) {
	d, path := openTemp(t)
	now := time.Unix(1764064800, 0)
	update(t, d, "x.state", "not-eligible", now)
	var mu sync.Mutex
	count := map[Kind]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec, err := tryUpdate(d, "x.state", "eligible", now.Add(time.Second))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			count[dec.Kind]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if count[Change] != 1 || count[Quiet] != 39 {
		t.Errorf("decisions %v, want 1 change and 39 quiet", count)
	}
	b, _ := os.ReadFile(filepath.Join(path, "x.state"))
	if s, err := Decode(b); err != nil || s.Class != "eligible" || s.Suppressed != 39 {
		t.Errorf("final state %+v (%v), want eligible with 39 suppressed", s, err)
	}
}

// TestOpenDirIgnoresUmask: keepalived runs scripts with umask 0177, which
// would make a 0600 directory that a non-root owner cannot enter.
func TestOpenDirIgnoresUmask(t *testing.T) {
	// The test's own directory first: made under this umask it would be
	// 0600, which an unprivileged user running the tests cannot enter.
	path := filepath.Join(t.TempDir(), "state")
	old := syscall.Umask(0o177)
	d, err := OpenDir(path, 0o700)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("created with umask 0177: mode %v, want drwx------", fi.Mode())
	}
}

// TestMisfit: a state file unlinked between open and fstat was replaced by
// an overlapping run's rename; it must be opened again, not "repaired" by
// renaming an empty file over the state that run just saved.
func TestMisfit(t *testing.T) {
	for _, tc := range []struct {
		mode  uint32
		nlink uint64
		want  string
	}{
		{syscall.S_IFREG | 0o600, 1, ""},
		{syscall.S_IFREG | 0o600, 0, replacedMeanwhile},
		{syscall.S_IFREG | 0o600, 2, "a hard link"},
		{syscall.S_IFIFO | 0o600, 1, "not a regular file"},
	} {
		if got := misfit(tc.mode, tc.nlink); got != tc.want {
			t.Errorf("mode %o nlink %d: %q, want %q", tc.mode, tc.nlink, got, tc.want)
		}
	}
}

// TestPendingCommitsOnlyWhenAsked: a new state waits beside the old one
// until Commit (the line was logged); Abort leaves the old one and no
// temporary file.
func TestPendingCommitsOnlyWhenAsked(t *testing.T) {
	d, path := openTemp(t)
	now := time.Unix(1764064800, 0)
	update(t, d, "x.state", "not-eligible", now)
	file := filepath.Join(path, "x.state")
	for _, commit := range []bool{false, true} {
		tx, err := d.Begin("x.state", soon())
		if err != nil {
			t.Fatal(err)
		}
		prev, _ := tx.Load()
		next, _ := Policy{}.Next(prev, "eligible", false, now.Add(time.Second))
		p, err := tx.Prepare(next)
		if err != nil {
			t.Fatal(err)
		}
		if s := readState(t, file); s.Class != "not-eligible" {
			t.Fatalf("prepared state already in place: %+v", s)
		}
		if commit {
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			p.Abort()
		}
		tx.Close()
		want := "not-eligible"
		if commit {
			want = "eligible"
		}
		if s := readState(t, file); s.Class != want {
			t.Errorf("commit=%v: state %+v, want %s", commit, s, want)
		}
		if entries, _ := os.ReadDir(path); len(entries) != 1 {
			t.Errorf("commit=%v: %d entries, want the state file alone", commit, len(entries))
		}
	}
}

// TestInvalidateWritesInPlace: when a change cannot be saved by rename, the
// record is overwritten in place, so that the old state cannot hide the
// next change.
func TestInvalidateWritesInPlace(t *testing.T) {
	d, path := openTemp(t)
	now := time.Unix(1764064800, 0)
	update(t, d, "x.state", "not-eligible", now)
	file := filepath.Join(path, "x.state")
	ino := inode(t, file)
	tx, err := d.Begin("x.state", soon())
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := tx.Load()
	next, _ := Policy{}.Next(prev, "eligible", false, now.Add(time.Second))
	if err := tx.Invalidate(next); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if s := readState(t, file); s.Class != "eligible" || inode(t, file) != ino {
		t.Errorf("state %+v, inode changed %v", s, inode(t, file) != ino)
	}
	if k := update(t, d, "x.state", "not-eligible", now.Add(2*time.Second)).Kind; k != Change {
		t.Errorf("the demotion after an invalidated promotion: %v, want change", k)
	}
}

// TestSweepRemovesDeadTemps: a run killed between writing its temporary
// file and renaming it leaves the file behind; the next new state removes
// it, but never that of a run still alive.
func TestSweepRemovesDeadTemps(t *testing.T) {
	d, path := openTemp(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(path, fmt.Sprintf(".x.state.%d.tmp", dead.Process.Pid))
	live := filepath.Join(path, fmt.Sprintf(".x.state.%d.tmp", os.Getppid()))
	other := filepath.Join(path, fmt.Sprintf(".y.state.%d.tmp", dead.Process.Pid))
	for _, f := range []string{stale, live, other} {
		os.WriteFile(f, []byte("half"), 0o600)
	}
	update(t, d, "x.state", "timeout", time.Now())
	if _, err := os.Lstat(stale); err == nil {
		t.Error("the dead run's temporary file is still there")
	}
	if _, err := os.Lstat(live); err != nil {
		t.Error("a live run's temporary file was removed")
	}
	if _, err := os.Lstat(other); err != nil {
		t.Error("another state's temporary file was removed")
	}
}

func readState(t *testing.T, file string) State {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
