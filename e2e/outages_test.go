//go:build e2e

package e2e_test

import (
	"context"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// The outages operators ask about, judged against PostgreSQL: the harness's write probe
// (cluster.Sample.Writable) says, every 100 ms, whether each node's PostgreSQL accepts a
// write on a fresh connection, besides which node holds the VIP.

// probePeriod is how often the harness samples the VIP and probes each PostgreSQL
// (cluster.Options.PollInterval's default).
const probePeriod = 100 * time.Millisecond

// unwritableBound is how long the VIP may stay on a node whose PostgreSQL does not
// accept writes, from the moment it stopped: the gate's run that began just before
// (a period), the next one, which sees it (a second period: keepalived 2.3 may skip a
// run that would overlap the last), that run's own deadline if Patroni is slow to say
// so, the probe's and the sampler's periods, and half a second for a machine whose two
// cores run six clusters. 3.1 s for the watch with --pgdata (1 s polls, 400 ms deadline),
// 1.9 s on polls alone (200 ms, 800 ms), 3.5 s for the one-shot check every second, 1.5 s
// every 0.2 s (keepalived-2.3.conf, 400 ms).
func (s *suite) unwritableBound(t *testing.T) time.Duration {
	period, deadline := 200*time.Millisecond, 800*time.Millisecond
	switch s.mode {
	case cluster.ModeWatch:
		// The watch's timers as node 1's watcher runs them (the shipped defaults): a kill
		// -9 changes none of PostgreSQL's files, so the polls, not the events, bound it.
		cfg := watchConfig(t, s.c.Node("n1"))
		period, deadline = cfg.Interval, cfg.Timeout
	case cluster.ModeCheck:
		conf := s.c.KeepalivedConf(1)
		period, deadline = scriptInterval(t, conf), checkTimeout(t, conf)
	}
	return gateBound(period, deadline)
}

// gateBound is unwritableBound for a gate that asks every period within deadline.
func gateBound(period, deadline time.Duration) time.Duration {
	return 2*period + deadline + 2*probePeriod + 500*time.Millisecond
}

var timeoutFlag = regexp.MustCompile(`--timeout[ =](\S+)`)

// checkTimeout is the --timeout of the check a keepalived.conf runs, or its default.
func checkTimeout(t *testing.T, conf string) time.Duration {
	m := timeoutFlag.FindStringSubmatch(cluster.ScriptCommand(conf))
	if m == nil {
		return 800 * time.Millisecond
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("--timeout %q: %v", m[1], err)
	}
	return d
}

// assertWrites: what every scenario asserts of the VIP against PostgreSQL itself: never
// on two reachable nodes, and never longer than unwritableBound on one whose PostgreSQL
// did not accept writes.
func (s *suite) assertWrites(t *testing.T, m cluster.Movement) {
	t.Helper()
	if m.Double > 0 {
		t.Errorf("%s: VIP on two reachable nodes for %v", m.Scenario, m.Double)
	}
	if b := s.unwritableBound(t); m.LongestUnwritable > b {
		t.Errorf("%s: VIP on a node whose PostgreSQL did not accept writes for %v at a stretch (%v in all), want ≤ %v",
			m.Scenario, m.LongestUnwritable, m.Unwritable, b)
	}
}

// dcsOutage is how long the DCS scenarios keep etcd down: longer than the ttl, so that
// the leader key would have expired.
func (s *suite) dcsOutage() time.Duration { return s.c.TTL() + 5*time.Second }

// dcsDown: etcd down for longer than the ttl. Without failsafe_mode, Patroni demotes the
// primary once it cannot update its leader key (retry_timeout), and the VIP leaves with
// PostgreSQL's writes. With failsafe_mode, the primary stays as long as every member
// answers it, and the VIP stays with it as long as its PostgreSQL takes writes.
func (s *suite) dcsDown(failsafe bool) func(t *testing.T) {
	return func(t *testing.T) {
		tr := cluster.StopDCS(s.dcsOutage())
		if failsafe {
			tr = cluster.WithFailsafe(tr)
		}
		m := s.measure(t, tr)
		s.assertWrites(t, m)
		// What Patroni did with the primary while the DCS was down.
		demotedAt := m.ToUnwritable
		keptIt := demotedAt < 0 || demotedAt > m.Fired
		switch {
		case !failsafe && keptIt:
			t.Errorf("%s still accepted writes %v into a DCS outage of %v: Patroni did not demote it (ttl %v)", m.Old, m.Fired, s.dcsOutage(), s.c.TTL())
		case !failsafe && demotedAt > s.c.TTL():
			t.Errorf("Patroni demoted %s %v into the outage, after the leader key's ttl %v", m.Old, demotedAt, s.c.TTL())
		case failsafe && keptIt:
			// Patroni kept the primary: so must the VIP, for the whole outage.
			if m.ToVIPGone >= 0 && m.ToVIPGone <= m.Fired {
				t.Errorf("the VIP left %s %v into the outage while its PostgreSQL accepted writes and failsafe_mode kept it primary",
					m.Old, m.ToVIPGone)
			}
		case failsafe:
			t.Logf("Patroni %s demoted %s %v into the outage despite failsafe_mode", s.version(t), m.Old, demotedAt)
		}
		// Patroni says "stopping" a moment before PostgreSQL refuses connections; the
		// probe and the sampler see it up to two periods late; 0.3 s for a loaded machine.
		if m.ToVIPGone >= 0 && demotedAt >= 0 && m.ToVIPGone+2*probePeriod+300*time.Millisecond < demotedAt {
			t.Errorf("the VIP left %s at %v, before Patroni demoted it (its PostgreSQL stopped accepting writes at %v)", m.Old, m.ToVIPGone, demotedAt)
		}
		t.Logf("%s: primary %s stopped accepting writes at %s; VIP gone at %s; two nodes writable %v",
			m.Scenario, m.Old, sec(demotedAt), sec(m.ToVIPGone), m.TwoWritable)
		s.assertVIPOnPrimary(t, m.New)
		s.assertLogs(t, m)
		s.restore(t)
	}
}

// cutFromDCS: the primary alone loses the DCS (its packets to and from etcd's port are
// dropped). Patroni demotes it after retry_timeout; a replica takes the leader key once
// it expires. The VIP leaves with the old primary's writes and comes with the new one's.
func (s *suite) cutFromDCS(t *testing.T) {
	m := s.measure(t, cluster.CutPrimaryFromDCS())
	if m.New == m.Old || m.New == "" {
		t.Errorf("no new primary after cutting %s from the DCS (ends with %q)", m.Old, m.New)
	}
	if m.ToPrimary < 0 || m.ToPrimary > s.failoverBound() {
		t.Errorf("new primary after %v, want ≤ %v (ttl %v)", m.ToPrimary, s.failoverBound(), s.c.TTL())
	}
	if m.ToUnwritable < 0 || m.ToUnwritable > s.c.TTL() {
		t.Errorf("%s, cut from the DCS, stopped accepting writes at %s, want within the ttl %v", m.Old, sec(m.ToUnwritable), s.c.TTL())
	}
	s.assertMove(t, m)
	s.restore(t)
}

// loadGate gives each set-up's CPU load the machine to itself: two cores at full load
// are the whole machine's, so a load beside another, or beside any other scenario,
// would break the bounds of both. Every set-up of the run is a member; the CPU load
// comes last in each, and waits until every member has reached it (or left: a failed
// bring-up, a broken cluster, left out by -run), takes its turn, and then waits for
// every other turn to end before the set-up goes on to its teardown and the stack's
// baselines.
type loadGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	members int // set-ups that have not left
	arrived int // have reached the gate
	done    int // have had their turn
	turn    bool
}

// gateLimit bounds each wait at the gate: every set-up's scenarios, each bounded, take
// less than this together, and so do all the turns.
const gateLimit = 20 * time.Minute

func newLoadGate(members int) *loadGate {
	g := &loadGate{members: members}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// take runs load in the set-up's turn. It returns how many set-ups took turns, and
// false if gateLimit passed in a wait (the load then ran beside whatever else was
// running). A nil gate runs load at once.
func (g *loadGate) take(load func()) (members int, alone bool) {
	if g == nil {
		load()
		return 1, true
	}
	alone = true
	g.mu.Lock()
	g.arrived++
	g.cond.Broadcast()
	alone = g.wait(func() bool { return g.arrived >= g.members }) && alone
	alone = g.wait(func() bool { return !g.turn }) && alone
	g.turn = true
	members = g.members
	g.mu.Unlock()
	defer func() { // load may end the scenario (t.Fatal) and still the others wait for it
		g.mu.Lock()
		defer g.mu.Unlock()
		g.turn = false
		g.done++
		g.cond.Broadcast()
		alone = g.wait(func() bool { return g.done >= g.members }) && alone
	}()
	load()
	return members, alone
}

// wait waits, with g.mu held, until ready or gateLimit passes; false in the second case.
func (g *loadGate) wait(ready func() bool) bool {
	expired := false // guarded by g.mu
	timer := time.AfterFunc(gateLimit, func() {
		g.mu.Lock()
		expired = true
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer timer.Stop()
	for !ready() {
		if expired {
			return false
		}
		g.cond.Wait()
	}
	return true
}

// leave takes a member that will not reach the gate out.
func (g *loadGate) leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members--
	g.cond.Broadcast()
}

// loadFor is how long the CPU load lasts: longer than Patroni 4's ttl, so that a leader
// key that the loaded primary failed to renew would have expired within it; 150 polls of
// the watch, 30 runs of the one-shot check at least.
const loadFor = 30 * time.Second

// cpuLoad: the primary under a full CPU — twice as many busy loops as the machine has
// cores — while 32 pgbench clients write through the VIP, with the machine to itself
// (loadGate). The VIP must not move, no client may meet an error, and the check must
// log nothing.
func (s *suite) cpuLoad(t *testing.T) {
	s.requireHealthy(t)
	s.arrived = true
	var res cluster.LoadResult
	var m cluster.Movement
	members, alone := s.loads.take(func() {
		m = s.measure(t, cluster.LoadPrimary(cluster.Load{For: loadFor, Clients: 32, Busy: 2 * runtime.NumCPU()}, &res))
	})
	if !alone {
		t.Logf("a wait for the other set-ups' CPU loads outlasted %v: this one may have run beside other work", gateLimit)
	}
	t.Logf("CPU load, one set-up of %d at a time, %d busy loops; pgbench: exit %d, %d transactions, %d failed",
		members, 2*runtime.NumCPU(), res.Exit, res.Transactions, res.Failed)
	if m.New != m.Old || m.ToVIPGone >= 0 || m.NoVIP > 0 {
		t.Errorf("under load the VIP moved: primary %s→%s, VIP gone at %s, nowhere for %v", m.Old, m.New, sec(m.ToVIPGone), m.NoVIP)
	}
	s.assertWrites(t, m)
	switch {
	case res.Exit != 0 || res.Failed != 0 || len(res.Errors) > 0:
		t.Errorf("pgbench through the VIP: exit %d, %d failed transactions:\n%s", res.Exit, res.Failed, res.Output)
	case res.Transactions == 0:
		t.Errorf("pgbench through the VIP committed nothing:\n%s", res.Output)
	}
	for _, n := range s.c.Nodes() {
		if lines := s.states(t, n, m.Trigger); len(lines) != 0 {
			t.Errorf("%s: the check logged %d lines under load, want 0:\n%s", n.Name, len(lines), joinLines(lines))
		}
	}
	s.assertVIPOnPrimary(t, m.Old)
	s.restore(t)
}

// version is the Patroni version the cluster runs, for messages.
func (s *suite) version(t *testing.T) string {
	leader, err := s.c.Leader(context.Background())
	if err != nil || leader == "" {
		return s.stack.Name + "'s"
	}
	st, err := s.c.Node(leader).Status(context.Background())
	if err != nil {
		return s.stack.Name + "'s"
	}
	return strings.TrimSpace(st.Patroni.Version)
}

// TestLoadGate: turns never overlap, no turn begins before every member has arrived or
// left, and none returns before every turn has ended.
func TestLoadGate(t *testing.T) {
	const members = 4
	g := newLoadGate(members)
	var mu sync.Mutex
	var events []string
	log := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := 0; i < members-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log("arrive")
			n, alone := g.take(func() { log("begin"); log("end") })
			if n != members-1 || !alone {
				t.Errorf("take: %d members, alone %v", n, alone)
			}
			log("return")
		}()
	}
	g.leave() // the fourth never comes
	wg.Wait()
	// Every arrival, then begin/end pairs, then the returns.
	want := []string{"arrive", "arrive", "arrive", "begin", "end", "begin", "end", "begin", "end", "return", "return", "return"}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", events, want)
	}
}
