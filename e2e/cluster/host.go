package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Preflight says why this machine cannot run a cluster, or nil: root, network
// namespaces and the programs used.
func Preflight(mode Mode) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, mounts, running PostgreSQL as postgres)")
	}
	progs := []string{"ip", "unshare", "setpriv", "etcd", "patroni", "patronictl", "psql", "mount"}
	switch mode {
	case ModeVIPManager:
		progs = append(progs, "vip-manager")
	case ModeCurl:
		progs = append(progs, "keepalived", "curl")
	default:
		progs = append(progs, "keepalived")
	}
	var missing []string
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing programs: %s (make deps installs them)", strings.Join(missing, " "))
	}
	if _, err := user.Lookup("postgres"); err != nil {
		return errors.New("no postgres user (the postgresql-15 package creates it)")
	}
	name := fmt.Sprintf("%s%d-preflight", Prefix, os.Getpid())
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
		if err := killNamespaces(stale, 20*time.Second); err != nil && logf != nil {
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
// else one built from this repository into dir.
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
	out := filepath.Join(dir, "patroni-vip-check")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, b)
	}
	return out, nil
}
