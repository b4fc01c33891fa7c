// Package system is what the doctor and the configuration generator read
// of the machine: files with their owners and modes, users, SELinux
// labels, network interfaces, processes, and commands to run. Host is the
// real machine; Fake is one made of data, for tests.
package system

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"time"
)

// System is the machine as the doctor sees it. Paths are absolute.
type System interface {
	// FS is the whole file system, its root standing for "/" (names
	// without the leading slash), for readers that take an fs.FS.
	FS() fs.FS
	// Stat follows symbolic links; Lstat does not.
	Stat(name string) (FileInfo, error)
	Lstat(name string) (FileInfo, error)
	Readlink(name string) (string, error)
	// LookupUser finds a user by name; ErrNoUser if there is none.
	LookupUser(name string) (User, error)
	// LookupUID finds a user by id; ErrNoUser if there is none.
	LookupUID(uid uint32) (User, error)
	// LookupGroup finds a group's id by name; ErrNoGroup if there is none.
	LookupGroup(name string) (uint32, error)
	// Label is the SELinux label of name itself (security.selinux,
	// symbolic links not followed); ErrNoLabel if it has none.
	Label(name string) (string, error)
	Interfaces() ([]Interface, error)
	Processes() ([]Process, error)
	// InotifyOf are the inotify instances a process holds, each with the
	// inodes it watches (from /proc/PID/fd and fdinfo); an error when
	// they cannot be read (another user's process, or gone).
	InotifyOf(pid int) ([]Inotify, error)
	// Run runs a command and waits for it, at most until ctx is done.
	Run(ctx context.Context, cmd Cmd) Result
}

// ErrNoUser: no such user.
var ErrNoUser = errors.New("no such user")

// ErrNoGroup: no such group.
var ErrNoGroup = errors.New("no such group")

// ErrNoLabel: the file has no SELinux label (SELinux is off, or the
// file system keeps none).
var ErrNoLabel = errors.New("no SELinux label")

// FileInfo is what stat says, owners included.
type FileInfo struct {
	Mode    fs.FileMode // type bits, permissions, setuid, setgid, sticky
	UID     uint32
	GID     uint32
	Dev     uint64
	Ino     uint64
	Size    int64
	ModTime time.Time
}

// User is an entry of the user database.
type User struct {
	Name string
	UID  uint32
	GID  uint32
	Home string
}

// Interface is a network interface with its addresses.
type Interface struct {
	Name  string
	Up    bool
	Addrs []netip.Prefix
}

// Process is a running process.
type Process struct {
	PID   int
	UID   uint32   // its effective user, whose limits (inotify's) it counts against
	Exe   string   // the executable, from /proc/PID/exe; " (deleted)" when replaced
	Args  []string // the command line
	Start time.Time
}

// Inotify is an inotify instance: a descriptor of a process, and what it
// watches. A descriptor shared by several processes (inherited, passed)
// shows in each.
type Inotify struct {
	FD      int
	Watches []Watch
}

// Watch is an inode a process watches with inotify. Dev is in stat's
// st_dev encoding, as in FileInfo.
type Watch struct {
	Dev uint64
	Ino uint64
}

// Watches are the inodes that any of the instances watches.
func Watches(ins []Inotify) []Watch {
	var out []Watch
	for _, in := range ins {
		out = append(out, in.Watches...)
	}
	return out
}

// Cmd is a command to run. UID and GID, when Credential is set, are the
// user it runs as (the caller must be root).
type Cmd struct {
	Path       string
	Args       []string // without the program name
	Credential bool
	UID, GID   uint32
	Env        []string // nil: a minimal PATH only
}

// Result is how a command ended.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int   // -1 if it did not exit (not started, killed)
	Err            error // why it did not start or finish
}
