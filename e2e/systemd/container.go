// Package systemd boots a real systemd as the init of a throwaway container, so that the
// end-to-end suite can run the shipped unit files under the service manager they are
// written for: its sandboxing (ProtectSystem=, CapabilityBoundingSet=, SystemCallFilter=,
// ...), its notify and watchdog handling, its journal, its `systemd-analyze security`.
//
// The machines this suite runs on have no systemd running (PID 1 is something else) and no
// systemd-nspawn. A container here is what systemd's container interface asks for
// (systemd.io/CONTAINER_INTERFACE), made from plain namespaces: new PID, mount, UTS, IPC,
// network and cgroup namespaces; a root filesystem from e2e/rootfs under an overlay whose
// upper layer is thrown away; its own subtree of the host's cgroup v2 hierarchy; a bounding
// set of capabilities like systemd-nspawn's. Nothing is mounted in the host's mount
// namespace, no service runs on the host, the host's /dev/log and /run are never touched.
// Everything a container made (processes, mounts, cgroups, files) goes with Close; its
// names carry the PID of the process that made it.
package systemd

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

//go:embed boot.sh
var bootScript string

// capabilities is the bounding set of the container's systemd: systemd-nspawn's default
// (arg_caps_retain in its nspawn.c), plus CAP_NET_ADMIN, which nspawn adds for a private
// network. Nothing in the container may load modules, set the clock, do raw I/O or read the
// kernel log of the host.
const capabilities = "-all,+audit_control,+audit_write,+chown,+dac_override,+dac_read_search," +
	"+fowner,+fsetid,+ipc_owner,+kill,+lease,+linux_immutable,+mknod,+net_bind_service," +
	"+net_broadcast,+net_raw,+setfcap,+setgid,+setpcap,+setuid,+sys_admin,+sys_boot," +
	"+sys_chroot,+sys_nice,+sys_ptrace,+sys_resource,+sys_tty_config,+net_admin"

// masked units would fail or reach the host's kernel: no terminal is attached for a getty,
// and the kernel's debug, trace, config and fuse file systems are not the container's.
var masked = []string{
	"console-getty.service",
	"sys-kernel-debug.mount",
	"sys-kernel-tracing.mount",
	"sys-kernel-config.mount",
	"sys-fs-fuse-connections.mount",
}

// Bind is a host path shown inside the container.
type Bind struct {
	Source   string // on the host
	Target   string // inside the container
	ReadOnly bool
}

// File is written into the container's root before it boots.
type File struct {
	Path string // inside the container
	Data string
	Mode fs.FileMode
}

// Config says what to boot.
type Config struct {
	Root  string // root filesystem (read-only lower layer), with systemd in /lib/systemd/systemd
	Binds []Bind
	Files []File
	Logf  func(format string, args ...any) // progress; nil is silent
}

// Container is one booted systemd. Its methods may be called from any goroutine.
type Container struct {
	Name    string // pvc-e2e-systemd-PID-N, also the name of its directory and cgroup
	dir     string // on the host: upper/, work/, merged/ (the mount point, used only inside), console
	cgroup  string // its cgroup directory on the host
	pid     int    // the host's PID of the container's PID 1
	exited  chan struct{}
	waitErr error
	logf    func(string, ...any)
}

var serial atomic.Int32

// Boot starts a container and waits until its systemd has finished booting. The boot must
// reach "running": a failed unit at boot is an error that says which.
func Boot(ctx context.Context, cfg Config) (_ *Container, err error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "lib/systemd/systemd")); err != nil {
		return nil, fmt.Errorf("systemd: %s has no systemd: %w", cfg.Root, err)
	}
	cgroup2, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	c := &Container{
		Name:   fmt.Sprintf("pvc-e2e-systemd-%d-%d", os.Getpid(), serial.Add(1)),
		exited: make(chan struct{}),
		logf:   cfg.Logf,
	}
	c.dir = filepath.Join(os.TempDir(), c.Name)
	c.cgroup = filepath.Join(cgroup2, c.Name)
	sweep(cfg.Logf, os.TempDir(), cgroup2)
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("systemd: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "console"), nil, 0o600); err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	// Written into the upper layer: the root in the cache is never changed.
	files := slices.Clone(cfg.Files)
	for _, u := range masked {
		files = append(files, File{Path: "/etc/systemd/system/" + u, Mode: fs.ModeSymlink, Data: "/dev/null"})
	}
	for _, f := range files {
		if err := writeInto(filepath.Join(c.dir, "upper"), f); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(c.cgroup, 0o755); err != nil {
		return nil, fmt.Errorf("systemd: making its cgroup: %w", err)
	}

	args := []string{"-c", bootScript, "boot.sh", cfg.Root, c.dir, c.cgroup, capabilities}
	for _, b := range cfg.Binds {
		if !filepath.IsAbs(b.Target) || strings.ContainsAny(b.Source+b.Target, "\n") {
			return nil, fmt.Errorf("systemd: bad bind %q -> %q", b.Source, b.Target)
		}
		mode := "rw"
		if b.ReadOnly {
			mode = "ro"
		}
		args = append(args, b.Source, b.Target, mode)
	}
	log, err := os.Create(filepath.Join(c.dir, "boot.log"))
	if err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	defer log.Close()
	started := make(chan error, 1)
	go c.run(args, log, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("systemd: starting the container: %w", err)
	}
	cfg.Logf("systemd: %s: booting %s as PID %d", c.Name, cfg.Root, c.pid)

	t := time.Now()
	state, err := c.waitBooted(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if state != "running" {
		failed, _ := c.Systemctl(ctx, "--failed", "--no-legend", "--plain")
		return nil, fmt.Errorf("systemd: %s booted %s, failed units: %s", c.Name, state, strings.TrimSpace(failed))
	}
	cfg.Logf("systemd: %s: booted in %.2fs", c.Name, time.Since(t).Seconds())
	return c, nil
}

// run starts the container's init and waits for it, on a goroutine locked to its thread:
// the init is killed (Pdeathsig) when the thread that started it ends, which then happens
// only when the init has ended or this process has.
func (c *Container) run(args []string, log *os.File, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		Pdeathsig: syscall.SIGKILL,
		Setsid:    true,
	}
	if err := cmd.Start(); err != nil {
		started <- err
		close(c.exited)
		return
	}
	c.pid = cmd.Process.Pid
	started <- nil
	c.waitErr = cmd.Wait()
	close(c.exited)
}

// waitBooted waits for the manager's socket, then for the boot to end, and returns the
// system's state ("running", "degraded", ...).
func (c *Container) waitBooted(ctx context.Context, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sock := c.Path("/run/systemd/private")
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-c.exited:
			return "", fmt.Errorf("systemd: %s: its init ended while booting (%v): %s", c.Name, c.waitErr, c.bootLog())
		case <-ctx.Done():
			return "", fmt.Errorf("systemd: %s: no manager socket after %v: %s", c.Name, timeout, c.bootLog())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// --wait returns when the boot has ended; its exit status is 0 only for "running".
	out, err := c.Run(ctx, "systemctl", "is-system-running", "--wait")
	state := strings.TrimSpace(out)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) || state == "" {
		return "", fmt.Errorf("systemd: %s: is-system-running: %v: %s", c.Name, err, c.bootLog())
	}
	return state, nil
}

// bootLog is what the boot script and systemd's console said, for an error.
func (c *Container) bootLog() string {
	var b strings.Builder
	for _, f := range []string{"boot.log", "console"} {
		data, _ := os.ReadFile(filepath.Join(c.dir, f))
		fmt.Fprintf(&b, "\n--- %s:\n%s", f, tail(string(data), 40))
	}
	return b.String()
}

// PID is the host's PID of the container's init.
func (c *Container) PID() int { return c.pid }

// Path is where the host sees path of the container's file system (through /proc, so
// valid while the container runs).
func (c *Container) Path(path string) string {
	return filepath.Join("/proc", strconv.Itoa(c.pid), "root", path)
}

// NetNS is the container's network namespace, for setns(2) or `ip netns exec`-like use.
func (c *Container) NetNS() string {
	return filepath.Join("/proc", strconv.Itoa(c.pid), "ns", "net")
}

// Close powers the container off, kills whatever is left of it, and removes its cgroups
// and directory. It is safe to call more than once.
func (c *Container) Close() error {
	var errs []error
	if c.pid > 0 {
		select {
		case <-c.exited:
		default:
			// SIGRTMIN+4 is systemd's "poweroff": units stop, their ExecStopPost= run.
			_ = syscall.Kill(c.pid, syscall.Signal(34+4))
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				c.logf("systemd: %s did not power off within 10s; killing its PID 1", c.Name)
				_ = syscall.Kill(c.pid, syscall.SIGKILL) // the kernel then kills its whole PID namespace
				<-c.exited
			}
		}
	}
	if c.cgroup != "" {
		if err := removeCgroup(c.cgroup); err != nil {
			errs = append(errs, err)
		} else {
			c.cgroup = ""
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("systemd: %w", err))
		} else {
			c.dir = ""
		}
	}
	return errors.Join(errs...)
}

// sweep removes what containers of a process that no longer runs left behind (it was
// killed before it could Close them): their cgroups, empty once their PID namespace died,
// and their directories, unless something is still mounted there. Only names of this
// package with the PID of a process that is gone are touched.
func sweep(logf func(string, ...any), tmp, cgroup2 string) {
	for _, base := range []string{tmp, cgroup2} {
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			var pid, n int
			if _, err := fmt.Sscanf(e.Name(), "pvc-e2e-systemd-%d-%d", &pid, &n); err != nil || !e.IsDir() || pid == os.Getpid() {
				continue
			}
			if syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // running (or not ours to ask): not stale
			}
			p := filepath.Join(base, e.Name())
			var err error
			if base == cgroup2 {
				err = removeCgroup(p)
			} else if m := mountsUnder(p); len(m) > 0 {
				err = fmt.Errorf("mounted inside: %s", strings.Join(m, " "))
			} else {
				err = os.RemoveAll(p)
			}
			if err != nil {
				logf("systemd: leaving %s, left by PID %d: %v", p, pid, err)
			} else {
				logf("systemd: removed %s, left by PID %d, which is gone", p, pid)
			}
		}
	}
}

// mountsUnder lists the mount points at or below dir in this process's mount namespace.
func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// removeCgroup removes a cgroup directory and those below it, deepest first, once the
// processes in them are gone.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	slices.Reverse(dirs)
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range dirs {
		for {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			// EBUSY until the last process of a killed PID namespace is reaped.
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("systemd: removing cgroup %s: %w", d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// cgroup2Mount finds where the host mounts its cgroup v2 hierarchy: /sys/fs/cgroup on a
// unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("systemd: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 && f[3] == "/" {
			return f[4], nil
		}
	}
	return "", errors.New("systemd: the host mounts no cgroup v2 hierarchy; a container's systemd needs one")
}

// writeInto writes f into the directory tree base.
func writeInto(base string, f File) error {
	if !filepath.IsAbs(f.Path) {
		return fmt.Errorf("systemd: %q is not an absolute path", f.Path)
	}
	p := filepath.Join(base, f.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	if f.Mode&fs.ModeSymlink != 0 {
		if err := os.Symlink(f.Data, p); err != nil {
			return fmt.Errorf("systemd: %w", err)
		}
		return nil
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	if err := os.WriteFile(p, []byte(f.Data), mode); err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	return os.Chmod(p, mode)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
