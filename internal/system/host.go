package system

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Host is this machine.
type Host struct{}

var _ System = Host{}

// FS is os.DirFS("/").
func (Host) FS() fs.FS { return os.DirFS("/") }

func (Host) Stat(name string) (FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return FileInfo{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fromStat(&st), nil
}

func (Host) Lstat(name string) (FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		return FileInfo{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return fromStat(&st), nil
}

func fromStat(st *unix.Stat_t) FileInfo {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return FileInfo{
		Mode: m, UID: st.Uid, GID: st.Gid, Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
}

func (Host) Readlink(name string) (string, error) { return os.Readlink(name) }

// LookupUser reads /etc/passwd (a static binary has no NSS), then asks
// getent, which sees LDAP and the like as keepalived's getpwnam does.
func (h Host) LookupUser(name string) (User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return fromUser(u)
	}
	var unknown user.UnknownUserError
	if !errors.As(err, &unknown) {
		return User{}, err
	}
	return h.getent(name)
}

func (h Host) LookupUID(uid uint32) (User, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err == nil {
		return fromUser(u)
	}
	var unknown user.UnknownUserIdError
	if !errors.As(err, &unknown) {
		return User{}, err
	}
	return h.getent(strconv.FormatUint(uint64(uid), 10))
}

func (h Host) LookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err == nil {
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return 0, errors.New("group " + name + ": id is not a number")
		}
		return uint32(gid), nil
	}
	var unknown user.UnknownGroupError
	if !errors.As(err, &unknown) {
		return 0, err
	}
	f, err := h.getentFields("group", name)
	if err != nil || len(f) < 3 {
		return 0, ErrNoGroup
	}
	gid, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return 0, ErrNoGroup
	}
	return uint32(gid), nil
}

// getentFields asks getent DATABASE KEY and splits its line.
func (h Host) getentFields(db, key string) ([]string, error) {
	path, err := exec.LookPath("getent")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := h.Run(ctx, Cmd{Path: path, Args: []string{db, key}})
	if r.ExitCode != 0 {
		return nil, errors.New("not found") // 2: no such key
	}
	line, _, _ := strings.Cut(string(r.Stdout), "\n")
	return strings.Split(line, ":"), nil
}

func (h Host) getent(key string) (User, error) {
	f, err := h.getentFields("passwd", key)
	if err != nil || len(f) < 6 {
		return User{}, ErrNoUser
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, ErrNoUser
	}
	return User{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5]}, nil
}

func fromUser(u *user.User) (User, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, errors.New("user " + u.Username + ": ids are not numbers")
	}
	return User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}, nil
}

func (Host) Label(name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(name, "security.selinux", buf)
		switch {
		case errors.Is(err, unix.ERANGE) && len(buf) < 64<<10:
			buf = make([]byte, 4*len(buf))
			continue
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return "", ErrNoLabel
		case err != nil:
			return "", &fs.PathError{Op: "lgetxattr", Path: name, Err: err}
		}
		return string(bytes.TrimRight(buf[:n], "\x00")), nil
	}
}

func (Host) Interfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Interface
	for _, i := range ifs {
		it := Interface{Name: i.Name, Up: i.Flags&net.FlagUp != 0}
		addrs, err := i.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(n.String()); err == nil {
					it.Addrs = append(it.Addrs, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
				}
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// maxProcesses bounds the /proc scan.
const maxProcesses = 1 << 16

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func (Host) Processes() ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	boot := bootTime()
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if len(out) >= maxProcesses {
			break
		}
		dir := filepath.Join("/proc", e.Name())
		p := Process{PID: pid}
		p.Exe, _ = os.Readlink(dir + "/exe")
		if status, err := readBounded(dir+"/status", 16<<10); err == nil {
			p.UID = effectiveUID(status)
		}
		if cmdline, err := readBounded(dir+"/cmdline", 64<<10); err == nil {
			p.Args = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		}
		if stat, err := readBounded(dir+"/stat", 4096); err == nil && !boot.IsZero() {
			// Field 22 is the start time in clock ticks since boot; the
			// name (field 2) may hold blanks, so count from its ')'.
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				f := strings.Fields(string(stat[i+1:]))
				if len(f) > 19 {
					if ticks, err := strconv.ParseInt(f[19], 10, 64); err == nil {
						p.Start = boot.Add(time.Duration(ticks) * time.Second / clockTicks)
					}
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// maxFDs bounds the descriptors of one process looked at.
const maxFDs = 1 << 14

// effectiveUID is the second id of /proc/PID/status's "Uid:" line (real,
// effective, saved, file system); 0 if there is none.
func effectiveUID(status []byte) uint32 {
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 1 {
				if uid, err := strconv.ParseUint(f[1], 10, 32); err == nil {
					return uint32(uid)
				}
			}
		}
	}
	return 0
}

// InotifyOf reads the inotify instances of pid: each descriptor that
// /proc/PID/fd shows as "anon_inode:inotify", with its fdinfo's watches.
func (Host) InotifyOf(pid int) ([]Inotify, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	f, err := os.Open(dir + "/fd")
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(maxFDs)
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var out []Inotify
	for _, n := range names {
		if target, err := os.Readlink(dir + "/fd/" + n); err != nil || target != "anon_inode:inotify" {
			continue
		}
		fd, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		info, err := readBounded(dir+"/fdinfo/"+n, 1<<20)
		if err != nil {
			continue // closed meanwhile
		}
		out = append(out, Inotify{FD: fd, Watches: ParseInotifyFdinfo(info)})
	}
	return out, nil
}

// ParseInotifyFdinfo reads the watches of an inotify descriptor's fdinfo:
// lines "inotify wd:1 ino:1a2b sdev:800001 mask:..." (ino and sdev in
// hex, sdev in the kernel's own encoding, major<<20 | minor, which it
// turns into stat's).
func ParseInotifyFdinfo(data []byte) []Watch {
	var out []Watch
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "inotify ")
		if !ok {
			continue
		}
		var w Watch
		var haveIno, haveDev bool
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, ":")
			n, err := strconv.ParseUint(v, 16, 64)
			switch {
			case err != nil:
			case k == "ino":
				w.Ino, haveIno = n, true
			case k == "sdev":
				w.Dev, haveDev = unix.Mkdev(uint32(n>>20), uint32(n&0xfffff)), true
			}
		}
		if haveIno && haveDev {
			out = append(out, w)
		}
	}
	return out
}

func bootTime() time.Time {
	data, err := readBounded("/proc/stat", 1<<20)
	if err != nil {
		return time.Time{}
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(s, 0)
			}
		}
	}
	return time.Time{}
}

func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// maxOutput bounds what is kept of a command's stdout and stderr.
const maxOutput = 1 << 20

// defaultEnv is the environment of a command run without one.
func defaultEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
}

func (Host) Run(ctx context.Context, c Cmd) Result {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = defaultEnv()
	}
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxOutput, maxOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.Credential {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, NoSetGroups: false}
	}
	// Kill the whole group: a child that forks must not outlive ctx.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	r := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.ExitCode = 0
	case errors.As(err, &exit) && exit.Exited():
		r.ExitCode = exit.ExitCode()
	default:
		r.Err = err
		if ctx.Err() != nil {
			r.Err = ctx.Err()
		}
	}
	return r
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
