package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// How keepalived judges a script's file (lib/notify.c, the same at 2.2.7
// and 2.3.3 unless said).

// realpath resolves every symbolic link in an absolute path, as
// realpath(3) does.
func realpath(sys system.System, p string) (string, error) {
	const maxLinks = 40
	links := 0
	out := "/"
	rest := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			out = path.Dir(out)
			continue
		}
		next := path.Join(out, part)
		fi, err := sys.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode&fs.ModeSymlink == 0 {
			out = next
			continue
		}
		if links++; links > maxLinks {
			return "", errors.New("too many levels of symbolic links")
		}
		target, err := sys.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			out = "/"
		}
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
	}
	return out, nil
}

// executable is keepalived's is_executable: by mode bits alone for the
// user and the group the script runs as (no supplementary groups).
func executable(fi system.FileInfo, uid, gid uint32) bool {
	m := fi.Mode.Perm()
	return uid == 0 && m&0o111 != 0 ||
		uid == fi.UID && m&0o100 != 0 ||
		uid != fi.UID && (gid == fi.GID && m&0o010 != 0 || gid != fi.GID && m&0o001 != 0)
}

// needsProtection: keepalived checks a script's path only when root runs
// it, or it is set-uid or set-gid root.
func needsProtection(fi system.FileInfo, uid, gid uint32) bool {
	return uid == 0 || gid == 0 ||
		fi.UID == 0 && fi.Mode&0o100 != 0 && fi.Mode&fs.ModeSetuid != 0 ||
		fi.GID == 0 && fi.Mode&0o010 != 0 && fi.Mode&fs.ModeSetgid != 0
}

// unsafe is why keepalived's check_security rejects a path, or nil.
type unsafe struct {
	component string
	why       string
	notFound  bool // the component is missing: "could not find script"
}

// checkSecurity walks p as check_security does: "/", then each
// directory, then the file, none of them followed if a symbolic link.
// Each must be root-owned; a directory without the sticky bit, or the
// file, must not be writable by a non-root group nor by others.
func checkSecurity(sys system.System, p string) *unsafe {
	comps := []string{"/"}
	cur := ""
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur += "/" + part
		comps = append(comps, cur)
	}
	for i, c := range comps {
		last := i == len(comps)-1
		fi, err := sys.Lstat(c)
		if err != nil {
			return &unsafe{component: c, why: errText(err), notFound: true}
		}
		isDir, isReg, isLink := fi.Mode.IsDir(), fi.Mode.IsRegular(), fi.Mode&fs.ModeSymlink != 0
		if !last && !isDir || last && !isReg && !isLink {
			return &unsafe{component: c, why: "wrong file type (\"Wrong file type found in script path\")"}
		}
		if fi.UID != 0 {
			return &unsafe{component: c, why: fmt.Sprintf("owned by %s, not root", owner(sys, fi.UID))}
		}
		if isDir && fi.Mode&fs.ModeSticky != 0 || isLink {
			continue // root-owned: a sticky directory and a link pass
		}
		switch {
		case fi.Mode&0o002 != 0:
			return &unsafe{component: c, why: fmt.Sprintf("writable by others (%s)", modeText(fi))}
		case fi.GID != 0 && fi.Mode&0o020 != 0:
			return &unsafe{component: c, why: fmt.Sprintf("writable by group %d (%s)", fi.GID, modeText(fi))}
		}
	}
	return nil
}

// securityPaths are the paths keepalived v checks for a script written
// as written whose real path is real: from 2.3.0 both (the written one
// cleaned); before, the real one, and the real directory with the
// written file name when that names the same file.
func securityPaths(sys system.System, v keepalived.Version, written, real string) []string {
	if v.AtLeast(keepalived.Version{Major: 2, Minor: 3}) {
		paths := []string{path.Clean(written)}
		if real != paths[0] {
			paths = append(paths, real)
		}
		return paths
	}
	paths := []string{real}
	if path.Base(written) != path.Base(real) {
		alt := path.Join(path.Dir(real), path.Base(written))
		a, errA := sys.Stat(alt)
		r, errR := sys.Stat(real)
		if errA == nil && errR == nil && a.Ino == r.Ino && a.Dev == r.Dev {
			paths = []string{alt, real}
		}
	}
	return paths
}

// lookPath is keepalived's search for a bare script name, in the PATH
// systemd gives services.
func lookPath(sys system.System, name string, uid, gid uint32) (string, bool) {
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := path.Join(dir, name)
		if fi, err := sys.Stat(p); err == nil && fi.Mode.IsRegular() && executable(fi, uid, gid) {
			return p, true
		}
	}
	return "", false
}

func owner(sys system.System, uid uint32) string {
	if u, err := sys.LookupUID(uid); err == nil {
		return u.Name
	}
	return fmt.Sprintf("uid %d", uid)
}

// modeText is a mode as ls shows it, with the octal value.
func modeText(fi system.FileInfo) string {
	m := uint32(fi.Mode.Perm())
	if fi.Mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return fmt.Sprintf("%04o", m)
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
