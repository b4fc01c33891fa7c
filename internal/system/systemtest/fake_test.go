package systemtest

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

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
	if _, err := f.Label("/tmp"); !errors.Is(err, system.ErrNoLabel) {
		t.Errorf("Label of an unlabelled file: %v", err)
	}
	if _, err := f.Stat("/usr/bin/patroni-vip-check/x"); err == nil {
		t.Error("a file used as a directory")
	}
	if r := f.Run(context.Background(), system.Cmd{Path: "/bin/true"}); r.Err == nil {
		t.Error("a command not in the fake ran")
	}
	w, err := f.WatchOf("/tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	f.Inotify = map[int][]system.Watch{10: {w}, 11: nil}
	f.InotifyFDs = map[int][]system.Inotify{10: {{FD: 7}}}
	if ins, err := f.InotifyOf(10); err != nil || len(ins) != 2 || len(ins[0].Watches) != 1 || ins[0].Watches[0] != w || ins[1].FD != 7 {
		t.Errorf("InotifyOf(10): %+v %v", ins, err)
	}
	if _, err := f.InotifyOf(11); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("InotifyOf(11): %v, want a permission error", err)
	}
	if ins, err := f.InotifyOf(12); err != nil || len(ins) != 0 {
		t.Errorf("InotifyOf(12): %+v %v", ins, err)
	}
}
