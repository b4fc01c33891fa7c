package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/rootfs"
)

// Stack is the software a cluster runs: Patroni, PostgreSQL, etcd, keepalived, their
// clients and the baselines' programs, either the host's own packages or those of a
// Debian root filesystem that every program of the cluster is chrooted into. What the
// harness must know about a version lives here, not in ifs on version numbers.
type Stack struct {
	Name string // "debian12", "debian13": names results, logs and subtests

	// Root is the root filesystem the programs run from: "/" for the host's own.
	// Paths below are inside it.
	Root string

	Patroni, Patronictl, Etcd, Keepalived, Curl string
	VIPManager                                  string // "" where the stack has none
	PGBinDir                                    string // initdb, pg_ctl, postgres, psql

	PatroniMajor int
	// KeepalivedVersion is the stack's keepalived, for reports.
	KeepalivedVersion string
	// PrimaryRole is the role Patroni's REST API gives a primary: "master" up to
	// Patroni 3, "primary" from 4.0.
	PrimaryRole string
	// MinTTL is the lowest DCS ttl Patroni accepts (Patroni 4 raises anything below 20
	// to 20, with a warning).
	MinTTL int
	// FractionalIntervals: the stack's keepalived (2.3.2 and later) takes a vrrp_script
	// interval and timeout in fractions of a second.
	FractionalIntervals bool

	root *rootfs.Root // held while the stack is open, so that no build removes it
}

// StackNames lists the stacks the suite knows, the host's first.
var StackNames = []string{"debian12", "debian13", "sid"}

// HostStack is Debian 12's packages on this (Debian 12) host: Patroni 3.0.2, PostgreSQL
// 15, etcd 3.4, keepalived 2.2.7, vip-manager 1.0.2. `make deps` installs them.
func HostStack() *Stack {
	return &Stack{
		Name: "debian12", Root: "/",
		Patroni: "/usr/bin/patroni", Patronictl: "/usr/bin/patronictl", Etcd: "/usr/bin/etcd",
		Keepalived: "/usr/sbin/keepalived", Curl: "/usr/bin/curl", VIPManager: "/usr/bin/vip-manager",
		PGBinDir:     "/usr/lib/postgresql/15/bin",
		PatroniMajor: 3, PrimaryRole: "master", MinTTL: 1, KeepalivedVersion: "2.2.7",
	}
}

// debian13 is Debian 13's packages in a root built by package rootfs (its package list
// is e2e/rootfs/debian13.packages): Patroni 4.0.7, PostgreSQL 17, etcd 3.5, keepalived
// 2.3.3, vip-manager 1.0.2.
func debian13(root string) *Stack {
	return &Stack{
		Name: "debian13", Root: root,
		Patroni: "/usr/bin/patroni", Patronictl: "/usr/bin/patronictl", Etcd: "/usr/bin/etcd",
		Keepalived: "/usr/sbin/keepalived", Curl: "/usr/bin/curl", VIPManager: "/usr/bin/vip-manager",
		PGBinDir:     "/usr/lib/postgresql/17/bin",
		PatroniMajor: 4, PrimaryRole: "primary", MinTTL: 20, FractionalIntervals: true, KeepalivedVersion: "2.3.3",
	}
}

// sid is Debian unstable's packages in a root built by package rootfs (its package list,
// e2e/rootfs/sid.packages, pins the versions the suite was proven on): Patroni 4.1,
// PostgreSQL 18, etcd 3.5, keepalived 2.3.4. Unstable has no vip-manager.
func sid(root string) *Stack {
	return &Stack{
		Name: "sid", Root: root,
		Patroni: "/usr/bin/patroni", Patronictl: "/usr/bin/patronictl", Etcd: "/usr/bin/etcd",
		Keepalived: "/usr/sbin/keepalived", Curl: "/usr/bin/curl",
		PGBinDir:     "/usr/lib/postgresql/18/bin",
		PatroniMajor: 4, PrimaryRole: "primary", MinTTL: 20, FractionalIntervals: true, KeepalivedVersion: "2.3.4",
	}
}

// StackOptions tune OpenStack.
type StackOptions struct {
	// RootCache is where roots are built and kept; default rootfs.DefaultCacheDir.
	RootCache string
	// Root, if set, is a root filesystem to use as it is instead of the cache's
	// (development: an existing debootstrap of the same packages).
	Root string
	Logf func(format string, args ...any)
}

// OpenStack returns the named stack, ready to run: for a stack from a root filesystem,
// the root is built first if the cache has none (a minute or two), and held until
// Close. Safe to call from concurrent tests and processes.
func OpenStack(ctx context.Context, name string, o StackOptions) (*Stack, error) {
	if name == "debian12" {
		return HostStack(), nil
	}
	stack, ok := rootStacks[name]
	if !ok {
		return nil, fmt.Errorf("unknown stack %q (known: %s)", name, strings.Join(StackNames, ", "))
	}
	if o.Root != "" {
		return stack(o.Root), nil
	}
	spec, err := rootfs.Lookup(name)
	if err != nil {
		return nil, err
	}
	r, err := rootfs.Ensure(ctx, spec, rootfs.Options{CacheDir: o.RootCache, Logf: o.Logf})
	if err != nil {
		return nil, err
	}
	s := stack(r.Dir)
	s.root = r
	return s, nil
}

// rootStacks are the stacks that run from a root filesystem of package rootfs, by name.
var rootStacks = map[string]func(root string) *Stack{"debian13": debian13, "sid": sid}

// Close releases the stack's root filesystem (it stays in the cache).
func (s *Stack) Close() error {
	if s.root == nil {
		return nil
	}
	return s.root.Close()
}

func (s *Stack) String() string { return s.Name }

// chrooted reports whether the stack's programs run from a root of their own.
func (s *Stack) chrooted() bool { return filepath.Clean(s.Root) != "/" }

// HostPath is where path, inside the stack's root, is seen from the host.
func (s *Stack) HostPath(path string) string { return filepath.Join(s.Root, path) }

// DefaultTTL is the ttl a cluster of this stack gets unless Options say otherwise: 10 s,
// short for quick failovers, or the stack's MinTTL if that is higher.
func (s *Stack) DefaultTTL() int { return max(10, s.MinTTL) }

// Psql is the stack's psql (its PostgreSQL's own, not Debian's pg_wrapper).
func (s *Stack) Psql() string { return s.PGBinDir + "/psql" }

// programs lists what mode needs of the stack.
func (s *Stack) programs(mode Mode) []string {
	progs := []string{s.Patroni, s.Patronictl, s.Etcd, s.Psql(), s.PGBinDir + "/postgres", s.PGBinDir + "/initdb",
		"/usr/bin/setpriv", "/usr/bin/env"}
	switch mode {
	case ModeVIPManager:
		progs = append(progs, s.VIPManager)
	case ModeCurl:
		progs = append(progs, s.Keepalived, s.Curl)
	default:
		progs = append(progs, s.Keepalived)
	}
	return progs
}

// missing lists the programs of mode that the stack lacks.
func (s *Stack) missing(mode Mode) []string {
	if mode == ModeVIPManager && s.VIPManager == "" {
		return []string{"vip-manager (" + s.Name + " has none)"}
	}
	var out []string
	for _, p := range s.programs(mode) {
		if fi, err := os.Stat(s.HostPath(p)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			out = append(out, p)
		}
	}
	return out
}

// lookupUser returns the uid and gid of user in the stack's own /etc/passwd: they
// differ between the host and a root (postgres is 101:104 on the host, 101:103 in
// Debian 13's), and the files a chrooted PostgreSQL owns must carry its own.
func (s *Stack) lookupUser(user string) (uid, gid int, err error) {
	b, err := os.ReadFile(s.HostPath("/etc/passwd"))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && f[0] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				return 0, 0, fmt.Errorf("%s: bad passwd line for %s", s.Name, user)
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("%s: no user %s in %s", s.Name, user, s.HostPath("/etc/passwd"))
}
