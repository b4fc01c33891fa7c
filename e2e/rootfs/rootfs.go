// Package rootfs builds, caches and hands out the Debian root filesystems from which the
// end-to-end suite runs a software stack other than the host's: Debian 13's Patroni 4.0,
// PostgreSQL 17, etcd 3.5 and keepalived 2.3, and Debian unstable's Patroni 4.1,
// PostgreSQL 18 and keepalived 2.3.4, beside a Debian 12 host's own packages.
//
// A root is built once by debootstrap, from the mirror the host's apt already uses, into
// DefaultCacheDir under a name that carries a hash of what it is built from (suite,
// variant, architecture, package list, build recipe): an unchanged package list is
// reused by every later run, a changed one gets a new root. A package list may pin
// versions (NAME=VERSION): unstable keeps no old version, so a build whose mirror has
// moved on fails with a MovedError rather than give a root the suite was not proven on.
// Nothing is added to the host's apt sources, nothing on the host is installed or
// upgraded.
//
// Builds are serialised by a lock file. A build goes into a temporary directory renamed
// into place only when complete, so an interrupted build never leaves a root that looks
// usable. The root has a policy-rc.d that exits 101 before any package is configured, and
// packages are configured in private mount, network and PID namespaces: no service
// starts, nothing is mounted in the host's namespace, no process outlives the build.
// A run using a root holds a shared lock on it, so that replacing an older root of the
// same stack never removes one still in use.
package rootfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultCacheDir keeps the roots between runs.
const DefaultCacheDir = "/var/cache/patroni-vip-check/rootfs"

// recipe is part of every cache key: change it when the way a root is built changes, so
// that roots built the old way are replaced.
const recipe = "2"

//go:embed *.packages
var packageLists embed.FS

// Spec is what a root is built from.
type Spec struct {
	Name    string // the stack it serves, e.g. "debian13"; its package list is NAME.packages
	Suite   string // the Debian suite, e.g. "trixie"
	Variant string // debootstrap's --variant
	// Packages are installed on top of the variant, sorted: a name, or NAME=VERSION for a
	// package pinned to the version the suite was proven on (see checkPins).
	Packages []string
}

// suites maps each stack that runs from a root to its Debian suite.
var suites = map[string]struct{ suite, variant string }{
	"debian13": {"trixie", "minbase"},
	"sid":      {"sid", "minbase"},
}

// Lookup returns the Spec of the named stack, its packages read from NAME.packages in
// this directory (compiled in, so that an edited list is a new key at the next build).
func Lookup(name string) (Spec, error) {
	s, ok := suites[name]
	if !ok {
		return Spec{}, fmt.Errorf("rootfs: no root filesystem is defined for stack %q", name)
	}
	b, err := packageLists.ReadFile(name + ".packages")
	if err != nil {
		return Spec{}, fmt.Errorf("rootfs: %w", err)
	}
	pkgs, err := ParsePackages(string(b))
	if err != nil {
		return Spec{}, fmt.Errorf("rootfs: %s.packages: %w", name, err)
	}
	return Spec{Name: name, Suite: s.suite, Variant: s.variant, Packages: pkgs}, nil
}

var (
	pkgName    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)            // Debian policy 5.6.1
	pkgVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`) // Debian policy 5.6.12
)

// ParsePackages reads a package list: one package a line, a name or NAME=VERSION (a
// pin), '#' starts a comment. The result is sorted and without duplicates, so that
// reordering the file changes no key.
func ParsePackages(text string) ([]string, error) {
	var pkgs []string
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range strings.Fields(line) {
			name, version, pinned := strings.Cut(f, "=")
			if !pkgName.MatchString(name) {
				return nil, fmt.Errorf("line %d: %q is not a Debian package name", i+1, name)
			}
			if pinned && !pkgVersion.MatchString(version) {
				return nil, fmt.Errorf("line %d: %q is not a Debian version", i+1, version)
			}
			pkgs = append(pkgs, f)
		}
	}
	if len(pkgs) == 0 {
		return nil, errors.New("no packages")
	}
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	for i := 1; i < len(pkgs); i++ {
		if a, b := packageName(pkgs[i-1]), packageName(pkgs[i]); a == b {
			return nil, fmt.Errorf("%s is listed twice, with different versions", a)
		}
	}
	return pkgs, nil
}

// packageName is a package list entry's name, without its pin.
func packageName(entry string) string {
	name, _, _ := strings.Cut(entry, "=")
	return name
}

// Names are the spec's package names, pins left out: what debootstrap installs.
func (s Spec) Names() []string {
	names := make([]string, len(s.Packages))
	for i, p := range s.Packages {
		names[i] = packageName(p)
	}
	return names
}

// MovedError says that the mirror no longer has the versions a package list pins:
// Debian unstable replaces a version with the next and keeps no old one, so a root
// proven on it cannot be built again once it moves. Someone must run the suite on the
// new versions and move the pins.
type MovedError struct {
	Stack string
	Moved []string // "patroni 4.1.5-2 pinned, 4.1.6-1 on the mirror"
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("the mirror moved: %[1]s.packages pins versions it no longer has (%[2]s). "+
		"The %[1]s stack was proven on the pinned versions only. To move the pins, write the mirror's versions "+
		"into e2e/rootfs/%[1]s.packages and run make e2e STACK=%[1]s; commit them if it passes "+
		"(README.md, \"Moving the %[1]s pins\")",
		e.Stack, strings.Join(e.Moved, "; "))
}

// checkPins compares the versions dpkg-query listed (lines "NAME VERSION") with the
// spec's pins.
func checkPins(spec Spec, installed string) error {
	have := map[string]string{}
	for _, line := range strings.Split(installed, "\n") {
		if name, version, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			have[name] = version
		}
	}
	var moved []string
	for _, p := range spec.Packages {
		name, want, pinned := strings.Cut(p, "=")
		if pinned && have[name] != want {
			got := have[name]
			if got == "" {
				got = "none"
			}
			moved = append(moved, fmt.Sprintf("%s %s pinned, %s on the mirror", name, want, got))
		}
	}
	if len(moved) > 0 {
		return &MovedError{Stack: spec.Name, Moved: moved}
	}
	return nil
}

// Key names the root built from s for arch: readable, and a hash of everything that
// makes it what it is.
func (s Spec) Key(arch string) string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nsuite %s\nvariant %s\narch %s\n", recipe, s.Suite, s.Variant, arch)
	for _, p := range s.Packages {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return fmt.Sprintf("%s-%s-%s-%x", s.Name, s.Suite, arch, h.Sum(nil)[:6])
}

// Options tune Ensure; the zero value is the normal use.
type Options struct {
	CacheDir string               // default DefaultCacheDir
	Mirror   string               // default HostMirror()
	Arch     string               // default the host's (dpkg --print-architecture)
	Logf     func(string, ...any) // progress; nil is silent
}

// Root is a usable root filesystem. Close it when done: until then no build removes it.
type Root struct {
	Dir       string
	Key       string
	Built     bool          // built by this call, not found in the cache
	BuildTime time.Duration // how long building it took, when Built
	use       *os.File      // holds a shared flock while the root is in use
}

// Close releases the root; it stays in the cache.
func (r *Root) Close() error {
	if r.use == nil {
		return nil
	}
	err := r.use.Close() // releases the flock
	r.use = nil
	return err
}

// manifest is written into every root last before it is renamed into place.
const manifest = "etc/pvc-e2e-rootfs"

// Ensure returns the root for spec, building it first if the cache has none. Concurrent
// callers, in this process or others, wait for one build.
func Ensure(ctx context.Context, spec Spec, o Options) (*Root, error) {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Arch == "" {
		out, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
		if err != nil {
			return nil, fmt.Errorf("rootfs: dpkg --print-architecture: %w", err)
		}
		o.Arch = strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	build, err := lock(ctx, filepath.Join(o.CacheDir, ".lock"), syscall.LOCK_EX, func() {
		o.Logf("rootfs: waiting for another run that is building a root in %s", o.CacheDir)
	})
	if err != nil {
		return nil, err
	}
	defer build.Close()
	// Anything building here was interrupted: nobody else can hold the lock.
	stale, _ := filepath.Glob(filepath.Join(o.CacheDir, ".build-*"))
	for _, d := range stale {
		o.Logf("rootfs: removing %s, left by an interrupted build", d)
		if err := removeTree(d); err != nil {
			return nil, err
		}
	}

	key := spec.Key(o.Arch)
	r := &Root{Dir: filepath.Join(o.CacheDir, key), Key: key}
	if _, err := os.Stat(filepath.Join(r.Dir, manifest)); errors.Is(err, fs.ErrNotExist) {
		if o.Mirror == "" {
			o.Mirror = HostMirror()
		}
		t := time.Now()
		if err := buildRoot(ctx, spec, o, key, r.Dir); err != nil {
			return nil, err
		}
		r.Built, r.BuildTime = true, time.Since(t)
	} else if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	// Taken before the build lock is released: no other run can prune it in between.
	if r.use, err = lock(ctx, r.Dir+".lock", syscall.LOCK_SH, nil); err != nil {
		return nil, err
	}
	prune(o, spec.Name, key)
	return r, nil
}

// lock opens path and flocks it (how: LOCK_EX or LOCK_SH), calling waiting once if it
// has to wait. Closing the file releases the lock, and so does the process's end.
func lock(ctx context.Context, path string, how int, waiting func()) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	for first := true; ; first = false {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("rootfs: lock %s: %w", path, err)
		}
		if first && waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// buildRoot debootstraps spec into a temporary directory of the cache and renames it to
// dir once complete. Called with the build lock held.
func buildRoot(ctx context.Context, spec Spec, o Options, key, dir string) error {
	// A directory without its manifest was not made by this package; it would block the rename.
	if _, err := os.Lstat(dir); err == nil {
		o.Logf("rootfs: removing %s: it has no %s, so it is not a complete root", dir, manifest)
		if err := removeTree(dir); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(o.CacheDir, ".build-"+key+"-")
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	// MkdirTemp makes 0700; the root's / must be 0755 for postgres and every other user.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	logPath := filepath.Join(o.CacheDir, key+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer log.Close()
	fail := func(err error) error {
		if rerr := removeTree(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("rootfs: building %s: %w (log: %s)%s", key, err, logPath, tail(logPath))
	}
	o.Logf("rootfs: building %s with debootstrap from %s (1-2 minutes, about 800 MB; log %s)", key, o.Mirror, logPath)
	t := time.Now()

	// Stage 1 downloads and unpacks, in the host's network namespace (it needs the
	// mirror); a private mount namespace keeps whatever it mounts off the host.
	err = run(ctx, log, "unshare", "--mount", "--propagation", "private",
		"debootstrap", "--foreign", "--variant="+spec.Variant, "--arch="+o.Arch,
		"--include="+strings.Join(spec.Names(), ","), spec.Suite, tmp, o.Mirror)
	if err != nil {
		return fail(err)
	}
	o.Logf("rootfs: downloaded and unpacked in %.0fs; configuring", time.Since(t).Seconds())
	// postgresql-common would otherwise create, and initdb, a 17/main cluster nobody uses.
	if err := writeFile(filepath.Join(tmp, "etc/postgresql-common/createcluster.d/pvc-e2e.conf"), "create_main_cluster = false\n", 0o644); err != nil {
		return fail(err)
	}
	// No fsync per file: the root counts only once renamed, after one sync below.
	unsafeIO := filepath.Join(tmp, "etc/dpkg/dpkg.cfg.d/pvc-e2e-unsafe-io")
	if err := writeFile(unsafeIO, "force-unsafe-io\n", 0o644); err != nil {
		return fail(err)
	}
	// Stage 2 configures, in namespaces of its own: no network, nothing mounted on the
	// host, and any process it leaves dies with its PID namespace. While it configures,
	// debootstrap's own policy-rc.d keeps services from starting; it removes it at the end.
	err = run(ctx, log, "unshare", "--mount", "--propagation", "private", "--net", "--pid", "--fork", "--kill-child",
		"chroot", tmp, "/debootstrap/debootstrap", "--second-stage")
	if err != nil {
		return fail(err)
	}
	if err := os.Remove(unsafeIO); err != nil {
		return fail(err)
	}
	// For good: no service may ever start in this root, whatever is installed later.
	if err := writeFile(filepath.Join(tmp, "usr/sbin/policy-rc.d"), "#!/bin/sh\n# No service starts in this root: the end-to-end suite starts what it runs.\nexit 101\n", 0o755); err != nil {
		return fail(err)
	}
	// The downloaded packages are installed; 150 MB the cache need not keep.
	debs, _ := filepath.Glob(filepath.Join(tmp, "var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		_ = os.Remove(d)
	}
	versions, err := exec.CommandContext(ctx, "dpkg-query", "--admindir="+filepath.Join(tmp, "var/lib/dpkg"),
		"-W", "-f=${Package} ${Version}\n").Output()
	if err != nil {
		return fail(fmt.Errorf("dpkg-query: %w", err))
	}
	if err := checkPins(spec, string(versions)); err != nil {
		if rerr := removeTree(tmp); rerr != nil {
			return errors.Join(err, rerr)
		}
		return fmt.Errorf("rootfs: building %s: %w", key, err)
	}
	var m bytes.Buffer
	fmt.Fprintf(&m, "# Built for patroni-vip-check's end-to-end suite; see e2e/rootfs.\nkey %s\nsuite %s\nvariant %s\narch %s\nmirror %s\nbuilt %s\ntook %.0fs\nrequested %s\n\n",
		key, spec.Suite, spec.Variant, o.Arch, o.Mirror, time.Now().UTC().Format(time.RFC3339), time.Since(t).Seconds(), strings.Join(spec.Packages, " "))
	m.Write(versions)
	// The manifest is the last file written: its presence is how Ensure knows a root is whole.
	if err := writeFile(filepath.Join(tmp, manifest), m.String(), 0o644); err != nil {
		return fail(err)
	}
	syscall.Sync()
	if err := os.Rename(tmp, dir); err != nil {
		return fail(err)
	}
	o.Logf("rootfs: built %s in %.0fs", dir, time.Since(t).Seconds())
	return nil
}

// prune removes the other roots of stack name (built from an older package list) that
// no run is using. Called with the build lock held.
func prune(o Options, name, keep string) {
	dirs, _ := filepath.Glob(filepath.Join(o.CacheDir, name+"-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() || filepath.Base(d) == keep {
			continue
		}
		f, err := os.OpenFile(d+".lock", os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // in use by another run: next time
			continue
		}
		o.Logf("rootfs: removing %s, built from another package list", d)
		if err := removeTree(d); err != nil {
			o.Logf("rootfs: %v", err)
		} else {
			_ = os.Remove(d + ".log")
			_ = os.Remove(d + ".lock")
		}
		f.Close()
	}
}

// removeTree removes dir, unless something is mounted inside it (in this process's mount
// namespace): removing a bind mount's contents would remove what it shows.
func removeTree(dir string) error {
	if m := mountsUnder(dir); len(m) > 0 {
		return fmt.Errorf("rootfs: not removing %s: mounted inside it: %s", dir, strings.Join(m, " "))
	}
	return os.RemoveAll(dir)
}

// mountsUnder lists the mount points at or below dir, from /proc/self/mountinfo.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return mountPointsUnder(string(b), dir)
}

func mountPointsUnder(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// run runs argv with a clean environment, its output appended to log. Cancelling ctx
// kills its whole process group (debootstrap's wget and dpkg too). If this process dies
// instead (a test binary that times out), the kernel kills argv's own process: stage 1's
// debootstrap, or stage 2's unshare, whose --kill-child takes the PID namespace down.
func run(ctx context.Context, log io.Writer, argv ...string) error {
	fmt.Fprintf(log, "=== %s %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	w := &stamped{w: log, start: time.Now(), bol: true}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// stamped prefixes each line with the seconds since start, to see where a build's time goes.
type stamped struct {
	w     io.Writer
	start time.Time
	bol   bool // at the beginning of a line
}

func (s *stamped) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if s.bol {
			fmt.Fprintf(&b, "%7.1f ", time.Since(s.start).Seconds())
		}
		b.WriteByte(c)
		s.bol = c == '\n'
	}
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // whatever the umask
}

// tail returns the last lines of a log, to put in an error.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
