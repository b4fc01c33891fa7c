package system

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
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
			if exe, _ := os.Executable(); p.Exe != exe || time.Since(p.Start) > time.Hour || time.Since(p.Start) < 0 {
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

func TestFake(t *testing.T) {
	f := &Fake{Files: map[string]*File{
		"/usr/bin/patroni-vip-check":      {Mode: 0o755, Data: []byte("\x7fELF")},
		"/usr/local/bin/pvc":              {Mode: fs.ModeSymlink | 0o777, Target: "../../bin/patroni-vip-check"},
		"/tmp":                            {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		"/tmp/x/y":                        {Mode: 0o600, UID: 1000, Label: "system_u:object_r:tmp_t:s0"},
		"/etc/keepalived/keepalived.conf": {Mode: 0o644, Data: []byte("global_defs {\n}\n")},
	}}
	if err := fstest.TestFS(f.FS(), "usr/bin/patroni-vip-check", "etc/keepalived/keepalived.conf", "tmp/x/y"); err != nil {
		t.Error(err)
	}
	fi, err := f.Stat("/usr/local/bin/pvc")
	if err != nil || fi.Mode != 0o755 {
		t.Errorf("Stat through a link: %+v %v", fi, err)
	}
	if li, _ := f.Lstat("/usr/local/bin/pvc"); li.Mode&fs.ModeSymlink == 0 {
		t.Error("Lstat follows the link")
	}
	if di, err := f.Lstat("/tmp/x"); err != nil || di.Mode != fs.ModeDir|0o755 || di.UID != 0 {
		t.Errorf("implied directory: %+v %v", di, err)
	}
	if l, err := f.Label("/tmp/x/y"); err != nil || l != "system_u:object_r:tmp_t:s0" {
		t.Errorf("Label: %q %v", l, err)
	}
	if _, err := f.Label("/tmp"); !errors.Is(err, ErrNoLabel) {
		t.Errorf("Label of an unlabelled file: %v", err)
	}
	if _, err := f.Stat("/usr/bin/patroni-vip-check/x"); err == nil {
		t.Error("a file used as a directory")
	}
	if r := f.Run(context.Background(), Cmd{Path: "/bin/true"}); r.Err == nil {
		t.Error("a command not in the fake ran")
	}
}
