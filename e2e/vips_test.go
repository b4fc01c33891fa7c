//go:build e2e

package e2e_test

// The watch with more than one VIP, as keepalived-conf writes it and the template unit
// runs it: node 1 runs packaging/keepalived-read-vip.conf (the primary's VIP and a read
// VIP held by a replica at most 16MB behind), nodes 2 and 3 the generator's
// --replica-vip output, and every node an IPv6 VIP in a configuration of its own
// (--instance v6, included). Each node runs three watchers: patroni-vip-check.service
// and two instances of patroni-vip-check@.service, @replica and @v6. Every scenario
// judges the read VIP against PostgreSQL as the primary's is judged: never on a node
// that accepts writes (beyond the gate's reaction), never on two.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// vipsSetup names the set-up in subtests and in PVC_SETUPS.
const vipsSetup = "vips"

// vipsSuite is the state of the set-up's scenarios.
type vipsSuite struct {
	*suite
	moves []cluster.VIPMovements
}

// readGoneBound: from a replica that stops qualifying at once (stopped, promoted, its
// watcher killed) to the read VIP gone, as the primary's VIP leaves a node that stops
// accepting writes (gateBound: two polls of the read VIP's watcher as node 1 runs it, a
// poll's deadline, the samplers, a loaded machine). A stop or a promotion wakes the
// watcher through PostgreSQL's files well before that; a lag changes none of them.
func (s *vipsSuite) readGoneBound(t *testing.T) time.Duration {
	n1 := s.c.Node("n1")
	cfg := serviceConfig(t, n1, n1.Instance(cluster.ReadInstance))
	return gateBound(cfg.Interval, cfg.Timeout)
}

// readLagBound: from the commit that puts a replica past the bound to the read VIP gone.
// Patroni before 4.1 compares the replica's replay with the position the leader last
// wrote to the DCS: the leader writes it at its next loop, the replica reads it at its own
// next loop (two loop_waits), then as readGoneBound.
func (s *vipsSuite) readLagBound(t *testing.T) time.Duration {
	return 2*time.Second + s.readGoneBound(t) // loop_wait 1 s, the cluster's default
}

// runVIPs brings up the set-up's cluster on the stack and runs its scenarios in order,
// then prints how each VIP moved.
func (s *suite) runVIPs(t *testing.T, logDir string) {
	v := &vipsSuite{suite: s}
	c := s.bringUp(t, logDir, cluster.Options{Mode: cluster.ModeWatch, ReadVIP: true, IPv6VIP: true})
	sc := &scenarios{t: t}
	run := sc.run
	run("start", v.start)
	run("read VIP's replica stopped", v.replicaStopped)
	run("read VIP's replica lagging", v.replicaLagging)
	run("kill -9 of the read VIP's watcher", v.readWatcherKilled)
	run("switchover, the read VIP stays", v.switchoverElsewhere)
	run("switchover to the read VIP's replica", v.switchoverToReadReplica)
	if err := c.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}
	fmt.Printf("\n%s: VIP movements, seconds from each trigger (primary: its VIP; read: the read VIP, from the replica that "+
		"held it to the one that holds it; writable: on a node whose PostgreSQL accepted writes; v6: the IPv6 VIP):\n%s\n%s: %d passed, %d failed\n",
		t.Name(), cluster.FormatVIPMovements(v.moves), t.Name(), sc.passed, sc.failed)
}

// watchers are the units each node runs, and what each asks.
func watchers(n *cluster.Node) map[string]string {
	return map[string]string{
		"patroni-vip-check":                         n.PrimaryURL(),
		"patroni-vip-check@" + cluster.ReadInstance: n.ReadURL(),
		"patroni-vip-check@" + cluster.IPv6Instance: n.IPv6URL(),
	}
}

// start: node 1 runs the shipped read VIP example, keepalived kept every track file, each
// node runs its three watchers, each keeping its own file and logging its first state
// once; the primary's VIP and the IPv6 VIP are on the primary, the read VIP on a
// streaming replica, and a client reaches each through it.
func (v *vipsSuite) start(t *testing.T) {
	c := v.c
	ctx := context.Background()
	if got := c.KeepalivedConf(1); !strings.HasPrefix(got, v.example) {
		t.Errorf("node 1 does not run packaging/keepalived-read-vip.conf verbatim")
	}
	leader, err := c.Leader(ctx)
	if err != nil || leader != "n1" {
		t.Fatalf("first primary is %q (%v), want n1: it bootstrapped alone", leader, err)
	}
	if err := c.WaitVIPs(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		log, err := n.AgentLog()
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"does not exist - removing", "not found", "Cannot specify label", "duplicate VRID", "onfiguration error"} {
			if strings.Contains(log, bad) {
				t.Errorf("%s: keepalived says %q (%s)", n.Name, bad, n.AgentLogPath())
			}
		}
		// Three watchers, each its own process, each started once.
		units := map[string]*cluster.Service{"patroni-vip-check": n.Service()}
		for _, svc := range n.Instances() {
			units[svc.Name()] = svc
		}
		pids := map[int]string{}
		for name := range watchers(n) {
			svc := units[name]
			if svc == nil {
				t.Errorf("%s: %s does not run", n.Name, name)
				continue
			}
			if other, ok := pids[svc.PID()]; ok {
				t.Errorf("%s: %s and %s are one process", n.Name, name, other)
			}
			pids[svc.PID()] = name
			var did []string
			for _, e := range svc.Events(time.Time{}) {
				did = append(did, e.What)
			}
			if !slices.Equal(did, []string{"start", "ready"}) {
				t.Errorf("%s: %s did %v, want start, ready", n.Name, name, did)
			}
			// Each asks its own URL and wakes on the node's data directory, as the
			// generator's comments (the example's on node 1) say.
			cfg := serviceConfig(t, n, svc)
			if cfg.URL != watchers(n)[name] || cfg.PGData != n.DataDir() {
				t.Errorf("%s: %s asks %s with --pgdata %q, want %s with %s", n.Name, name, cfg.URL, cfg.PGData, watchers(n)[name], n.DataDir())
			} else if ok, err := serviceWatchesDataDir(n, svc); err != nil || !ok {
				t.Errorf("%s: %s does not watch %s (%v)", n.Name, name, n.DataDir(), err)
			}
		}
		// Each keeps its own file: the primary's and the IPv6 VIP's say 1 on the
		// primary alone, the read VIP's on the replicas alone.
		onPrimary := map[bool]string{true: "1", false: "0"}
		for _, f := range []struct{ name, got, want string }{
			{"eligible", n.TrackFile(), onPrimary[n.Name == leader]},
			{cluster.ReadInstance, n.InstanceTrackFile(cluster.ReadInstance), onPrimary[n.Name != leader]},
			{cluster.IPv6Instance, n.InstanceTrackFile(cluster.IPv6Instance), onPrimary[n.Name == leader]},
		} {
			if f.got != f.want {
				t.Errorf("%s: the track file %s says %q, want %q", n.Name, f.name, f.got, f.want)
			}
		}
		// Each logged its first state once, naming its URL.
		for name, url := range watchers(n) {
			want := "not primary"
			switch {
			case strings.Contains(url, "/replica") && n.Name != leader:
				want = "replica"
			case strings.Contains(url, "/replica"):
				want = "not replica"
			case n.Name == leader:
				want = "primary"
			}
			lines, _ := cluster.WithoutStalls(cluster.LinesFor(n.CheckLog(time.Time{}), url))
			lines = slices.DeleteFunc(lines, cluster.WatchFileLine)
			if len(lines) != 1 {
				t.Errorf("%s: %s logged %d lines since start, want 1:\n%s", n.Name, name, len(lines), joinLines(lines))
				continue
			}
			if st, _ := cluster.CheckState(lines[0]); st != want {
				t.Errorf("%s: %s's first line says %q, want %q: %s", n.Name, name, st, want, lines[0].Message)
			}
		}
	}
	v.assertVIPOnPrimary(t, leader)
	v.assertReadOnReplica(t)
	v.assertIPv6OnPrimary(t, leader)
	tl := c.Timeline(time.Time{}, time.Now())
	m := tl.Analyze(time.Time{}, leader)
	m.Scenario = "since keepalived started"
	v.assertWrites(t, m)
	r := tl.AnalyzeRead(time.Time{}, "")
	v.assertRead(t, m.Scenario, r)
	if r.Double > 0 || r.OnWritable > 0 {
		t.Errorf("since keepalived started: the read VIP on two nodes for %v, on a node that accepted writes for %v", r.Double, r.OnWritable)
	}
	t.Logf("the read VIP is on %s; nowhere for %v since keepalived started", r.New, r.Nowhere)
}

// replicaStopped: the read VIP's replica stops (Patroni stopped gracefully): the read VIP
// leaves it for the other replica at once, the primary's VIPs do not move, and once the
// stopped replica is back, the read VIP stays where it is (equal priorities, no
// preemption).
func (v *vipsSuite) replicaStopped(t *testing.T) {
	vm := v.measure(t, cluster.StopReadReplica(), true)
	v.assertReadLeft(t, vm, v.readGoneBound(t), vm.Read.ToGone)
	v.assertPrimaryStays(t, vm)
	v.restoreKeepsRead(t, vm.Read.New)
}

// replicaLagging: the read VIP's replica lags past the bound (its replay held back by a
// conflicting query, 24 MiB written on the primary): the read VIP leaves it within
// Patroni's loop while its watcher says no, and once it has caught up the read VIP stays
// where it went.
func (v *vipsSuite) replicaLagging(t *testing.T) {
	t.Cleanup(v.c.ReleaseReplays)
	vm := v.measure(t, cluster.LagReadReplica(), true)
	// From the commit that put it past the bound.
	fromCommit := vm.Read.ToGone - vm.Fired
	if vm.Read.ToGone < 0 {
		fromCommit = -1
	}
	v.assertReadLeft(t, vm, v.readLagBound(t), fromCommit)
	t.Logf("the write took %v; the read VIP left %s %s after its commit", vm.Fired.Round(time.Millisecond), vm.Read.Old, sec(fromCommit))
	old := v.c.Node(vm.Read.Old)
	if old == nil {
		t.Fatalf("no replica held the read VIP before")
	}
	if f := old.InstanceTrackFile(cluster.ReadInstance); f != "0" {
		t.Errorf("%s lags, yet its watcher's file says %q", old.Name, f)
	}
	v.assertPrimaryStays(t, vm)
	// Caught up, it qualifies again; the read VIP stays where it went.
	v.c.ReleaseReplays()
	deadline := time.Now().Add(30 * time.Second)
	for old.InstanceTrackFile(cluster.ReadInstance) != "1" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if f := old.InstanceTrackFile(cluster.ReadInstance); f != "1" {
		t.Errorf("%s caught up, yet its watcher's file says %q after 30 s", old.Name, f)
	}
	v.restoreKeepsRead(t, vm.Read.New)
}

// readWatcherKilled: kill -9 of the read VIP replica's watcher (patroni-vip-check@replica).
// Its command after stop removes its file, the read VIP leaves for the other replica, the
// service starts the watcher again, and the node's other watchers go on untouched.
func (v *vipsSuite) readWatcherKilled(t *testing.T) {
	h, err := v.c.ReadHolder()
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, svc := range append(h.Instances(), h.Service()) {
		before[svc.Name()] = svc.PID()
	}
	vm := v.measure(t, cluster.KillReadWatcher(), true)
	v.assertReadLeft(t, vm, time.Second, vm.Read.ToGone) // as the primary's after a kill -9 of its watcher
	v.assertPrimaryStays(t, vm)
	for _, svc := range append(h.Instances(), h.Service()) {
		var did []string
		for _, e := range svc.Events(vm.Trigger) {
			did = append(did, e.What)
		}
		if svc.Name() == "patroni-vip-check@"+cluster.ReadInstance {
			for _, want := range []string{"exit", "stop-post", "start", "ready"} {
				if !slices.Contains(did, want) {
					t.Errorf("%s: %s did %v, want exit, stop-post, start, ready", h.Name, svc.Name(), did)
					break
				}
			}
			continue
		}
		if len(did) > 0 || svc.PID() != before[svc.Name()] {
			t.Errorf("%s: %s, beside the killed watcher, did %v (pid %d, was %d)", h.Name, svc.Name(), did, svc.PID(), before[svc.Name()])
		}
	}
	if f := h.InstanceTrackFile(cluster.ReadInstance); f != "1" {
		t.Errorf("%s: the restarted watcher's file says %q, want 1", h.Name, f)
	}
	v.restoreKeepsRead(t, vm.Read.New)
}

// switchoverElsewhere: a switchover to the replica without the read VIP. The primary's
// VIP and the IPv6 VIP follow it as they always do; the read VIP stays on its replica the
// whole time.
func (v *vipsSuite) switchoverElsewhere(t *testing.T) {
	h, err := v.c.ReadHolder()
	if err != nil {
		t.Fatal(err)
	}
	leader, err := v.c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var next string
	for _, n := range v.c.Nodes() {
		if n.Name != leader && n != h {
			next = n.Name
		}
	}
	vm := v.measure(t, cluster.Switchover(next), false)
	v.assertFollowed(t, vm, next)
	r := vm.Read
	if r.ToGone >= 0 || r.Nowhere > 0 || r.New != h.Name {
		t.Errorf("%s: the read VIP left %s at %s, was nowhere for %v, ended on %q: it should have stayed", vm.Scenario, h.Name, sec(r.ToGone), r.Nowhere, r.New)
	}
	v.assertRead(t, vm.Scenario, r)
	v.restore(t)
	v.assertReadOnReplica(t)
}

// switchoverToReadReplica: a switchover to the read VIP's replica. The primary's VIP and
// the IPv6 VIP follow it; the read VIP leaves it as it is promoted, before it takes
// writes (within the gate's reaction), for the other replica.
func (v *vipsSuite) switchoverToReadReplica(t *testing.T) {
	h, err := v.c.ReadHolder()
	if err != nil {
		t.Fatal(err)
	}
	vm := v.measure(t, cluster.Switchover(h.Name), true)
	v.assertFollowed(t, vm, h.Name)
	r := vm.Read
	if r.ToGone < 0 || r.New == h.Name {
		t.Errorf("%s: the read VIP stayed on %s, now the primary (ends on %q)", vm.Scenario, h.Name, r.New)
	}
	t.Logf("%s: the read VIP left %s %s after the switchover began (Patroni had it as the primary at %s); on a node that accepted writes for %v, on a primary for %v",
		vm.Scenario, h.Name, sec(r.ToGone), sec(vm.ToPrimary), r.OnWritable, r.OnPrimary)
	v.assertRead(t, vm.Scenario, r)
	v.restore(t)
	v.assertReadOnReplica(t)
}

// measure fires tr, waits for every VIP to settle, records the movements for the table
// and logs the timeline.
func (v *vipsSuite) measure(t *testing.T, tr cluster.Trigger, readLeaves bool) cluster.VIPMovements {
	t.Helper()
	v.requireHealthy(t)
	ctx := context.Background()
	if _, err := v.c.WaitHealthy(ctx, 90*time.Second); err != nil {
		t.Fatalf("before %s: %v", tr.Name, err)
	}
	if err := v.c.WaitVIPs(ctx, 60*time.Second); err != nil {
		t.Fatalf("before %s: %v", tr.Name, err)
	}
	vm, err := v.c.MeasureVIPs(ctx, tr, readLeaves)
	v.moves = append(v.moves, vm)
	r := vm.Read
	t.Logf("%s: primary %s→%s (VIP on new %s after it was primary), read VIP %s→%s (gone %s, on new %s, nowhere %v, "+
		"double %v, on writable %v), IPv6 VIP on new %s after it was primary\n%s",
		vm.Scenario, vm.Old, vm.New, sec(vm.FollowDelay()), r.Old, r.New, sec(r.ToGone), sec(r.ToOnNew), sec(r.Nowhere),
		sec(r.Double), sec(r.OnWritable), sec(vm.IPv6.FollowDelay()), vm.Timeline.Format(vm.Trigger))
	if err != nil {
		t.Errorf("%v", err)
	}
	return vm
}

// assertReadLeft: the read VIP left its replica within bound (gone, measured from the
// moment the replica stopped qualifying), for another replica, and moved as assertRead
// says.
func (v *vipsSuite) assertReadLeft(t *testing.T, vm cluster.VIPMovements, bound, gone time.Duration) {
	t.Helper()
	r := vm.Read
	if gone < 0 || gone > bound {
		t.Errorf("%s: the read VIP left %s after %s, want ≤ %v", vm.Scenario, r.Old, sec(gone), bound)
	}
	if r.New == r.Old || r.New == "" {
		t.Errorf("%s: the read VIP ended on %q, want another replica than %s", vm.Scenario, r.New, r.Old)
	}
	v.assertRead(t, vm.Scenario, r)
}

// assertRead: what every scenario asserts of the read VIP against PostgreSQL: never on
// two nodes, never on a node that accepts writes for longer than the gate's reaction,
// settled on a replica.
func (v *vipsSuite) assertRead(t *testing.T, scenario string, r cluster.ReadMovement) {
	t.Helper()
	if r.Double > 0 {
		t.Errorf("%s: the read VIP on two nodes for %v", scenario, r.Double)
	}
	if b := v.readGoneBound(t); r.LongestOnWritable > b {
		t.Errorf("%s: the read VIP on a node whose PostgreSQL accepted writes for %v at a stretch (%v in all), want ≤ %v",
			scenario, r.LongestOnWritable, r.OnWritable, b)
	}
	if !r.Settled {
		t.Errorf("%s: the read VIP did not settle on a replica (ends on %q)", scenario, r.New)
	}
}

// assertReadOnReplica: the read VIP is on one node, a replica that streams from the
// primary, and a client that connects to it reaches that replica, in recovery. Call it
// on a whole cluster: a replica that has just changed primaries qualifies before it
// streams again (Patroni's /replica asks for the lag, not for streaming).
func (v *vipsSuite) assertReadOnReplica(t *testing.T) {
	t.Helper()
	h, err := v.c.ReadHolder()
	if err != nil {
		t.Error(err)
		return
	}
	if !v.c.Streams(context.Background(), h) {
		t.Errorf("the read VIP is on %s, which does not stream from the primary", h.Name)
	}
	a, err := v.c.QueryAddr(context.Background(), cluster.ReadVIP)
	if err != nil {
		t.Errorf("client through the read VIP: %v", err)
		return
	}
	if a.Node != h.Name || !a.InRecovery {
		t.Errorf("client through the read VIP reached %s (in recovery %v), want replica %s", a.Node, a.InRecovery, h.Name)
	}
}

// assertIPv6OnPrimary: the IPv6 VIP is on primary alone, and a client that connects to
// it reaches primary's PostgreSQL, out of recovery.
func (v *vipsSuite) assertIPv6OnPrimary(t *testing.T, primary string) {
	t.Helper()
	h, err := v.c.Holders(cluster.VIP6)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0] != primary {
		t.Errorf("the IPv6 VIP is on %v, want on %s alone", h, primary)
	}
	a, err := v.c.QueryAddr(context.Background(), cluster.VIP6)
	if err != nil {
		t.Errorf("client through the IPv6 VIP: %v", err)
		return
	}
	if a.Node != primary || a.InRecovery {
		t.Errorf("client through the IPv6 VIP reached %s (in recovery %v), want primary %s", a.Node, a.InRecovery, primary)
	}
}

// assertPrimaryStays: a trigger aimed at a replica moves neither of the primary's VIPs.
func (v *vipsSuite) assertPrimaryStays(t *testing.T, vm cluster.VIPMovements) {
	t.Helper()
	if vm.New != vm.Old || vm.ToVIPGone >= 0 || vm.NoVIP > 0 {
		t.Errorf("%s: the primary's VIP moved: primary %s→%s, gone at %s, nowhere for %v", vm.Scenario, vm.Old, vm.New, sec(vm.ToVIPGone), vm.NoVIP)
	}
	if vm.IPv6.ToVIPGone >= 0 || vm.IPv6.NoVIP > 0 {
		t.Errorf("%s: the IPv6 VIP moved: gone at %s, nowhere for %v", vm.Scenario, sec(vm.IPv6.ToVIPGone), vm.IPv6.NoVIP)
	}
	v.assertWrites(t, vm.Movement)
	v.assertVIPOnPrimary(t, vm.Old)
	v.assertIPv6OnPrimary(t, vm.Old)
}

// assertFollowed: after a switchover to next, the primary's VIP and the IPv6 VIP each
// followed it as the primary's VIP always does (assertMove, but for the log, which three
// watchers share).
func (v *vipsSuite) assertFollowed(t *testing.T, vm cluster.VIPMovements, next string) {
	t.Helper()
	if vm.New != next {
		t.Errorf("%s ended with primary %q", vm.Scenario, vm.New)
	}
	for _, vip := range []struct {
		label string
		m     cluster.Movement
		v6    bool
	}{{"the primary's VIP", vm.Movement, false}, {"the IPv6 VIP", vm.IPv6, true}} {
		label, m := vip.label, vip.m
		v.assertWrites(t, m)
		if !m.Settled || m.ToVIPGone < 0 {
			t.Errorf("%s: %s did not move to the new primary (gone %s, settled %v)", vm.Scenario, label, sec(m.ToVIPGone), m.Settled)
		}
		d := m.FollowDelay()
		// Woken by PostgreSQL's files, a watcher can add its VIP before the sample in
		// which the harness reads Patroni's new role (as assertMove allows).
		early := d < 0 && d >= -samplerSlack(v.c) && m.ToPrimary >= 0 && m.ToVIPOnNew >= 0
		switch {
		case d >= 0 && d <= followBound:
		case early && !vip.v6 && v.readyBeforeVIP(t, m):
			t.Logf("%s: %s on the new primary %v after the sampled role, after PostgreSQL was ready", vm.Scenario, label, d)
		case early && vip.v6:
			// The kernel's events are kept for the IPv4 VIP alone; whether the node
			// took writes while it held the IPv6 VIP is the write probe's word, which
			// assertWrites judged.
			t.Logf("%s: %s on the new primary %v after the sampled role", vm.Scenario, label, d)
		default:
			t.Errorf("%s: %s on the new primary %s after Patroni had it, want ≤ %v", vm.Scenario, label, sec(d), followBound)
		}
	}
	v.assertVIPOnPrimary(t, next)
	v.assertIPv6OnPrimary(t, next)
}

// restoreKeepsRead restores the cluster (the stopped replica back, the lagging one caught
// up) and asserts the read VIP stayed on holder: a replica that qualifies again does not
// take it back.
func (v *vipsSuite) restoreKeepsRead(t *testing.T, holder string) {
	t.Helper()
	v.restore(t)
	if err := v.c.WaitVIPs(context.Background(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	h, err := v.c.Holders(cluster.ReadVIP)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0] != holder {
		t.Errorf("after the cluster was whole again, the read VIP is on %v, want still on %s alone", h, holder)
	}
	v.assertReadOnReplica(t)
}

// vipsSelected reports whether PVC_SETUPS asks for the set-up (all set-ups by default).
func vipsSelected() bool {
	only := os.Getenv("PVC_SETUPS")
	return only == "" || slices.Contains(strings.Fields(only), vipsSetup)
}

// runVIPsSetup runs the set-up on stack as the subtest "vips", its logs under logDir.
func runVIPsSetup(t *testing.T, stack *cluster.Stack, root, bin, logDir string) {
	example, err := os.ReadFile(filepath.Join(root, "packaging", "keepalived-read-vip.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{stack: stack, mode: cluster.ModeWatch, repo: root, bin: bin, example: string(example)}
	t.Run(vipsSetup, func(t *testing.T) {
		t.Logf("%s: packaging/keepalived-read-vip.conf and keepalived-conf --instance %s (IPv6) on node 1, the generator's output on nodes 2 and 3",
			vipsSetup, cluster.IPv6Instance)
		s.runVIPs(t, filepath.Join(logDir, vipsSetup))
	})
}
