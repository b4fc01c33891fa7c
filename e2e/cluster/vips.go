package cluster

// A cluster with more VIPs than the one that follows the primary, as keepalived-conf
// writes them (Options.ReadVIP, Options.IPv6VIP): a read VIP that one replica holds, and
// an IPv6 VIP that follows the primary, each gated by a watcher of its own, an instance
// of the template unit packaging/patroni-vip-check@.service run as service.go runs
// units. The timeline samples who holds each (Sample.Others); a movement of the read
// VIP is judged against PostgreSQL as the primary's is: never on a node that accepts
// writes, never on two.

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
)

// Addresses and names of the further VIPs.
const (
	// ReadVIP is the read VIP of packaging/keepalived-read-vip.conf.
	ReadVIP = "198.51.100.101"
	// VIP6 follows the primary over IPv6. It ends in 0x64: keepalived-conf takes a
	// VIP's last byte for its virtual_router_id (100), which must not be 0.
	VIP6        = "2001:db8::64"
	Subnet6     = "2001:db8::/64"
	SwitchAddr6 = "2001:db8::2"

	// ReadInstance and IPv6Instance name the template's instances that keep the read
	// VIP's and the IPv6 VIP's track files, as keepalived-conf names them
	// (--replica-vip, --instance v6).
	ReadInstance = "replica"
	IPv6Instance = "v6"

	// MaxLag is the read VIP's bound on a replica's lag: keepalived-conf's default, in
	// Patroni's units (16 MiB).
	MaxLag      = "16MB"
	maxLagBytes = 16 << 20
)

// NodeAddr6 is the IPv6 address of node i (1-based): 2001:db8::11, ::12, ::13.
func NodeAddr6(i int) string { return fmt.Sprintf("2001:db8::%d", 10+i) }

// otherVIPs are the cluster's VIPs besides VIP.
func (c *Cluster) otherVIPs() []string {
	var out []string
	if c.opts.ReadVIP {
		out = append(out, ReadVIP)
	}
	if c.opts.IPv6VIP {
		out = append(out, VIP6)
	}
	return out
}

// ipv6Network gives the switch and every node an IPv6 address on the lab's link,
// without duplicate address detection (nodad): a tentative address cannot be the
// source of keepalived's unicast adverts.
func (c *Cluster) ipv6Network() [][]string {
	cmds := [][]string{{"-n", c.swNS, "addr", "add", SwitchAddr6 + "/64", "dev", "br0", "nodad"}}
	for _, n := range c.nodes {
		cmds = append(cmds, []string{"-n", n.NS, "addr", "add", NodeAddr6(n.Index) + "/64", "dev", "eth0", "nodad"})
	}
	return cmds
}

// listenIPv6 has a node's Patroni configuration listen on IPv6 too: its REST API on
// [::] (a dual-stack socket: IPv4 clients reach it as before), PostgreSQL on '*', and
// pg_hba trusting the lab's IPv6 subnet.
func listenIPv6(conf string, n *Node) (string, error) {
	for _, r := range []struct{ old, new string }{
		{"\n  listen: " + n.Addr + ":8008\n", "\n  listen: '[::]:8008'\n"},
		{"\n  listen: 0.0.0.0:5432\n", "\n  listen: '*:5432'\n"},
		{"\n  - host replication all " + Subnet + " trust\n",
			"\n  - host replication all " + Subnet + " trust\n  - host all all " + Subnet6 + " trust\n  - host replication all " + Subnet6 + " trust\n"},
	} {
		if !strings.Contains(conf, r.old) {
			return "", fmt.Errorf("%s: Patroni's configuration has no %q to listen on IPv6", n.Name, strings.TrimSpace(r.old))
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	return conf, nil
}

// addIPv6Conf writes the node's configuration for the IPv6 VIP with the generator, as an
// operator adds a second cluster's or family's VIP: keepalived-conf --instance v6, with
// the node's and its peers' IPv6 addresses, told of the node's present keepalived.conf
// so that it keeps clear of its virtual_router_ids; keepalived.conf includes it (README,
// "Several clusters on the same hosts"). It returns keepalived.conf as it now is.
func (n *Node) addIPv6Conf(ctx context.Context, conf string) (string, error) {
	main := filepath.Join(n.dir, "keepalived.conf")
	args := []string{"keepalived-conf", "--mode", "watch", "--vip", VIP6 + "/64", "--instance", IPv6Instance,
		"--patroni-config", filepath.Join(n.dir, "patroni.yml"), "--node", NodeAddr6(n.Index), "--keepalived-conf", main}
	for _, p := range n.c.nodes {
		if p != n {
			args = append(args, "--peer", NodeAddr6(p.Index))
		}
	}
	if v := n.c.opts.KeepalivedFor; v != "" {
		args = append(args, "--keepalived-version", v)
	}
	v6, err := n.runGenerator(ctx, args)
	if err != nil {
		return "", err
	}
	if n.c.opts.Mode == ModeWatch {
		if err := n.setInstanceArgs(IPv6Instance, v6, n.IPv6URL()); err != nil {
			return "", err
		}
	}
	path := filepath.Join(n.dir, "keepalived-"+IPv6Instance+".conf")
	if err := n.c.writeFile(path, v6); err != nil {
		return "", err
	}
	conf += "\n# The IPv6 VIP, as keepalived-conf --instance " + IPv6Instance + " wrote it.\ninclude " + path + "\n"
	return conf, n.c.writeFile(main, conf)
}

// ReadURL is what the node's read VIP gate asks: its own /replica within the bound.
func (n *Node) ReadURL() string { return "http://" + n.Addr + ":8008/replica?lag=" + MaxLag }

// IPv6URL is what the node's IPv6 VIP gate asks: its own /primary, over IPv6.
func (n *Node) IPv6URL() string { return "http://[" + NodeAddr6(n.Index) + "]:8008/primary" }

// setInstanceArgs records, for the node's instance name, the arguments the generated
// configuration conf gives the watcher that asks url.
func (n *Node) setInstanceArgs(name, conf, url string) error {
	args, err := GeneratedArgsFor(conf, url)
	if err != nil {
		return fmt.Errorf("%s: patroni-vip-check@%s: %w", n.Name, name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.instanceArgs == nil {
		n.instanceArgs = map[string][]string{}
	}
	n.instanceArgs[name] = args
	return nil
}

// GeneratedArgsFor are the arguments a configuration that keepalived-conf wrote tells the
// operator to give the watcher that asks url (the PATRONI_VIP_CHECK_ARGS line of its
// comments that ends with it), split as systemd splits $PATRONI_VIP_CHECK_ARGS.
func GeneratedArgsFor(conf, url string) ([]string, error) {
	for _, m := range generatedArgsLine.FindAllStringSubmatch(conf, -1) {
		args := strings.Fields(unitfile.ParseEnv(m[1])["PATRONI_VIP_CHECK_ARGS"])
		if len(args) > 0 && args[len(args)-1] == url {
			return args, nil
		}
	}
	return nil, fmt.Errorf("the generated keepalived.conf gives no watcher of %s its PATRONI_VIP_CHECK_ARGS", url)
}

// startInstances starts the node's template instances, each with the arguments
// keepalived-conf's comments give it (node 1's read VIP watcher, which the example
// configuration describes: --pgdata with the node's data directory, as its primary
// watcher), after Options.WatchArgs: @replica asks /replica?lag=16MB on the node's
// address, @v6 asks /primary over IPv6.
func (n *Node) startInstances(ctx context.Context) error {
	if n.c.opts.ReadVIP {
		if err := n.startInstance(ctx, ReadInstance, n.ReadURL()); err != nil {
			return err
		}
	}
	if n.c.opts.IPv6VIP {
		if err := n.startInstance(ctx, IPv6Instance, n.IPv6URL()); err != nil {
			return err
		}
	}
	return nil
}

// instanceEnv is the environment file of the node's instance name, whose watcher asks
// url (see startInstances).
func (n *Node) instanceEnv(name, url string) string {
	n.mu.Lock()
	own := n.instanceArgs[name]
	n.mu.Unlock()
	if own == nil {
		own = []string{"--pgdata", n.DataDir(), url}
	}
	return n.envFile(own)
}

// startInstance runs patroni-vip-check@name with its options file, and waits for its
// READY=1 as systemd does before starting keepalived.
func (n *Node) startInstance(ctx context.Context, name, url string) error {
	svc, err := n.startUnit(n.c.opts.template, name, n.instanceEnv(name, url))
	if err != nil {
		return err
	}
	n.mu.Lock()
	if n.instances == nil {
		n.instances = map[string]*Service{}
	}
	n.instances[name] = svc
	n.mu.Unlock()
	return svc.waitReady(ctx)
}

// Instances are the node's running template instances, by name.
func (n *Node) Instances() []*Service {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*Service
	for _, name := range slices.Sorted(maps.Keys(n.instances)) {
		out = append(out, n.instances[name])
	}
	return out
}

// Instance is the node's template instance name (patroni-vip-check@name), nil if none.
func (n *Node) Instance(name string) *Service {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.instances[name]
}

// Name is the service's unit name without ".service": patroni-vip-check@replica.
func (s *Service) Name() string { return s.name }

// InstanceTrackFilePath is the track file of the node's instance name, as the harness
// sees it: /run/keepalived-patroni-vip-check/NAME, as the template names it.
func (n *Node) InstanceTrackFilePath(name string) string {
	return filepath.Join(n.RunDir(), "keepalived-patroni-vip-check", name)
}

// InstanceTrackFile is what that file says now: "1", "0", or "" if there is none.
func (n *Node) InstanceTrackFile(name string) string {
	b, err := os.ReadFile(n.InstanceTrackFilePath(name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// PrimaryURL is what the node's primary gate asks: its own /primary.
func (n *Node) PrimaryURL() string { return "http://" + n.Addr + ":8008/primary" }

// gateLog is CheckLog narrowed to the primary VIP's gate: on a node that runs other
// watchers, the lines that name the gate's URL (every line of the check names the URL
// it asked).
func (n *Node) gateLog(since time.Time) []LogLine {
	lines := n.CheckLog(since)
	if len(n.Instances()) == 0 {
		return lines
	}
	return LinesFor(lines, n.PrimaryURL())
}

// LinesFor keeps the check's lines that name url: one watcher's lines where several log.
func LinesFor(lines []LogLine, url string) []LogLine {
	var out []LogLine
	for _, l := range lines {
		if i := strings.Index(l.Message, url); i >= 0 {
			// Not a longer URL that starts with this one.
			if rest := l.Message[i+len(url):]; rest == "" || strings.ContainsRune(" :(;[", rune(rest[0])) {
				out = append(out, l)
			}
		}
	}
	return out
}

// HoldsAddr reports whether addr (IPv4 or IPv6) is configured in the node's namespace.
func (n *Node) HoldsAddr(addr string) (bool, error) {
	held, err := n.links.addrs()
	if err != nil {
		return false, fmt.Errorf("%s: %w", n.Name, err)
	}
	return held[addr], nil
}

// Holders lists the nodes that hold addr right now.
func (c *Cluster) Holders(addr string) ([]string, error) {
	var out []string
	for _, n := range c.nodes {
		ok, err := n.HoldsAddr(addr)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// ReadHolder is the node that holds the read VIP now, alone.
func (c *Cluster) ReadHolder() (*Node, error) {
	h, err := c.Holders(ReadVIP)
	if err != nil {
		return nil, err
	}
	if len(h) != 1 {
		return nil, fmt.Errorf("the read VIP is on %v, not on one node", h)
	}
	return c.Node(h[0]), nil
}

// addrs lists the addresses of both families configured in the namespace.
func (s *netlinkSock) addrs() (map[string]bool, error) {
	msgs, err := s.dump(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		// IPv4 says the address in IFA_LOCAL (IFA_ADDRESS is the peer's on a
		// point-to-point link); IPv6 in IFA_ADDRESS.
		for _, a := range attrs {
			switch {
			case m.Data[0] == syscall.AF_INET && a.Attr.Type == syscall.IFA_LOCAL && len(a.Value) == 4:
				held[netip.AddrFrom4([4]byte(a.Value)).String()] = true
			case m.Data[0] == syscall.AF_INET6 && a.Attr.Type == syscall.IFA_ADDRESS && len(a.Value) == 16:
				held[netip.AddrFrom16([16]byte(a.Value)).String()] = true
			}
		}
	}
	return held, nil
}

// sampleOthers records in s who holds each of the cluster's other VIPs.
func (c *Cluster) sampleOthers(s *Sample) {
	others := c.otherVIPs()
	if len(others) == 0 {
		return
	}
	s.Others = map[string][]string{}
	for _, n := range c.nodes {
		held, err := n.links.addrs()
		if err != nil {
			continue
		}
		for _, a := range others {
			if held[a] {
				s.Others[a] = append(s.Others[a], n.Name)
			}
		}
	}
}

// holdsOther reports whether name held any of the other VIPs at the sample.
func (s Sample) holdsOther(name string) bool {
	for _, h := range s.Others {
		if slices.Contains(h, name) {
			return true
		}
	}
	return false
}

// describeOthers is the other VIPs' part of a sample's line: " read n2 v6 n1".
func (s Sample) describeOthers() string {
	var b strings.Builder
	for _, a := range slices.Sorted(maps.Keys(s.Others)) {
		h := strings.Join(s.Others[a], "+")
		if h == "" {
			h = "-"
		}
		fmt.Fprintf(&b, "  %s %-5s", vipLabel(a), h)
	}
	return b.String()
}

func vipLabel(addr string) string {
	switch addr {
	case ReadVIP:
		return "read"
	case VIP6:
		return "v6"
	}
	return addr
}

// For is the timeline as seen for another of the cluster's VIPs (ReadVIP, VIP6): each
// sample's Holders are that VIP's, so that Analyze measures it.
func (tl Timeline) For(addr string) Timeline {
	out := make(Timeline, len(tl))
	for i, s := range tl {
		s.Holders = s.Others[addr]
		out[i] = s
	}
	return out
}

// ReadMovement is how the read VIP moved after a trigger. Durations are from the
// trigger; -1 means it did not happen within the record.
type ReadMovement struct {
	Old, New string // holder before the trigger, and at the end of the record ("" none)
	// ToGone: until the read VIP was first seen off Old; ToOnNew: until it was on New
	// to stay.
	ToGone, ToOnNew time.Duration
	// Nowhere: time held by no reachable node; Double: by two or more.
	Nowhere, Double time.Duration
	// OnPrimary: time on a reachable node whose PostgreSQL was out of recovery.
	OnPrimary time.Duration
	// OnWritable: time on a reachable node whose PostgreSQL accepted writes (the write
	// probe's word, whatever Patroni says); LongestOnWritable: the longest stretch.
	OnWritable, LongestOnWritable time.Duration
	// Settled: the record ended with the read VIP on one node, a replica.
	Settled bool
}

// AnalyzeRead measures the read VIP's movement from a timeline that covers the trigger
// and what followed; old held it before.
func (tl Timeline) AnalyzeRead(trigger time.Time, old string) ReadMovement {
	rt := tl.For(ReadVIP)
	m := ReadMovement{Old: old, ToGone: -1, ToOnNew: -1}
	if len(rt) == 0 {
		return m
	}
	last := rt[len(rt)-1]
	if rh := last.ReachableHolders(); len(rh) == 1 {
		m.New = rh[0]
		m.Settled = last.role(rh[0]) == "replica"
	}
	onNewFrom := -1
	var writableRun time.Duration
	for i, s := range rt {
		if s.At.Before(trigger) {
			continue
		}
		dt := rt.span(i)
		if m.ToGone < 0 && old != "" && !s.holds(old) {
			m.ToGone = s.At.Sub(trigger)
		}
		rh := s.ReachableHolders()
		switch {
		case len(rh) == 0:
			m.Nowhere += dt
		case len(rh) > 1:
			m.Double += dt
		}
		if slices.ContainsFunc(rh, func(h string) bool { return s.role(h) == RolePrimary }) {
			m.OnPrimary += dt
		}
		if slices.ContainsFunc(rh, s.writable) {
			m.OnWritable += dt
			writableRun += dt
			m.LongestOnWritable = max(m.LongestOnWritable, writableRun)
		} else {
			writableRun = 0
		}
		if m.New != "" && s.holds(m.New) {
			if onNewFrom < 0 {
				onNewFrom = i
			}
		} else {
			onNewFrom = -1
		}
	}
	if onNewFrom >= 0 {
		m.ToOnNew = max(rt[onNewFrom].At.Sub(trigger), 0)
	}
	return m
}

// VIPMovements is how each of the cluster's VIPs moved after one trigger.
type VIPMovements struct {
	Movement              // the VIP that follows the primary
	Read     ReadMovement // ReadVIP, with Options.ReadVIP
	IPv6     Movement     // VIP6, with Options.IPv6VIP
}

// MeasureVIPs fires tr as Measure does and, once the primary's VIP has settled, waits
// until the other VIPs have too (see settledOthers): the read VIP on one replica, another
// than the one that held it before if readLeaves, and the IPv6 VIP on the primary alone,
// for settleFor. It returns the movement of each VIP over the whole record.
func (c *Cluster) MeasureVIPs(ctx context.Context, tr Trigger, readLeaves bool) (VIPMovements, error) {
	var oldRead string
	if c.opts.ReadVIP {
		h, err := c.ReadHolder()
		if err != nil {
			return VIPMovements{Movement: Movement{Scenario: tr.Name}}, fmt.Errorf("%s: before the trigger: %w", tr.Name, err)
		}
		oldRead = h.Name
	}
	m, err := c.Measure(ctx, tr)
	fired := m.Trigger.Add(m.Fired)
	if err == nil {
		timeout := tr.Timeout
		if tr.WaitsForTTL {
			timeout += c.TTL()
		}
		err = waitFor(ctx, tr.Name+": the other VIPs settle", timeout, c.opts.PollInterval, func() (bool, string, error) {
			return c.settledOthers(fired, oldRead, readLeaves)
		})
	}
	vm := VIPMovements{Movement: m}
	if !m.Trigger.IsZero() {
		tl := c.Timeline(m.Trigger.Add(-time.Second), time.Now())
		vm.Movement = tl.Analyze(m.Trigger, m.Old)
		vm.Scenario, vm.Fired = m.Scenario, m.Fired
		vm.Read = tl.AnalyzeRead(m.Trigger, oldRead)
		vm.IPv6 = tl.For(VIP6).Analyze(m.Trigger, m.Old)
		vm.IPv6.Scenario = m.Scenario
	}
	return vm, err
}

// settledOthers reports whether, for the last settleFor and since fired, the read VIP
// has been on one reachable replica (not oldRead if readLeaves) whose watcher says it
// qualifies, and the IPv6 VIP on the primary alone; else what is not so.
func (c *Cluster) settledOthers(fired time.Time, oldRead string, readLeaves bool) (bool, string, error) {
	tl := c.Timeline(time.Now().Add(-settleFor), time.Now())
	if len(tl) == 0 || tl[0].At.Before(fired) || time.Since(tl[0].At) < settleFor-2*c.opts.PollInterval {
		return false, "recording", nil
	}
	var readOn string
	for _, s := range tl {
		if c.opts.ReadVIP {
			rh := s.For(ReadVIP).ReachableHolders()
			switch {
			case len(rh) != 1:
				return false, "read VIP on " + fmt.Sprint(rh) + ": " + s.describe(), nil
			case s.role(rh[0]) != "replica":
				return false, "read VIP on " + rh[0] + ", not a replica: " + s.describe(), nil
			case readLeaves && rh[0] == oldRead:
				return false, "read VIP still on " + oldRead, nil
			case readOn != "" && rh[0] != readOn:
				return false, "read VIP moving", nil
			}
			readOn = rh[0]
		}
		if c.opts.IPv6VIP {
			if h := s.For(VIP6).ReachableHolders(); len(h) != 1 || h[0] != s.Leader {
				return false, fmt.Sprintf("IPv6 VIP on %v, leader %s", h, s.Leader), nil
			}
		}
	}
	if readOn != "" {
		if f := c.Node(readOn).InstanceTrackFile(ReadInstance); f != "1" {
			return false, fmt.Sprintf("the read VIP is on %s, whose watcher's file says %q", readOn, f), nil
		}
	}
	return true, "", nil
}

// For is the sample as seen for another VIP (see Timeline.For).
func (s Sample) For(addr string) Sample {
	s.Holders = s.Others[addr]
	return s
}

// WaitVIPs waits until every VIP is where it belongs (see settledOthers, with the
// primary's VIP on the primary) and has stayed there for settleFor.
func (c *Cluster) WaitVIPs(ctx context.Context, timeout time.Duration) error {
	since := time.Now()
	return waitFor(ctx, "every VIP in place", timeout, c.opts.PollInterval, func() (bool, string, error) {
		for _, s := range c.Timeline(time.Now().Add(-settleFor), time.Now()) {
			if rh := s.ReachableHolders(); len(rh) != 1 || rh[0] != s.Leader {
				return false, "primary VIP: " + s.describe(), nil
			}
		}
		return c.settledOthers(since, "", false)
	})
}

// Streams reports whether n streams from the primary right now, as the primary's Patroni
// sees it.
func (c *Cluster) Streams(ctx context.Context, n *Node) bool {
	leader, err := c.Leader(ctx)
	if err != nil || leader == "" {
		return false
	}
	return c.streamsFrom(ctx, n, leader)
}

// query runs sql on the node's PostgreSQL, from the switch, and returns the first
// column of its first row.
func (n *Node) query(ctx context.Context, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	pg := &pgConn{addr: n.Addr + ":5432", dial: dialIn(n.c.swNS)}
	defer pg.close()
	v, err := pg.query(ctx, sql)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", n.Name, sql, err)
	}
	return v, nil
}

// lagTable is the table whose lock holds a replica's replay back (HoldReplay).
const lagTable = "pvc_e2e_lag"

// HoldReplay holds the node's WAL replay back, the node a replica, as a long query on a
// replica does: a transaction on it reads lagTable and stays open, and the primary p
// truncates the table. Replaying the truncation needs the lock the transaction holds, so
// PostgreSQL stops replaying there and waits, up to max_standby_streaming_delay (30 s by
// default) before it cancels the transaction; it goes on receiving WAL meanwhile and
// stays a running replica for Patroni, whose lag then grows with every write on the
// primary. (pg_wal_replay_pause() would not last: Patroni resumes a paused replay at its
// next loop on PostgreSQL 14 and later, "Resuming paused WAL replay".) Release ends it.
func (n *Node) HoldReplay(ctx context.Context, p *Node) error {
	if _, err := p.query(ctx, "create table if not exists "+lagTable+" (); select 1"); err != nil {
		return err
	}
	if err := waitFor(ctx, n.Name+" has "+lagTable, 30*time.Second, 50*time.Millisecond, func() (bool, string, error) {
		v, err := n.query(ctx, "select to_regclass('"+lagTable+"') is not null")
		if err != nil {
			return false, err.Error(), nil
		}
		return v == "t", "not replayed yet", nil
	}); err != nil {
		return err
	}
	hold := &pgConn{addr: n.Addr + ":5432", dial: dialIn(n.c.swNS)}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := hold.query(qctx, "begin; select count(*) from "+lagTable); err != nil {
		return fmt.Errorf("%s: holding %s: %w", n.Name, lagTable, err)
	}
	hold.conn.SetDeadline(time.Time{}) // the transaction stays open until Release
	n.mu.Lock()
	n.replayHold = hold
	n.mu.Unlock()
	if _, err := p.query(ctx, "truncate "+lagTable+"; select 1"); err != nil {
		return err
	}
	return waitFor(ctx, n.Name+"'s replay held back", 10*time.Second, 50*time.Millisecond, func() (bool, string, error) {
		v, err := n.query(ctx, "select count(*) from pg_stat_activity where backend_type = 'startup' and wait_event_type = 'Lock'")
		if err != nil {
			return false, err.Error(), nil
		}
		return v == "1", "the startup process does not wait for a lock", nil
	})
}

// ReleaseReplays ends every transaction HoldReplay keeps open, so that the replicas replay
// again.
func (c *Cluster) ReleaseReplays() {
	for _, n := range c.nodes {
		n.mu.Lock()
		hold := n.replayHold
		n.replayHold = nil
		n.mu.Unlock()
		if hold != nil {
			hold.close()
		}
	}
}

// WriteWAL commits size bytes of WAL on the node, the primary, in one transaction: a
// logical decoding message, which writes its content to the WAL and nothing else (no
// table grows, whatever the wal_level).
func (n *Node) WriteWAL(ctx context.Context, size int) error {
	_, err := n.query(ctx, fmt.Sprintf("select pg_logical_emit_message(true, 'pvc-e2e', repeat('x', %d))", size))
	return err
}

// StopReadReplica stops the Patroni (and so the PostgreSQL) of the replica that holds
// the read VIP, gracefully: the read VIP must leave it for the other replica.
func StopReadReplica() Trigger {
	return Trigger{Name: "read VIP's replica stopped", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error {
			h, err := c.ReadHolder()
			if err != nil {
				return err
			}
			return h.StopPatroni(ctx)
		}}
}

// KillReadReplica SIGKILLs the Patroni and the PostgreSQL of the replica that holds the
// read VIP (see KillPatroni): its watcher finds nothing to ask.
func KillReadReplica() Trigger {
	return Trigger{Name: "read VIP's replica killed", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error {
			h, err := c.ReadHolder()
			if err != nil {
				return err
			}
			return h.KillPatroni(ctx)
		}}
}

// SwitchoverToReadReplica is a switchover to the replica that holds the read VIP: the
// read VIP must leave it as it is promoted.
func SwitchoverToReadReplica() Trigger {
	return Trigger{Name: "switchover to the read VIP's replica", Timeout: 30 * time.Second,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error {
			h, err := c.ReadHolder()
			if err != nil {
				return err
			}
			return c.Switchover(ctx, h.Name)
		}}
}

// LagReadReplica makes the replica that holds the read VIP lag: its replay held back
// (HoldReplay, before the trigger's time is taken), then half as much again as the bound
// (MaxLag) written on the primary in one transaction; Fire ends with the commit. Patroni
// before 4.1 measures the lag against the position the leader last wrote to the DCS
// (each loop_wait), 4.1 also against what the replica last received. Undo it with
// ReleaseReplays.
func LagReadReplica() Trigger {
	return Trigger{Name: "read VIP's replica lagging", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Prepare: func(ctx context.Context, c *Cluster) error {
			h, err := c.ReadHolder()
			if err != nil {
				return err
			}
			leader, err := c.Leader(ctx)
			if err != nil || c.Node(leader) == nil {
				return fmt.Errorf("no primary (%q, %v)", leader, err)
			}
			return h.HoldReplay(ctx, c.Node(leader))
		},
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.WriteWAL(ctx, maxLagBytes*3/2) }}
}

// KillReadWatcher SIGKILLs the watcher of the read VIP's replica (patroni-vip-check@replica):
// the unit's command after stop removes its track file, the read VIP leaves, and the
// service starts the watcher again; the node's other watchers go on.
func KillReadWatcher() Trigger {
	return Trigger{Name: "kill -9 of the read VIP's watcher", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error {
			h, err := c.ReadHolder()
			if err != nil {
				return err
			}
			svc := h.Instance(ReadInstance)
			if svc == nil {
				return fmt.Errorf("%s runs no patroni-vip-check@%s", h.Name, ReadInstance)
			}
			return svc.Signal(syscall.SIGKILL)
		}}
}

// FormatVIPMovements renders how each VIP moved, seconds from each trigger: the
// primary's VIP as FormatMovements does, then the read VIP's (from which replica to
// which, when it left, when it was on the new one to stay, how long it was nowhere, on
// two nodes, on a node that accepted writes) and the IPv6 VIP's.
func FormatVIPMovements(ms []VIPMovements) string {
	var b strings.Builder
	sec := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	fmt.Fprintf(&b, "%-36s | %-7s %8s %7s %10s | %-7s %6s %8s %7s %7s %8s | %8s %7s %10s\n",
		"", "primary", "new-prim", "double", "unwritable", "read", "gone", "on new", "nowhere", "double", "writable",
		"v6 new-p", "double", "unwritable")
	for _, m := range ms {
		fmt.Fprintf(&b, "%-36s | %-7s %8s %7s %10s | %-7s %6s %8s %7s %7s %8s | %8s %7s %10s\n",
			m.Scenario, m.Old+"→"+orDash(m.New), sec(m.FollowDelay()), sec(m.Double), sec(m.Unwritable),
			orDash(m.Read.Old)+"→"+orDash(m.Read.New), sec(m.Read.ToGone), sec(m.Read.ToOnNew), sec(m.Read.Nowhere),
			sec(m.Read.Double), sec(m.Read.OnWritable),
			sec(m.IPv6.FollowDelay()), sec(m.IPv6.Double), sec(m.IPv6.Unwritable))
	}
	return b.String()
}
