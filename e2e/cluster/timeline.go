package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sample is the lab's state at one instant.
type Sample struct {
	At time.Time
	// Holders are the nodes whose namespace has the VIP configured.
	Holders []string
	// Leader is the member holding the leader key in the DCS, "" if none, "?" if the DCS
	// did not answer lately.
	Leader string
	// Roles, per node (n1 first), is what the node's PostgreSQL said last, if it said it
	// within the last second: RolePrimary out of recovery, "replica" in recovery, ""
	// when it did not answer. PostgreSQL's answer, the same whatever Patroni calls it.
	Roles []string
	// Reachable, per node: its switch port is up (see Node.Cut).
	Reachable []bool
	// Writable, per node: its PostgreSQL accepts writes, as the node's write probe last
	// found (see writeProbe). PostgreSQL's own answer, whatever Patroni says.
	Writable []bool
	// Others are the holders of the cluster's other VIPs (ReadVIP, VIP6), by address;
	// nil in a cluster of one VIP.
	Others map[string][]string
}

func (s Sample) role(name string) string {
	if i := nodeIndex(name); i >= 0 && i < len(s.Roles) {
		return s.Roles[i]
	}
	return ""
}

func (s Sample) holds(name string) bool { return slices.Contains(s.Holders, name) }

// writable reports whether name's PostgreSQL accepted writes at the sample.
func (s Sample) writable(name string) bool {
	i := nodeIndex(name)
	return i >= 0 && i < len(s.Writable) && s.Writable[i]
}

// ReachableHolders are the holders a client on the switch can reach.
func (s Sample) ReachableHolders() []string {
	var out []string
	for _, h := range s.Holders {
		if i := nodeIndex(h); i >= 0 && i < len(s.Reachable) && s.Reachable[i] {
			out = append(out, h)
		}
	}
	return out
}

func nodeIndex(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "n%d", &i); err != nil {
		return -1
	}
	return i - 1
}

func (s Sample) describe() string {
	var b strings.Builder
	vip := strings.Join(s.Holders, "+")
	if vip == "" {
		vip = "-"
	}
	fmt.Fprintf(&b, "VIP %-8s leader %-3s", vip, orDash(s.Leader))
	for i, r := range s.Roles {
		cut := ""
		if i < len(s.Reachable) && !s.Reachable[i] {
			cut = "(cut)"
		}
		w := ""
		if s.writable(fmt.Sprintf("n%d", i+1)) {
			w = "+w"
		}
		fmt.Fprintf(&b, "  n%d %s%s%s", i+1, orDash(r), w, cut)
	}
	b.WriteString(s.describeOthers())
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Timeline is a sequence of samples, oldest first.
type Timeline []Sample

// Format lists the samples where something changed, with times relative to origin.
func (tl Timeline) Format(origin time.Time) string {
	var b strings.Builder
	prev := ""
	for _, s := range tl {
		d := s.describe()
		if d != prev {
			fmt.Fprintf(&b, "  %+7.2fs  %s\n", s.At.Sub(origin).Seconds(), d)
			prev = d
		}
	}
	return b.String()
}

// Movement is how the VIP followed the primary after a trigger. Durations are from the
// trigger; -1 means it did not happen within the record.
type Movement struct {
	Scenario string
	Trigger  time.Time
	Old, New string // primary before the trigger, and at the end of the record
	// ToPrimary: until New held the leader key and ran as a primary, to stay (after a
	// trigger that ends with the same primary, since it has been primary again).
	ToPrimary time.Duration
	// ToVIPGone: until the VIP was first seen missing from Old.
	ToVIPGone time.Duration
	// ToVIPOnNew: until the VIP was on New to stay (every later sample has it there).
	ToVIPOnNew time.Duration
	// NoVIP: time with the VIP on no node a client can reach.
	NoVIP time.Duration
	// Double: time with the VIP on two or more nodes a client can reach.
	Double time.Duration
	// OnNonPrimary: time with the VIP on a reachable node whose PostgreSQL is in recovery.
	OnNonPrimary time.Duration
	// Unwritable: time with the VIP on a reachable node whose PostgreSQL did not accept
	// writes (in recovery, stopped, starting, frozen); LongestUnwritable: the longest
	// such stretch.
	Unwritable, LongestUnwritable time.Duration
	// ToUnwritable: until Old's PostgreSQL was first seen not accepting writes.
	ToUnwritable time.Duration
	// TwoWritable: time with PostgreSQL accepting writes on two or more nodes, reachable
	// or not: a split brain, which only Patroni (with a watchdog) can prevent.
	TwoWritable time.Duration
	Settled     bool // the record ended with the VIP on the primary alone
	// Fired: how long the trigger's Fire took (an outage's length, for one that lasts).
	Fired    time.Duration
	Timeline Timeline
}

// FollowDelay is how long after Patroni had the new primary the VIP got there
// (ToVIPOnNew − ToPrimary), or -1 if either did not happen.
func (m Movement) FollowDelay() time.Duration {
	if m.ToPrimary < 0 || m.ToVIPOnNew < 0 {
		return -1
	}
	return m.ToVIPOnNew - m.ToPrimary
}

// span is how long sample i stands for: until the next one, or a sampler's default
// period for the last.
func (tl Timeline) span(i int) time.Duration {
	if i+1 < len(tl) {
		return tl[i+1].At.Sub(tl[i].At)
	}
	return 100 * time.Millisecond
}

// Analyze measures a Movement from a timeline that covers the trigger and what followed.
func (tl Timeline) Analyze(trigger time.Time, old string) Movement {
	m := Movement{Trigger: trigger, Old: old, ToPrimary: -1, ToVIPGone: -1, ToVIPOnNew: -1, ToUnwritable: -1, Timeline: tl}
	if len(tl) == 0 {
		return m
	}
	last := tl[len(tl)-1]
	if last.Leader != "" && last.role(last.Leader) == RolePrimary {
		m.New = last.Leader
		rh := last.ReachableHolders()
		m.Settled = len(rh) == 1 && rh[0] == m.New
	}
	onNewFrom, primaryFrom := -1, -1
	var unwritableRun time.Duration
	for i, s := range tl {
		if s.At.Before(trigger) {
			continue
		}
		dt := tl.span(i)
		d := s.At.Sub(trigger)
		if m.New != "" && s.Leader == m.New && s.role(m.New) == RolePrimary {
			if primaryFrom < 0 {
				primaryFrom = i
			}
		} else {
			primaryFrom = -1
		}
		if m.ToVIPGone < 0 && !s.holds(old) {
			m.ToVIPGone = d
		}
		rh := s.ReachableHolders()
		switch {
		case len(rh) == 0:
			m.NoVIP += dt
		case len(rh) > 1:
			m.Double += dt
		}
		for _, h := range rh {
			if r := s.role(h); r != "" && r != RolePrimary {
				m.OnNonPrimary += dt
				break
			}
		}
		if slices.ContainsFunc(rh, func(h string) bool { return !s.writable(h) }) {
			m.Unwritable += dt
			unwritableRun += dt
			m.LongestUnwritable = max(m.LongestUnwritable, unwritableRun)
		} else {
			unwritableRun = 0
		}
		if m.ToUnwritable < 0 && !s.writable(old) {
			m.ToUnwritable = d
		}
		writers := 0
		for _, w := range s.Writable {
			if w {
				writers++
			}
		}
		if writers > 1 {
			m.TwoWritable += dt
		}
		if m.New != "" && s.holds(m.New) {
			if onNewFrom < 0 {
				onNewFrom = i
			}
		} else {
			onNewFrom = -1
		}
	}
	since := func(i int) time.Duration {
		if i < 0 {
			return -1
		}
		return max(tl[i].At.Sub(trigger), 0)
	}
	m.ToPrimary, m.ToVIPOnNew = since(primaryFrom), since(onNewFrom)
	return m
}

// Trigger is something done to the cluster whose effect on the VIP is measured.
type Trigger struct {
	Name string
	// Fire acts on the cluster; primary is the primary before it.
	Fire func(ctx context.Context, c *Cluster, primary *Node) error
	// SamePrimaryOK: the trigger need not end with another primary.
	SamePrimaryOK bool
	// Timeout bounds the wait, after Fire returns, for the VIP to settle on a primary.
	Timeout time.Duration
	// WaitsForTTL: nothing happens before the old leader key expires (a crash, a node
	// cut off), so the wait is Timeout plus the cluster's ttl.
	WaitsForTTL bool
	// Prepare, if set, readies the cluster before the trigger's time is taken; Cleanup,
	// if set, undoes it once the VIP has settled (or not).
	Prepare, Cleanup func(ctx context.Context, c *Cluster) error
}

// WithFailsafe is tr with Patroni's failsafe_mode on for its duration.
func WithFailsafe(tr Trigger) Trigger {
	tr.Name += ", failsafe on"
	tr.Prepare = func(ctx context.Context, c *Cluster) error { return c.SetFailsafe(ctx, true) }
	tr.Cleanup = func(ctx context.Context, c *Cluster) error { return c.SetFailsafe(ctx, false) }
	return tr
}

// Switchover is `patronictl switchover --force` to candidate ("" lets Patroni choose).
func Switchover(candidate string) Trigger {
	name := "switchover"
	if candidate != "" {
		name += " to " + candidate
	}
	return Trigger{Name: name, Timeout: 30 * time.Second,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error { return c.Switchover(ctx, candidate) }}
}

// StopPrimary stops the primary's Patroni gracefully (SIGTERM).
func StopPrimary() Trigger {
	return Trigger{Name: "graceful stop", Timeout: 30 * time.Second,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.StopPatroni(ctx) }}
}

// KillPrimary SIGKILLs the primary's Patroni and its PostgreSQL; a new primary follows
// once the leader key expires (ttl).
func KillPrimary() Trigger {
	return Trigger{Name: "kill -9", Timeout: 40 * time.Second, WaitsForTTL: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.KillPatroni(ctx) }}
}

// PausePrimary freezes the primary's Patroni (SIGSTOP) for d, then continues it (SIGCONT).
// Longer than the ttl (Cluster.TTL), another node becomes primary meanwhile.
func PausePrimary(d time.Duration) Trigger {
	return Trigger{Name: fmt.Sprintf("REST hung %v", d), Timeout: 60 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error {
			if err := p.PausePatroni(); err != nil {
				return err
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			return p.ResumePatroni()
		}}
}

// CutPrimary takes the primary off the network (its switch port down); it stays cut
// until Restore.
func CutPrimary() Trigger {
	return Trigger{Name: "cut off", Timeout: 40 * time.Second, WaitsForTTL: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.Cut(ctx) }}
}

// settleFor is how long the VIP must stay on the primary alone, after the trigger's Fire
// has returned, for a trigger to be over.
const settleFor = 2 * time.Second

// Measure fires tr at the current primary and waits until the VIP has stayed on the
// (new) primary alone for a while, then returns how it moved. A Movement is returned
// even with an error, with what was recorded.
func (c *Cluster) Measure(ctx context.Context, tr Trigger) (Movement, error) {
	leader, err := c.Leader(ctx)
	if err != nil {
		return Movement{Scenario: tr.Name}, err
	}
	old := c.Node(leader)
	if old == nil {
		return Movement{Scenario: tr.Name}, fmt.Errorf("%s: no primary to start from", tr.Name)
	}
	timeout := tr.Timeout
	if tr.WaitsForTTL {
		timeout += c.TTL()
	}
	if tr.Prepare != nil {
		if err := tr.Prepare(ctx, c); err != nil {
			return Movement{Scenario: tr.Name}, fmt.Errorf("%s: preparing: %w", tr.Name, err)
		}
	}
	t0 := time.Now()
	fireErr := tr.Fire(ctx, c, old)
	// Only what follows the end of Fire counts as settled: a Patroni frozen past its
	// ttl and continued at the end of Fire can still take the leader key back (Patroni
	// 3.0.2 did, a second after SIGCONT), which a window reaching back into the freeze
	// would not see.
	fired := time.Now()
	var settleErr error
	if fireErr == nil {
		settleErr = waitFor(ctx, tr.Name+": VIP settles on the primary", timeout, c.opts.PollInterval, func() (bool, string, error) {
			tl := c.Timeline(time.Now().Add(-settleFor), time.Now())
			if len(tl) == 0 || tl[0].At.Before(fired) || time.Since(tl[0].At) < settleFor-2*c.opts.PollInterval {
				return false, "recording", nil
			}
			for _, s := range tl {
				rh := s.ReachableHolders()
				if s.Leader == "" || s.Leader == "?" || s.role(s.Leader) != RolePrimary ||
					(s.Leader == old.Name && !tr.SamePrimaryOK) || len(rh) != 1 || rh[0] != s.Leader ||
					s.Leader != tl[0].Leader {
					return false, s.describe(), nil
				}
			}
			return true, "", nil
		})
	}
	m := c.Timeline(t0.Add(-time.Second), time.Now()).Analyze(t0, old.Name)
	m.Scenario = tr.Name
	m.Fired = fired.Sub(t0)
	var cleanErr error
	if tr.Cleanup != nil {
		if err := tr.Cleanup(ctx, c); err != nil {
			cleanErr = fmt.Errorf("%s: cleaning up: %w", tr.Name, err)
		}
	}
	if fireErr != nil {
		return m, errors.Join(fmt.Errorf("%s: %w", tr.Name, fireErr), cleanErr)
	}
	return m, errors.Join(settleErr, cleanErr)
}

// FormatMovements renders movements as a table, seconds from each trigger.
func FormatMovements(ms []Movement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-30s %-9s %10s %9s %10s %9s %7s %7s %11s %10s\n",
		"scenario", "primary", "to primary", "VIP gone", "VIP on new", "new-prim", "no VIP", "double", "non-primary", "unwritable")
	sec := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "%-30s %-9s %10s %9s %10s %9s %7s %7s %11s %10s\n",
			m.Scenario, m.Old+"→"+orDash(m.New), sec(m.ToPrimary), sec(m.ToVIPGone), sec(m.ToVIPOnNew),
			sec(m.FollowDelay()), sec(m.NoVIP), sec(m.Double), sec(m.OnNonPrimary), sec(m.Unwritable))
	}
	return b.String()
}

// poller samples the lab every PollInterval. PostgreSQL and the DCS are read by loops of
// their own so that a stuck peer delays nothing; a sample takes their latest answers.
type poller struct {
	c       *Cluster
	mu      sync.Mutex
	samples []Sample
	roles   []valueAt
	writes  []probeState
	leader  valueAt
	stopc   chan struct{}
	wg      sync.WaitGroup
	started bool
}

type valueAt struct {
	v  string
	at time.Time
}

// staleAfter: an answer older than this is no answer (a stopped or unreachable peer).
const staleAfter = time.Second

// probeState is what a node's write probe found: the last probe that ended, and the one
// under way.
type probeState struct {
	ok    bool      // the last probe that ended wrote
	done  time.Time // when it ended
	since time.Time // when the probe under way began; zero between probes
}

// WriteProbeEvery is how often the poller asks each PostgreSQL to write, at most: each
// ask is a new connection, and so a new backend process; finer sampling (PollInterval)
// asks no more often than this.
const WriteProbeEvery = 100 * time.Millisecond

// slowProbeEvery is how often a node that nothing is judged by is asked to write: a
// replica without the VIP. Each ask costs PostgreSQL a backend (about 3 ms of CPU here),
// and six clusters asking three nodes ten times a second would take half of this
// machine's two cores.
const slowProbeEvery = time.Second

// judged reports whether node i's writes matter to the next samples, so that it is
// asked every WriteProbeEvery: it holds the VIP (or another: the read VIP's holder
// must never take writes), it took writes when last asked, or its PostgreSQL is out of
// recovery (or did not say). Called with p.mu held.
func (p *poller) judged(i int, name string) bool {
	if p.writes[i].ok || p.roles[i].v != "replica" || time.Since(p.roles[i].at) >= staleAfter {
		return true
	}
	return len(p.samples) == 0 || p.samples[len(p.samples)-1].holds(name) || p.samples[len(p.samples)-1].holdsOther(name)
}

// hangAfter: a write probe without an answer for this long counts as a PostgreSQL that
// does not accept writes (a frozen postmaster accepts connections and never answers).
// Long enough that a primary slowed by a full CPU, which answers every write of its
// clients, is not taken for one that does not.
const hangAfter = time.Second

// writable judges a node at now from its probe state.
func (ps probeState) writable(now time.Time) bool {
	if !ps.since.IsZero() && now.Sub(ps.since) > hangAfter {
		return false
	}
	return ps.ok && now.Sub(ps.done) < staleAfter+hangAfter
}

func newPoller(c *Cluster) *poller {
	return &poller{c: c, roles: make([]valueAt, len(c.nodes)), writes: make([]probeState, len(c.nodes)), stopc: make(chan struct{})}
}

func (p *poller) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return
	}
	p.started = true
	every := p.c.opts.PollInterval
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.stopc; cancel() }()
	for i, n := range p.c.nodes {
		pg := &pgConn{addr: n.Addr + ":5432", dial: dialIn(p.c.swNS)}
		p.loop(ctx, every, func() {
			rctx, cancel := context.WithTimeout(ctx, 4*every+100*time.Millisecond)
			defer cancel()
			if r := pg.role(rctx); r != "" {
				p.mu.Lock()
				p.roles[i] = valueAt{r, time.Now()}
				p.mu.Unlock()
			}
		}, pg.close)
	}
	// No sample before every node's first write probe has ended (or hangs): a sample
	// before it would count a primary as one that does not accept writes.
	started := time.Now()
	firstRound := make(chan struct{})
	var pending atomic.Int32
	pending.Store(int32(len(p.c.nodes)))
	for i, n := range p.c.nodes {
		var first sync.Once
		p.loop(ctx, max(every, WriteProbeEvery), func() {
			p.mu.Lock()
			if !p.judged(i, n.Name) && time.Since(p.writes[i].done) < slowProbeEvery {
				p.mu.Unlock()
				return
			}
			p.writes[i].since = time.Now()
			p.mu.Unlock()
			ok := writeProbe(ctx, n)
			p.mu.Lock()
			p.writes[i] = probeState{ok: ok, done: time.Now()}
			p.mu.Unlock()
			first.Do(func() {
				if pending.Add(-1) == 0 {
					close(firstRound)
				}
			})
		}, nil)
	}
	p.loop(ctx, every, func() {
		rctx, cancel := context.WithTimeout(ctx, 4*every+100*time.Millisecond)
		defer cancel()
		l, err := p.c.Leader(rctx)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.leader = valueAt{l, time.Now()}
		p.mu.Unlock()
	}, nil)
	p.loop(ctx, every, func() {
		select {
		case <-firstRound:
		default:
			if time.Since(started) < hangAfter {
				return
			}
		}
		p.sample()
	}, nil)
}

// loop runs fn now and then every period (never two at once) until ctx ends, then done.
func (p *poller) loop(ctx context.Context, every time.Duration, fn, done func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if done != nil {
			defer done()
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			fn()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (p *poller) sample() {
	now := time.Now()
	s := Sample{At: now, Roles: make([]string, len(p.c.nodes)), Reachable: make([]bool, len(p.c.nodes)),
		Writable: make([]bool, len(p.c.nodes))}
	for _, n := range p.c.nodes {
		if ok, err := n.HoldsVIP(); err == nil && ok {
			s.Holders = append(s.Holders, n.Name)
		}
	}
	p.c.sampleOthers(&s)
	if up, err := p.c.swLinks.linksUp(); err == nil {
		for i, n := range p.c.nodes {
			s.Reachable[i] = up[n.Name]
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.roles {
		if now.Sub(r.at) < staleAfter {
			s.Roles[i] = r.v
		}
	}
	for i, w := range p.writes {
		s.Writable[i] = w.writable(now)
	}
	s.Leader = "?"
	if now.Sub(p.leader.at) < staleAfter {
		s.Leader = p.leader.v
	}
	p.samples = append(p.samples, s)
}

func (p *poller) stop() {
	p.mu.Lock()
	started := p.started
	p.started = false
	p.mu.Unlock()
	if started {
		close(p.stopc)
		p.wg.Wait()
	}
}

// Timeline returns the samples taken between from and to.
func (c *Cluster) Timeline(from, to time.Time) Timeline {
	c.poll.mu.Lock()
	defer c.poll.mu.Unlock()
	var tl Timeline
	for _, s := range c.poll.samples {
		if !s.At.Before(from) && !s.At.After(to) {
			tl = append(tl, s)
		}
	}
	return tl
}

// SamplePeriod is how often the timeline samples (Options.PollInterval).
func (c *Cluster) SamplePeriod() time.Duration { return c.opts.PollInterval }
