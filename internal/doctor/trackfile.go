package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// trackFile checks a track_file block and how the instances use it.
func (d *doctor) trackFile(tf *keepalived.TrackFile, uses []keepalived.Tracker) {
	file := tf.Path()
	if file == "" {
		d.fail(tf.Stmt.Pos, "add file /run/keepalived-patroni-vip-check/eligible",
			"track_file %s has no file: keepalived ignores it (\"No file set\")", show(tf.Name))
		return
	}
	for _, t := range uses {
		w, rev := t.Weight, t.Reverse
		pos := t.Ref.Stmt.Pos
		if t.Ref.Weight == nil && t.Ref.Reverse == nil && tf.Weight != nil && t.Cleared == "" {
			pos = tf.Weight.Pos
		}
		cleared := ""
		if t.Cleared != "" {
			cleared = " (keepalived: " + show(t.Cleared) + ")"
		}
		switch {
		case w != 0:
			d.fail(pos, "use weight 0 reverse",
				"track_file %s has weight %d: the file's value only changes the priority and never puts the instance in FAULT", show(tf.Name), w)
		case !rev:
			d.fail(pos, "use weight 0 reverse",
				"track_file %s has weight 0 without reverse%s: a missing, empty or garbage file counts as healthy (fails open)", show(tf.Name), cleared)
		default:
			d.ok(pos, "track_file %s: weight 0 reverse: only a 1 in the file lets the instance up", show(tf.Name))
		}
	}
	if v, _, ok := tf.InitValue(); ok && v != 0 {
		d.fail(tf.InitFile.Pos, "remove init_file, or write init_file 0",
			"track_file %s: init_file writes %d when keepalived starts: the node counts as eligible before anything has asked Patroni", show(tf.Name), v)
	}
	if !path.IsAbs(file) {
		d.fail(tf.File.Pos, "write an absolute path", "track_file %s: %s is relative", show(tf.Name), show(file))
		return
	}
	dir := path.Dir(file)
	fi, err := d.sys.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		says := fmt.Sprintf("Track file directory for %s does not exist - removing", tf.Name)
		if d.version.AtLeast(keepalived.Version{Major: 2, Minor: 2, Patch: 8}) {
			says = fmt.Sprintf("realpath() error 2 (No such file or directory) for %s", tf.Name)
		}
		d.fail(tf.File.Pos, fmt.Sprintf("create %s before keepalived starts (a tmpfiles.d entry: d %s 0755 root root -)", dir, dir),
			"track_file %s: the directory %s does not exist: keepalived drops the track_file at start (%q) and takes the VIP without it", show(tf.Name), show(dir), show(says))
		return
	case err != nil:
		d.warn(tf.File.Pos, "", "track_file %s: %s: %s", show(tf.Name), show(dir), errText(err))
		return
	case !fi.Mode.IsDir():
		d.fail(tf.File.Pos, "make it a directory", "track_file %s: %s is not a directory: keepalived drops the track_file", show(tf.Name), show(dir))
		return
	}
	if volatile(dir) {
		if conf := d.tmpfilesCreates(dir); conf != "" {
			d.ok(tf.File.Pos, "track_file %s: %s exists, and %s creates it at boot", show(tf.Name), show(dir), show(conf))
		} else {
			d.warn(tf.File.Pos, fmt.Sprintf("add a tmpfiles.d entry: d %s 0755 root root -", dir),
				"track_file %s: %s exists now, but nothing creates it at boot: after a reboot keepalived drops the track_file and takes the VIP without it", show(tf.Name), show(dir))
		}
	} else {
		d.ok(tf.File.Pos, "track_file %s: %s exists", show(tf.Name), show(dir))
	}
	d.trackDirWatched(tf, dir, fi)
	d.trackFileValue(tf, file)
	d.selinuxTrackFile(tf.File.Pos, dir, file)
}

// trackDirWatched: keepalived watches the track file's directory with
// inotify from its start (track_file.c, init_track_files). A directory
// made after that, or removed and made again, is another inode: the
// watch stays on the old one (or is gone with it), and keepalived never
// sees the file change. The watches are in /proc/PID/fdinfo.
func (d *doctor) trackDirWatched(tf *keepalived.TrackFile, dir string, fi system.FileInfo) {
	for _, pids := range d.current() {
		readable := false
		var why error
		for _, pid := range pids {
			ins, err := d.sys.InotifyOf(pid)
			if err != nil {
				why = err
				continue
			}
			readable = true
			for _, w := range system.Watches(ins) {
				if w.Dev == fi.Dev && w.Ino == fi.Ino {
					d.ok(tf.File.Pos, "track_file %s: keepalived (pid %d) watches %s", show(tf.Name), pid, show(dir))
					return
				}
			}
		}
		if !readable {
			d.warn(tf.File.Pos, "run the doctor as root", "track_file %s: cannot read the inotify watches of keepalived (pid %d): %s: whether it sees %s change is not checked",
				show(tf.Name), pids[0], show(errText(why)), show(dir))
			return
		}
		d.fail(tf.File.Pos, fmt.Sprintf("systemctl restart keepalived, and never remove %s while it runs", dir),
			"track_file %s: keepalived (pid %d) does not watch %s as it is now (inode %d): the directory was made, or made again, after keepalived started, and keepalived sees no change of the file: the VIP stays where the file's last value put it",
			show(tf.Name), pids[0], show(dir), fi.Ino)
		return
	}
}

// volatile reports whether dir is on a file system emptied at boot.
func volatile(dir string) bool {
	for _, v := range []string{"/run", "/var/run", "/tmp", "/dev/shm"} {
		if dir == v || strings.HasPrefix(dir, v+"/") {
			return true
		}
	}
	return false
}

// trackFileValue says what keepalived reads in the file now: strtol of
// its first 127 bytes, 0 when missing, empty or garbage.
func (d *doctor) trackFileValue(tf *keepalived.TrackFile, file string) {
	data, err := readHead(d.sys, file, 127)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.ok(tf.File.Pos, "track_file %s: %s is absent: the instance is in FAULT until the watcher writes it", show(tf.Name), show(file))
		return
	case err != nil:
		d.warn(tf.File.Pos, "", "track_file %s: cannot read %s: %s", show(tf.Name), show(file), errText(err))
		return
	}
	n, ok := strtol(data)
	switch {
	case !ok:
		d.warn(tf.File.Pos, "let only patroni-vip-check watch write the file",
			"track_file %s: %s holds %q, which keepalived reads as 0: FAULT", show(tf.Name), show(file), show(string(bytes.TrimSpace(data))))
	case n == 0:
		d.ok(tf.File.Pos, "track_file %s: %s says 0: this node may not hold the VIP now", show(tf.Name), show(file))
	default:
		d.ok(tf.File.Pos, "track_file %s: %s says %d: this node may hold the VIP", show(tf.Name), show(file), n)
	}
}

// strtol is C's strtol(s, NULL, 0) on what keepalived reads: leading
// blanks, a sign, 0x for hex, 0 for octal; ok is false when no digit
// starts the text.
func strtol(data []byte) (int64, bool) {
	s := strings.TrimLeft(string(data), " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	base, start := 10, end
	switch {
	case strings.HasPrefix(s[end:], "0x") || strings.HasPrefix(s[end:], "0X"):
		base, start = 16, end+2
	case strings.HasPrefix(s[end:], "0"):
		base = 8
	}
	stop := start
	for stop < len(s) && digit(s[stop]) < base {
		stop++
	}
	if stop == start {
		if base == 16 {
			return 0, true // "0x" alone: strtol reads the 0
		}
		return 0, false
	}
	n, err := strconv.ParseInt(s[:end]+s[start:stop], base, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 99
}

// tmpfilesDirs are where systemd-tmpfiles reads, earlier ones masking
// files of the same name in later ones.
func tmpfilesDirs() []string {
	return []string{"/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/local/lib/tmpfiles.d", "/usr/lib/tmpfiles.d"}
}

// tmpfilesCreates is the tmpfiles.d file that creates dir at boot, or "".
func (d *doctor) tmpfilesCreates(dir string) string {
	seen := map[string]bool{}
	for _, td := range tmpfilesDirs() {
		entries, err := fs.ReadDir(d.sys.FS(), strings.TrimPrefix(td, "/"))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") || seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			name := path.Join(td, e.Name())
			data, err := readHead(d.sys, name, 1<<20)
			if err != nil {
				continue
			}
			if slices.Contains(TmpfilesDirectories(data), dir) {
				return name
			}
		}
	}
	return ""
}

// TmpfilesDirectories are the directories a tmpfiles.d file creates
// (types d, D, v, q, Q), with %t as /run. Other specifiers are left as
// they are.
func TmpfilesDirectories(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		typ := strings.TrimRight(f[0], "!-=~^+")
		if typ != "d" && typ != "D" && typ != "v" && typ != "q" && typ != "Q" {
			continue
		}
		p := strings.ReplaceAll(f[1], "%t", "/run")
		if path.IsAbs(p) {
			out = append(out, path.Clean(p))
		}
	}
	return out
}

// systemctl is systemd's, or "" where systemd does not run.
func (d *doctor) systemctl() string {
	if fi, err := d.sys.Stat("/run/systemd/system"); err != nil || !fi.Mode.IsDir() {
		return ""
	}
	for _, p := range []string{"/usr/bin/systemctl", "/bin/systemctl"} {
		if fi, err := d.sys.Stat(p); err == nil && fi.Mode.IsRegular() {
			return p
		}
	}
	return ""
}
