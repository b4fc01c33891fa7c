package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Preflight says why this machine cannot run a cluster of stack (nil: the host's) in
// mode, or nil: root, network namespaces, the host's tools that place programs, and the
// stack's programs and postgres user.
func Preflight(mode Mode, stack *Stack) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, mounts, running PostgreSQL as postgres)")
	}
	if stack == nil {
		stack = HostStack()
	}
	var missing []string
	// systemd-tmpfiles: the host's makes each node's /run directories from the packaged
	// entry; nft cuts a node from the DCS (CutFromDCS).
	for _, p := range []string{"ip", "unshare", "setpriv", "mount", "chroot", "sh", "systemd-tmpfiles", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	missing = append(missing, stack.missing(mode)...)
	if len(missing) > 0 {
		hint := "make deps installs them"
		if stack.chrooted() {
			hint = "in " + stack.Root + "; make rootfs rebuilds it"
		}
		return fmt.Errorf("%s: missing programs: %s (%s)", stack.Name, strings.Join(missing, " "), hint)
	}
	if _, _, err := stack.lookupUser("postgres"); err != nil {
		return fmt.Errorf("%w (the postgresql package creates it)", err)
	}
	// Numbered: clusters of two stacks may be starting at once.
	name := fmt.Sprintf("%s%d-preflight-%d", Prefix, os.Getpid(), clusterSeq.Add(1))
	if err := ipCmd(context.Background(), "netns", "add", name); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	return ipCmd(context.Background(), "netns", "del", name)
}

// CleanStale removes namespaces and run directories left by processes of this package
// that are gone (a crashed or killed run); those of live processes are left alone.
func CleanStale(logf func(string, ...any)) {
	alive := func(name string) bool {
		rest := strings.TrimPrefix(name, Prefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			return true // not ours to judge
		}
		if pid == os.Getpid() {
			return true
		}
		err = syscall.Kill(pid, 0)
		return err == nil || errors.Is(err, syscall.EPERM)
	}
	ents, _ := os.ReadDir(netnsDir)
	var stale []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), Prefix) && !alive(e.Name()) {
			stale = append(stale, e.Name())
		}
	}
	if len(stale) > 0 {
		if logf != nil {
			logf("removing namespaces left by an earlier run: %s", strings.Join(stale, " "))
		}
		if err := killNamespaces(stale, 20*time.Second, nil); err != nil && logf != nil {
			logf("cleaning stale namespaces: %v", err)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), Prefix+"*"))
	for _, d := range dirs {
		if !alive(filepath.Base(d)) {
			if logf != nil {
				logf("removing %s left by an earlier run", d)
			}
			_ = os.RemoveAll(d)
		}
	}
}

// RepoRoot finds the repository root (the directory holding go.mod) from the working
// directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CheckBinary returns the patroni-vip-check to test: $PVC_BIN if set (an absolute path),
// else one built from this repository into dir. patroni-vip-check-setup, which runs its
// keepalived-conf and doctor, is beside it.
func CheckBinary(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv("PVC_BIN"); p != "" {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("PVC_BIN must be an absolute path, not %q", p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PVC_BIN: %w", err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	for _, pkg := range []string{".", "./cmd/patroni-vip-check-setup"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+"/", pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", pkg, err, b)
		}
	}
	return filepath.Join(dir, "patroni-vip-check"), nil
}
