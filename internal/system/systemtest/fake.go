// Package systemtest is a machine made of data, for tests of the packages
// that read the machine through system.System.
package systemtest

import (
	"context"
	"errors"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fake is a machine made of data. Directories that hold a file but are
// not listed are root:root 0755. Commands are looked up by path; a
// missing one does not start.
type Fake struct {
	Files  map[string]*File
	Users  []system.User
	Groups map[string]uint32
	Ifaces []system.Interface
	Procs  []system.Process
	// Inotify are the watches of each process, as one inotify instance;
	// a process not listed holds none, and one listed with nil cannot
	// be read. InotifyFDs are further instances a process holds.
	Inotify    map[int][]system.Watch
	InotifyFDs map[int][]system.Inotify
	Commands   map[string]func(system.Cmd) system.Result
}

// File is a fake file, directory or symbolic link.
type File struct {
	Mode    fs.FileMode // with fs.ModeDir or fs.ModeSymlink for those
	UID     uint32
	GID     uint32
	Data    []byte
	Target  string // a symbolic link's
	Label   string // SELinux; "" for none
	ModTime time.Time
}

var _ system.System = (*Fake)(nil)

// Ino gives each path its own inode number, stable for the path.
func (f *Fake) ino(name string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return h
}

// lookup finds name without following a final symbolic link; parents'
// links are followed.
func (f *Fake) lookup(name string, depth int) (string, *File, error) {
	if depth > 40 {
		return "", nil, errors.New("too many levels of symbolic links")
	}
	name = path.Clean(name)
	if name == "/" {
		return "/", f.dir("/"), nil
	}
	parent, base := path.Split(name)
	pname, pfile, err := f.resolve(path.Clean(parent), depth+1)
	if err != nil {
		return "", nil, err
	}
	if !pfile.Mode.IsDir() {
		return "", nil, errors.New("not a directory")
	}
	full := path.Join(pname, base)
	if file, ok := f.Files[full]; ok {
		return full, file, nil
	}
	if f.implied(full) {
		return full, f.dir(full), nil
	}
	return "", nil, fs.ErrNotExist
}

// resolve follows symbolic links all the way.
func (f *Fake) resolve(name string, depth int) (string, *File, error) {
	full, file, err := f.lookup(name, depth)
	if err != nil {
		return "", nil, err
	}
	if file.Mode&fs.ModeSymlink != 0 {
		t := file.Target
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(full), t)
		}
		return f.resolve(t, depth+1)
	}
	return full, file, nil
}

func (f *Fake) implied(dir string) bool {
	for p := range f.Files {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func (f *Fake) dir(name string) *File {
	if file, ok := f.Files[name]; ok {
		return file
	}
	return &File{Mode: fs.ModeDir | 0o755}
}

func (f *Fake) info(name string, file *File) system.FileInfo {
	return system.FileInfo{Mode: file.Mode, UID: file.UID, GID: file.GID, Ino: f.ino(name), Dev: 1,
		Size: int64(len(file.Data)), ModTime: file.ModTime}
}

func (f *Fake) Stat(name string) (system.FileInfo, error) {
	full, file, err := f.resolve(name, 0)
	if err != nil {
		return system.FileInfo{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return f.info(full, file), nil
}

func (f *Fake) Lstat(name string) (system.FileInfo, error) {
	full, file, err := f.lookup(name, 0)
	if err != nil {
		return system.FileInfo{}, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return f.info(full, file), nil
}

func (f *Fake) Readlink(name string) (string, error) {
	_, file, err := f.lookup(name, 0)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if file.Mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("invalid argument")}
	}
	return file.Target, nil
}

func (f *Fake) LookupUser(name string) (system.User, error) {
	for _, u := range f.Users {
		if u.Name == name {
			return u, nil
		}
	}
	return system.User{}, system.ErrNoUser
}

func (f *Fake) LookupUID(uid uint32) (system.User, error) {
	for _, u := range f.Users {
		if u.UID == uid {
			return u, nil
		}
	}
	return system.User{}, system.ErrNoUser
}

func (f *Fake) LookupGroup(name string) (uint32, error) {
	if gid, ok := f.Groups[name]; ok {
		return gid, nil
	}
	return 0, system.ErrNoGroup
}

func (f *Fake) Label(name string) (string, error) {
	_, file, err := f.lookup(name, 0)
	if err != nil {
		return "", &fs.PathError{Op: "lgetxattr", Path: name, Err: err}
	}
	if file.Label == "" {
		return "", system.ErrNoLabel
	}
	return file.Label, nil
}

func (f *Fake) Interfaces() ([]system.Interface, error) { return f.Ifaces, nil }
func (f *Fake) Processes() ([]system.Process, error)    { return f.Procs, nil }

// InotifyOf is the process's Inotify as one instance (descriptor 3), then
// its InotifyFDs; fs.ErrPermission for one listed in Inotify with nil.
func (f *Fake) InotifyOf(pid int) ([]system.Inotify, error) {
	ws, ok := f.Inotify[pid]
	if ok && ws == nil {
		return nil, &fs.PathError{Op: "open", Path: "/proc/" + strconv.Itoa(pid) + "/fd", Err: fs.ErrPermission}
	}
	var out []system.Inotify
	if ok {
		out = append(out, system.Inotify{FD: 3, Watches: ws})
	}
	return append(out, f.InotifyFDs[pid]...), nil
}

// WatchOf is the watch of name as a process would have it: its device
// and inode as Stat says.
func (f *Fake) WatchOf(name string) (system.Watch, error) {
	fi, err := f.Stat(name)
	if err != nil {
		return system.Watch{}, err
	}
	return system.Watch{Dev: fi.Dev, Ino: fi.Ino}, nil
}

func (f *Fake) Run(ctx context.Context, c system.Cmd) system.Result {
	run, ok := f.Commands[c.Path]
	if !ok {
		return system.Result{ExitCode: -1, Err: &fs.PathError{Op: "fork/exec", Path: c.Path, Err: fs.ErrNotExist}}
	}
	return run(c)
}

// FS is the fake's files as an fs.FS.
func (f *Fake) FS() fs.FS { return fakeFS{f} }

type fakeFS struct{ f *Fake }

func (x fakeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	full, file, err := x.f.resolve("/"+name, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &fakeOpen{fs: x, name: full, base: path.Base("/" + name), file: file, info: x.f.info(full, file)}, nil
}

// ReadLink and Lstat make the fake an fs.ReadLinkFS.
func (x fakeFS) ReadLink(name string) (string, error) { return x.f.Readlink("/" + name) }

func (x fakeFS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := x.f.Lstat("/" + name)
	if err != nil {
		return nil, err
	}
	return fileInfo{path.Base("/" + name), fi}, nil
}

type fakeOpen struct {
	fs   fakeFS
	name string // resolved
	base string // as opened
	file *File
	info system.FileInfo
	off  int
	dir  []fs.DirEntry
	dirn int
}

func (o *fakeOpen) Stat() (fs.FileInfo, error) { return fileInfo{o.base, o.info}, nil }
func (o *fakeOpen) Close() error               { return nil }

func (o *fakeOpen) Read(p []byte) (int, error) {
	if o.file.Mode.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: o.name, Err: errors.New("is a directory")}
	}
	if o.off >= len(o.file.Data) {
		return 0, io.EOF
	}
	n := copy(p, o.file.Data[o.off:])
	o.off += n
	return n, nil
}

func (o *fakeOpen) ReadDir(n int) ([]fs.DirEntry, error) {
	if o.dir == nil {
		names := map[string]bool{}
		prefix := strings.TrimSuffix(o.name, "/") + "/"
		for p := range o.fs.f.Files {
			if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
				names[strings.SplitN(rest, "/", 2)[0]] = true
			}
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		o.dir = []fs.DirEntry{}
		for _, n := range sorted {
			full := prefix + n
			_, file, err := o.fs.f.lookup(full, 0)
			if err != nil {
				continue
			}
			o.dir = append(o.dir, fs.FileInfoToDirEntry(fileInfo{n, o.fs.f.info(full, file)}))
		}
	}
	rest := o.dir[o.dirn:]
	if n > 0 && len(rest) > n {
		rest = rest[:n]
	}
	o.dirn += len(rest)
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	return rest, nil
}

type fileInfo struct {
	name string
	fi   system.FileInfo
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.fi.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.fi.Mode }
func (i fileInfo) ModTime() time.Time { return i.fi.ModTime }
func (i fileInfo) IsDir() bool        { return i.fi.Mode.IsDir() }
func (i fileInfo) Sys() any           { return i.fi }
