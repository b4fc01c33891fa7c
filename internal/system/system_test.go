package system

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHostFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, fs.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	var h Host
	fi, err := h.Stat(f)
	if err != nil || fi.Mode != 0o600 || fi.UID != uint32(os.Getuid()) || fi.Size != 1 {
		t.Errorf("Stat: %+v %v", fi, err)
	}
	di, err := h.Stat(dir)
	if err != nil || di.Mode != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("Stat dir: %v %v", di.Mode, err)
	}
	li, err := h.Lstat(filepath.Join(dir, "l"))
	if err != nil || li.Mode&fs.ModeSymlink == 0 {
		t.Errorf("Lstat: %v %v", li.Mode, err)
	}
	if si, _ := h.Stat(filepath.Join(dir, "l")); si.Ino != fi.Ino {
		t.Error("Stat does not follow the link")
	}
	if target, err := h.Readlink(filepath.Join(dir, "l")); err != nil || target != "f" {
		t.Errorf("Readlink: %q %v", target, err)
	}
	if _, err := h.Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
	if l, err := h.Label(f); err == nil && l == "" {
		t.Errorf("Label: empty label without error")
	}
}

func TestHostUsersAndCommands(t *testing.T) {
	var h Host
	root, err := h.LookupUser("root")
	if err != nil || root.UID != 0 {
		t.Errorf("LookupUser(root): %+v %v", root, err)
	}
	if _, err := h.LookupUser("no-such-user-pvc"); !errors.Is(err, ErrNoUser) {
		t.Errorf("LookupUser(no-such-user-pvc): %v", err)
	}
	if gid, err := h.LookupGroup("root"); err != nil || gid != 0 {
		t.Errorf("LookupGroup(root): %d %v", gid, err)
	}
	if _, err := h.LookupGroup("no-such-group-pvc"); !errors.Is(err, ErrNoGroup) {
		t.Errorf("LookupGroup(no-such-group-pvc): %v", err)
	}
	if u, err := h.LookupUID(0); err != nil || u.Name != "root" {
		t.Errorf("LookupUID(0): %+v %v", u, err)
	}
	ctx := context.Background()
	r := h.Run(ctx, Cmd{Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}})
	if r.ExitCode != 3 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.Err != nil {
		t.Errorf("Run: %+v", r)
	}
	if r := h.Run(ctx, Cmd{Path: "/nonexistent/x"}); r.ExitCode != -1 || r.Err == nil {
		t.Errorf("Run of a missing program: %+v", r)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if r := h.Run(short, Cmd{Path: "/bin/sh", Args: []string{"-c", "sleep 10 & sleep 10"}}); r.Err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Run past its context: %+v after %v", r, time.Since(start))
	}
	if os.Getuid() == 0 {
		nobody, err := h.LookupUser("nobody")
		if err == nil {
			r := h.Run(ctx, Cmd{Path: "/usr/bin/id", Args: []string{"-u"}, Credential: true, UID: nobody.UID, GID: nobody.GID})
			if strings.TrimSpace(string(r.Stdout)) != strconv.FormatUint(uint64(nobody.UID), 10) {
				t.Errorf("Run as nobody: %+v", r)
			}
		}
	}
}

func TestHostProcesses(t *testing.T) {
	ps, err := Host{}.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.PID == os.Getpid() {
			if exe, _ := os.Executable(); p.Exe != exe || p.UID != uint32(os.Geteuid()) || time.Since(p.Start) > time.Hour || time.Since(p.Start) < 0 {
				t.Errorf("this process: %+v (exe %s)", p, exe)
			}
			return
		}
	}
	t.Error("this process is not listed")
}

func TestHostInterfaces(t *testing.T) {
	ifs, err := Host{}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name == "lo" {
			for _, a := range i.Addrs {
				if a.String() == "127.0.0.1/8" {
					return
				}
			}
		}
	}
	t.Errorf("no lo with 127.0.0.1/8 in %+v", ifs)
}

// TestHostInotify: an inotify watch this process holds is read from
// /proc/self/fdinfo with the device stat gives the directory; a directory
// made again under the same name is another inode, not watched.
func TestHostInotify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "watched")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVE); err != nil {
		t.Fatal(err)
	}
	var h Host
	before, err := h.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := h.InotifyOf(os.Getpid())
	watches := Watches(ins)
	if err != nil || !slices.Contains(watches, Watch{Dev: before.Dev, Ino: before.Ino}) {
		t.Fatalf("watches %+v (%v), want one on %s dev %#x ino %d", watches, err, dir, before.Dev, before.Ino)
	}
	// The instance is the descriptor made here, with that one watch; a
	// second one, watching nothing, is an instance too.
	if !slices.ContainsFunc(ins, func(in Inotify) bool { return in.FD == fd && len(in.Watches) == 1 }) {
		t.Errorf("instances %+v: none is descriptor %d with one watch", ins, fd)
	}
	idle, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(idle)
	if more, _ := h.InotifyOf(os.Getpid()); len(more) != len(ins)+1 {
		t.Errorf("%d instances after one more was made, %d before", len(more), len(ins))
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	after, _ := h.Stat(dir)
	ins, _ = h.InotifyOf(os.Getpid())
	watches = Watches(ins)
	if slices.Contains(watches, Watch{Dev: after.Dev, Ino: after.Ino}) || !slices.Contains(watches, Watch{Dev: before.Dev, Ino: before.Ino}) {
		t.Errorf("after the directory was made again: watches %+v, new inode %d", watches, after.Ino)
	}
	if _, err := h.InotifyOf(1 << 30); err == nil {
		t.Error("watches of a process that does not exist")
	}
}

func TestParseInotifyFdinfo(t *testing.T) {
	info := "pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t1057\n" +
		"inotify wd:1 ino:9843a1 sdev:fe00000 mask:2c8 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a1439800c3109d5f\n" +
		"inotify wd:2 ino:2 sdev:1b mask:2c8 ignored_mask:0\n" +
		"inotify wd:3 ino:10 sdev:812345 mask:2c8 ignored_mask:0\n" +
		"inotify wd:4 ino:zz sdev:1b\n"
	got := ParseInotifyFdinfo([]byte(info))
	want := []Watch{
		{Dev: unix.Mkdev(254, 0), Ino: 0x9843a1},
		{Dev: 0x1b, Ino: 2},
		{Dev: unix.Mkdev(8, 0x12345), Ino: 16},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if unix.Mkdev(254, 0) != 0xfe00 {
		t.Errorf("stat's encoding of 254:0 is %#x, not 0xfe00", unix.Mkdev(254, 0))
	}
}

// FuzzParseInotifyFdinfo: whatever /proc/PID/fdinfo holds. Seeds:
// testdata/fuzz/FuzzParseInotifyFdinfo.
func FuzzParseInotifyFdinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if ws := ParseInotifyFdinfo(data); len(ws) > strings.Count(string(data), "inotify ") {
			t.Fatalf("%d watches from %q", len(ws), data)
		}
	})
}
