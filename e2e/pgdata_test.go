//go:build e2e

package e2e_test

// The watch with --pgdata: it wakes on PostgreSQL's own files (promote, standby.signal,
// postmaster.pid...) and asks Patroni at once, besides every --interval. Every watch
// scenario runs with it: node 1's watcher is given --pgdata by the harness (it runs the
// shipped example), nodes 2 and 3 run what the generator told them
// (cluster.GeneratedWatchArgs). These scenarios are about the directory itself.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// watchConfig is the command line node n's watcher runs, read with the watch's own
// grammar.
func watchConfig(t *testing.T, n *cluster.Node) cmdline.Config {
	t.Helper()
	return serviceConfig(t, n, n.Service())
}

// serviceConfig is the command line of node n's watcher svc (a template instance, say),
// read with the watch's own grammar.
func serviceConfig(t *testing.T, n *cluster.Node, svc *cluster.Service) cmdline.Config {
	t.Helper()
	if svc == nil {
		t.Fatalf("%s runs no watcher", n.Name)
	}
	argv := svc.Command()
	if len(argv) < 2 || argv[1] != "watch" {
		t.Fatalf("%s: the service runs %q, not the watch", n.Name, argv)
	}
	cfg, err := cmdline.Parse(cmdline.Watch, argv[2:])
	if err != nil {
		t.Fatalf("%s: the watcher's command line %q: %v", n.Name, argv, err)
	}
	return cfg
}

// watchesDataDir reports whether node n's watcher holds an inotify watch on its data
// directory as it is now (its inode: a directory removed and made again is a new one).
func watchesDataDir(n *cluster.Node) (bool, error) { return serviceWatchesDataDir(n, n.Service()) }

// serviceWatchesDataDir is watchesDataDir for node n's watcher svc.
func serviceWatchesDataDir(n *cluster.Node, svc *cluster.Service) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(n.DataDir(), &st); err != nil {
		return false, err
	}
	ins, err := system.Host{}.InotifyOf(svc.PID())
	if err != nil {
		return false, err
	}
	return slices.Contains(system.Watches(ins), system.Watch{Dev: st.Dev, Ino: st.Ino}), nil
}

// assertPGData: each node's watcher runs with --pgdata and its own data directory — node
// 1's from the harness, nodes 2 and 3's from the generator — and watches it.
func (s *suite) assertPGData(t *testing.T) {
	t.Helper()
	for _, n := range s.c.Nodes() {
		cfg := watchConfig(t, n)
		if cfg.PGData != n.DataDir() {
			from := "the generator's PATRONI_VIP_CHECK_ARGS"
			if n.Index == 1 {
				from = "the harness"
			}
			t.Errorf("%s: the watcher's --pgdata is %q, want %s (from %s)", n.Name, cfg.PGData, n.DataDir(), from)
			continue
		}
		if ok, err := watchesDataDir(n); err != nil || !ok {
			t.Errorf("%s: the watcher does not watch %s (%v): its inotify watches lack it", n.Name, n.DataDir(), err)
		}
	}
}

// followByEvents: over the switchovers of a scenario, the median time from the new
// primary's PostgreSQL saying it accepts connections to the VIP added there (from
// PostgreSQL's log and the kernel's address notifications, to the millisecond) is at
// most wokenBound. The watch hears of the promotion through the data directory; on polls
// alone every --interval (1 s), the median would be about half an interval more.
const wokenBound = 250 * time.Millisecond

func (s *suite) assertFollowByEvents(t *testing.T, follows []time.Duration) {
	t.Helper()
	if len(follows) == 0 {
		return
	}
	sorted := slices.Clone(follows)
	slices.Sort(sorted)
	med := sorted[len(sorted)/2]
	var ms []string
	for _, d := range follows {
		ms = append(ms, fmt.Sprintf("%.3f", d.Seconds()))
	}
	t.Logf("PostgreSQL ready to the VIP on it, each switchover: %s s (median %.3f s)", strings.Join(ms, " "), med.Seconds())
	if med > wokenBound {
		t.Errorf("median %v from PostgreSQL ready to the VIP on it over %d switchovers, want ≤ %v: the watch does not wake on the data directory",
			med, len(follows), wokenBound)
	}
}

// unreadableDropIn is a drop-in's lines: a unit whose watcher may not read postgres's
// 0700 data directory, as with a CapabilityBoundingSet= that leaves out
// CAP_DAC_READ_SEARCH.
const unreadableDropIn = "\n[Service]\nCapabilityBoundingSet=\n"

// pgdataUnreadable: the watchers cannot watch the data directory (their unit runs without
// CAP_DAC_READ_SEARCH). Each says so, with why, and asks Patroni on --interval alone; a
// switchover still moves the VIP, by the polls. Then the shipped unit again.
func (s *suite) pgdataUnreadable(t *testing.T) {
	s.requireHealthy(t)
	ctx := context.Background()
	shipped, err := os.ReadFile(filepath.Join(s.repo, "packaging", "patroni-vip-check.service"))
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	// The shipped unit again whatever happens, for the scenarios after this one.
	t.Cleanup(func() {
		s.restartWatchers(t, string(shipped))
		s.restore(t)
	})
	s.restartWatchers(t, string(shipped)+unreadableDropIn)
	for _, n := range s.c.Nodes() {
		want := "data directory " + n.DataDir() + ": cannot watch it (permission denied: the unit needs CAP_DAC_READ_SEARCH"
		found := false
		for _, l := range n.CheckLog(from) {
			found = found || strings.HasPrefix(l.Message, want)
		}
		if !found {
			t.Errorf("%s: the watcher did not say %q:\n%s", n.Name, want, joinLines(n.CheckLog(from)))
		}
		if ok, err := watchesDataDir(n); err != nil || ok {
			t.Errorf("%s: the watcher watches %s (%v) without CAP_DAC_READ_SEARCH", n.Name, n.DataDir(), err)
		}
	}
	leader, err := s.c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := fmt.Sprintf("n%d", s.c.Node(leader).Index%3+1)
	m := s.measure(t, cluster.Switchover(next))
	if m.New != next {
		t.Errorf("switchover to %s ended with primary %q", next, m.New)
	}
	s.assertMove(t, m)
}

// restartWatchers restarts every node's watcher from unit, the primary's last (its
// restart takes the VIP away for a moment), and waits for the cluster to be whole.
func (s *suite) restartWatchers(t *testing.T, unit string) {
	t.Helper()
	ctx := context.Background()
	leader, err := s.c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes := slices.Clone(s.c.Nodes())
	slices.SortStableFunc(nodes, func(a, b *cluster.Node) int {
		switch {
		case a.Name == leader:
			return 1
		case b.Name == leader:
			return -1
		}
		return 0
	})
	for _, n := range nodes {
		if err := n.RestartWatch(ctx, unit); err != nil {
			s.broken = t.Name()
			t.Fatalf("%s: restarting the watcher: %v", n.Name, err)
		}
	}
	if _, err := s.c.WaitHealthy(ctx, 60*time.Second); err != nil {
		s.broken = t.Name()
		t.Fatalf("after restarting the watchers: %v", err)
	}
}

// replicaRebuilt: `patronictl reinit` rebuilds a replica: Patroni stops its PostgreSQL,
// removes the data directory and takes a new base backup into a new one. The VIP stays
// where it is meanwhile; the replica's watcher, whose inotify watch went with the old
// directory, watches the new one (its watches, read from /proc, hold the new inode); and
// a switchover to the rebuilt replica moves the VIP as to any other.
func (s *suite) replicaRebuilt(t *testing.T) {
	s.requireHealthy(t)
	ctx := context.Background()
	leader, err := s.c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := s.c.Node(fmt.Sprintf("n%d", s.c.Node(leader).Index%3+1))
	var before syscall.Stat_t
	if err := syscall.Stat(r.DataDir(), &before); err != nil {
		t.Fatal(err)
	}
	if ok, err := watchesDataDir(r); err != nil || !ok {
		t.Fatalf("%s: the watcher does not watch %s before the reinit (%v)", r.Name, r.DataDir(), err)
	}
	from := time.Now()
	if _, err := s.c.Patronictl(ctx, "reinit", "--force", cluster.Scope, r.Name); err != nil {
		t.Fatal(err)
	}
	// A new directory, streaming again, and the watcher on it.
	deadline := time.Now().Add(150 * time.Second)
	rebuilt, watched := false, false
	for time.Now().Before(deadline) && !(rebuilt && watched) {
		var st syscall.Stat_t
		if !rebuilt && syscall.Stat(r.DataDir(), &st) == nil && st.Ino != before.Ino {
			if _, err := s.c.WaitHealthy(ctx, time.Until(deadline)); err != nil {
				s.broken = t.Name()
				t.Fatalf("%s rebuilt: %v", r.Name, err)
			}
			rebuilt = true
		}
		if rebuilt {
			watched, _ = watchesDataDir(r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case !rebuilt:
		s.broken = t.Name()
		t.Fatalf("%s: no new data directory %v after patronictl reinit", r.Name, time.Since(from).Round(time.Second))
	case !watched:
		t.Errorf("%s: the watcher does not watch the new data directory %v after patronictl reinit:\n%s",
			r.Name, time.Since(from).Round(time.Second), joinLines(r.CheckLog(from)))
	}
	t.Logf("%s rebuilt and watched again %.1fs after patronictl reinit; the watcher said:\n%s",
		r.Name, time.Since(from).Seconds(), joinLines(r.CheckLog(from)))
	// Meanwhile the VIP stayed on the primary alone.
	m := s.c.Timeline(from, time.Now()).Analyze(from, leader)
	m.Scenario = "reinit of " + r.Name
	if m.ToVIPGone >= 0 || m.Double > 0 {
		t.Errorf("while %s was rebuilt: the VIP left %s after %v, on two nodes for %v", r.Name, leader, m.ToVIPGone, m.Double)
	}
	s.assertWrites(t, m)
	mv := s.measure(t, cluster.Switchover(r.Name))
	if mv.New != r.Name {
		t.Errorf("switchover to %s ended with primary %q", r.Name, mv.New)
	}
	s.assertMove(t, mv)
	s.restore(t)
}
