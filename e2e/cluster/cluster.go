// Package cluster brings up, on one Linux machine, a real three-node Patroni cluster whose
// virtual IP is moved by keepalived running patroni-vip-check with the project's example
// keepalived.conf, by keepalived running the curl line the project replaces, or by
// vip-manager; and records, every 100 ms, which node holds the VIP, which one holds
// Patroni's leader key and which PostgreSQL is a primary.
//
// Each node is a network namespace joined to a "switch" namespace (a Linux bridge, etcd,
// clients) by a veth pair whose node end is eth0; the nodes are 198.51.100.11–.13/24, the
// VIP 198.51.100.100, etcd 198.51.100.2. The root namespace's network is never touched.
// keepalived runs in a private mount namespace too, where /dev/log is a socket of this
// package and the check is installed as /usr/bin/patroni-vip-check, so the example
// configuration is used exactly as shipped. Everything runs as root.
//
// The software is a Stack: the host's Debian 12 packages (Patroni 3.0, PostgreSQL 15,
// etcd 3.4, keepalived 2.2), or Debian 13's (Patroni 4.0, PostgreSQL 17, etcd 3.5,
// keepalived 2.3) or Debian unstable's (Patroni 4.1, PostgreSQL 18, etcd 3.5, keepalived
// 2.3.4) from a root filesystem that package rootfs builds and caches, each program
// chrooted into it in a mount namespace of its own (see Cluster.command).
//
// Besides the VIP, the timeline records whether each node's PostgreSQL accepts writes,
// asked on a fresh connection (see writeProbe), so that a movement is judged against
// PostgreSQL itself. Triggers include the outages operators ask about: the DCS down
// (StopDCS, WithFailsafe), the primary cut from the DCS (CutPrimaryFromDCS), Patroni
// frozen (PausePrimary) and a full CPU with clients writing (LoadPrimary).
//
// Used by the end-to-end tests, `make demo` and the benchmarks, like this:
//
//	stack, err := cluster.OpenStack(ctx, "debian13", cluster.StackOptions{}) // or HostStack()
//	defer stack.Close()
//	c, err := cluster.Start(ctx, cluster.Options{Stack: stack, CheckBinary: bin}) // or Mode: cluster.ModeCurl …
//	defer c.Close()
//	m, err := c.Measure(ctx, cluster.KillPrimary()) // Switchover(""), StopPrimary(), …
//	fmt.Print(cluster.FormatMovements([]cluster.Movement{m}))
//	_, err = c.Restore(ctx, 2*time.Minute) // three healthy members again
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Addresses of the lab network.
const (
	Subnet     = "198.51.100.0/24"
	SwitchAddr = "198.51.100.2"   // the bridge: etcd and clients
	VIP        = "198.51.100.100" // moved between the nodes
	Scope      = "e2e"            // Patroni's cluster name
	nodeCount  = 3
)

// NodeAddr is the address of node i (1-based): 198.51.100.11, .12, .13.
func NodeAddr(i int) string { return fmt.Sprintf("198.51.100.%d", 10+i) }

// Prefix starts the name of every namespace and temporary directory this package makes,
// followed by the owning process's PID, so that a later run can remove what a crashed
// one left behind.
const Prefix = "pvc-e2e-"

// Mode is what moves the VIP.
type Mode string

const (
	// ModeCheck: keepalived with the example keepalived.conf and patroni-vip-check.
	ModeCheck Mode = "patroni-vip-check"
	// ModeCurl: keepalived with the example keepalived.conf whose script line is the
	// original blog's `/usr/bin/curl -X GET -I --fail http://NODE:8008/primary`.
	ModeCurl Mode = "curl"
	// ModeVIPManager: no keepalived; Debian's vip-manager watches the DCS leader key.
	ModeVIPManager Mode = "vip-manager"
	// ModeWatch: keepalived with the example keepalived-watch.conf, reading the track
	// file that patroni-vip-check.service keeps, run as the shipped unit says (see
	// Service).
	ModeWatch Mode = "watch"
)

// checked reports whether the check moves the VIP: the check or its watch.
func (m Mode) checked() bool { return m == ModeCheck || m == ModeWatch }

// CurlCommand is the check line this project replaces, for node address addr.
func CurlCommand(addr string) string {
	return "/usr/bin/curl -X GET -I --fail http://" + addr + ":8008/primary"
}

// Options configure a cluster. The zero value of every field but CheckBinary (needed in
// ModeCheck) is usable.
type Options struct {
	Mode Mode // default ModeCheck

	// Stack is the software the cluster runs; default HostStack(). Open it with
	// OpenStack, and close it after the cluster.
	Stack *Stack

	// CheckBinary is the patroni-vip-check binary to install (ModeCheck, ModeWatch).
	CheckBinary string

	// KeepalivedConf is node 1's keepalived.conf, run as it is. With the check, the
	// other nodes' are written by the check's generator (patroni-vip-check
	// keepalived-conf, run on each node against its own Patroni), for the set-up node
	// 1's runs; otherwise they are derived with NodeKeepalivedConf. Default:
	// packaging/keepalived.conf, or packaging/keepalived-watch.conf in ModeWatch.
	KeepalivedConf string

	// UnitFile is the service ModeWatch runs on each node; default
	// packaging/patroni-vip-check.service. WatchArgs go into its environment file's
	// PATRONI_VIP_CHECK_ARGS before the node's own (benchmarks try other intervals).
	// The node's own: on nodes 2 and 3 what the generator's configuration says they
	// are (its PATRONI_VIP_CHECK_ARGS comment: --pgdata and the URL), on node 1, which
	// runs the example, --pgdata with its data directory and its URL.
	UnitFile  string
	WatchArgs []string

	// WatchPollsAlone (ModeWatch) runs the watchers without --pgdata, on --interval
	// alone: node 1's is not given it, and it is taken out of the generator's arguments
	// for nodes 2 and 3. Benchmarks compare.
	WatchPollsAlone bool

	// KeepalivedFor is the keepalived version node 1's configuration is written for,
	// which the generator is told for nodes 2 and 3 ("2.2.7"); default: the stack's own.
	KeepalivedFor string

	// EditKeepalived, if set, edits each node's derived configuration last (node is
	// 1-based); benchmarks use it to try other timings.
	EditKeepalived func(node int, conf string) string

	// ReadVIP, in ModeWatch, adds the read VIP (ReadVIP, the address), which one
	// replica holds (see vips.go): node 1 runs packaging/keepalived-read-vip.conf unless
	// KeepalivedConf says otherwise, the generator writes it on nodes 2 and 3
	// (--replica-vip), and every node runs patroni-vip-check@replica, an instance of
	// the template unit, beside patroni-vip-check.service.
	ReadVIP bool
	// IPv6VIP, in ModeWatch, adds an IPv6 VIP (VIP6) that follows the primary: the
	// nodes get IPv6 addresses (NodeAddr6), Patroni's REST API and PostgreSQL listen
	// on them too, the generator writes each node a configuration of its own for it
	// (--instance v6), which keepalived.conf includes, and patroni-vip-check@v6 keeps
	// its track file, asking Patroni over IPv6.
	IPv6VIP bool

	// Patroni's DCS timing, seconds. Defaults: ttl 10 (or the stack's MinTTL if higher:
	// 20 for Patroni 4), loop_wait 1, retry_timeout 4 (Patroni's maintainers ask for
	// ttl ≥ loop_wait + 2×retry_timeout, patroni/patroni#1016). A ttl below the
	// stack's MinTTL is an error: Patroni would silently use another.
	TTL, LoopWait, RetryTimeout int

	// DCSv2 runs Patroni on etcd's v2 API. Forced in ModeVIPManager: vip-manager 1.0.2
	// (Debian 12's and 13's) reads the leader key through the v2 API only.
	DCSv2 bool

	// VIPManagerInterval is vip-manager's DCS polling interval (its default: 1s).
	VIPManagerInterval time.Duration

	// PollInterval is the timeline's sampling period; default 100ms.
	PollInterval time.Duration

	// LogDir receives every log (etcd, Patroni, keepalived, each node's syslog, the
	// configurations). Default: inside the run directory, removed by Close.
	LogDir string

	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)

	tmpfiles string // packaging/tmpfiles.conf, applied to each node's root
	template string // packaging/patroni-vip-check@.service, for ReadVIP and IPv6VIP
}

// Cluster is a running lab. It samples itself in the background (see Timeline) while
// its methods are used.
type Cluster struct {
	opts     Options
	id       string // Prefix + PID + sequence
	dir      string // run directory, 0755 root so that postgres can traverse it
	logDir   string
	swNS     string
	nodes    []*Node
	etcd     *proc
	http     *http.Client // dials from the switch namespace
	swLinks  *netlinkSock
	poll     *poller
	addrs    *addrWatch // the VIP's additions and removals, see events.go
	keepConf []string   // per node keepalived.conf, 0-based

	// BringUp holds how long each phase of Start took.
	BringUp []Phase
	// Repairs lists the members Restore had to rebuild.
	Repairs []string

	mu     sync.Mutex
	closed bool
}

// Phase is one timed step.
type Phase struct {
	Name string
	Took time.Duration
}

// Node is one PostgreSQL + Patroni + VIP agent host.
type Node struct {
	Name  string // n1, n2, n3
	Index int    // 1-based
	Addr  string
	NS    string // network namespace

	c       *Cluster
	dir     string // root-owned: configs, sockets, the private /run
	pgDir   string // postgres-owned: data, sockets, pgpass
	links   *netlinkSock
	syslog  *collector
	mu      sync.Mutex
	patroni *proc
	agent   *proc    // keepalived or vip-manager
	service *Service // patroni-vip-check.service, in ModeWatch
	genArgs []string // the generator's PATRONI_VIP_CHECK_ARGS for this node (nodes 2, 3)
	paused  bool
	cut     bool
	dcsCut  bool // see CutFromDCS

	// instances are the template unit's instances (ReadVIP, IPv6VIP), by name;
	// instanceArgs what the generator's comments give each as its PATRONI_VIP_CHECK_ARGS
	// (none on node 1 for the read VIP: it runs the example).
	instances    map[string]*Service
	instanceArgs map[string][]string
	replayHold   *pgConn // see HoldReplay
}

var clusterSeq atomic.Int32

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// Start brings a cluster up: network, etcd, node 1's Patroni alone (so the first
// primary is n1), the two replicas, then the VIP agents; it returns once n1 holds the VIP
// and both replicas stream. On failure everything started is torn down.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Mode == "" {
		opts.Mode = ModeCheck
	}
	if opts.Mode == ModeVIPManager {
		opts.DCSv2 = true
	}
	if opts.Stack == nil {
		opts.Stack = HostStack()
	}
	if opts.TTL == 0 {
		opts.TTL, opts.LoopWait, opts.RetryTimeout = opts.Stack.DefaultTTL(), 1, 4
	}
	if opts.TTL < opts.Stack.MinTTL {
		return nil, fmt.Errorf("ttl %d: %s's Patroni %d refuses a ttl below %d", opts.TTL, opts.Stack.Name, opts.Stack.PatroniMajor, opts.Stack.MinTTL)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.VIPManagerInterval == 0 {
		opts.VIPManagerInterval = time.Second
	}
	if err := Preflight(opts.Mode, opts.Stack); err != nil {
		return nil, err
	}
	if opts.Mode.checked() {
		if opts.CheckBinary == "" {
			return nil, fmt.Errorf("%s needs Options.CheckBinary", opts.Mode)
		}
		if _, err := os.Stat(opts.CheckBinary); err != nil {
			return nil, err
		}
	}
	if (opts.ReadVIP || opts.IPv6VIP) && opts.Mode != ModeWatch {
		return nil, fmt.Errorf("a read VIP and an IPv6 VIP are set up in ModeWatch only, not %s", opts.Mode)
	}
	if opts.Mode != ModeVIPManager {
		root, err := RepoRoot()
		if err != nil {
			return nil, fmt.Errorf("finding packaging/: %w (run from the repository)", err)
		}
		if opts.KeepalivedConf == "" {
			name := "keepalived.conf"
			switch {
			case opts.ReadVIP:
				name = "keepalived-read-vip.conf"
			case opts.Mode == ModeWatch:
				name = "keepalived-watch.conf"
			}
			b, err := os.ReadFile(filepath.Join(root, "packaging", name))
			if err != nil {
				return nil, err
			}
			opts.KeepalivedConf = string(b)
		}
		if opts.UnitFile == "" {
			opts.UnitFile = filepath.Join(root, "packaging", "patroni-vip-check.service")
		}
		opts.template = filepath.Join(root, "packaging", "patroni-vip-check@.service")
		tmpfiles, err := os.ReadFile(filepath.Join(root, "packaging", "tmpfiles.conf"))
		if err != nil {
			return nil, err
		}
		opts.tmpfiles = string(tmpfiles)
	}
	CleanStale(opts.Logf)

	c := &Cluster{opts: opts}
	c.id = fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), clusterSeq.Add(1))
	if err := c.start(ctx); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("teardown: %w", cerr))
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) phase(name string, since time.Time) {
	d := time.Since(since)
	c.BringUp = append(c.BringUp, Phase{name, d})
	c.logf("%-28s %6.2fs", name, d.Seconds())
}

func (c *Cluster) start(ctx context.Context) error {
	var err error
	if c.dir, err = os.MkdirTemp("", c.id+"-"); err != nil {
		return err
	}
	// MkdirTemp makes 0700; postgres must traverse it to reach its own directories.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return err
	}
	c.logDir = c.opts.LogDir
	if c.logDir == "" {
		c.logDir = filepath.Join(c.dir, "log")
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil { // a LogDir given may exist
		return err
	}
	// The stack's postgres, which may not be the host's (see Stack.lookupUser).
	pgUID, pgGID, err := c.opts.Stack.lookupUser("postgres")
	if err != nil {
		return err
	}

	c.swNS = c.id + "-sw"
	for i := 1; i <= nodeCount; i++ {
		n := &Node{Name: fmt.Sprintf("n%d", i), Index: i, Addr: NodeAddr(i), c: c}
		n.NS = c.id + "-" + n.Name
		n.dir = filepath.Join(c.dir, n.Name)
		n.pgDir = filepath.Join(n.dir, "pg")
		// Modes set explicitly, whatever the umask: postgres traverses n.dir, and the
		// private /run and /usr/bin layer must look like a host's.
		for _, d := range []string{n.dir, n.RunDir(), filepath.Join(n.dir, "bin")} {
			if err := mkdir(d, 0o755, -1, -1); err != nil {
				return err
			}
		}
		for _, d := range []string{n.pgDir, filepath.Join(n.pgDir, "sock")} {
			if err := mkdir(d, 0o700, pgUID, pgGID); err != nil {
				return err
			}
		}
		c.nodes = append(c.nodes, n)
	}

	t := time.Now()
	if err := c.startNetwork(ctx); err != nil {
		return err
	}
	if c.addrs, err = c.watchAddrs(); err != nil {
		return err
	}
	c.phase("network", t)

	c.http = &http.Client{Transport: &http.Transport{
		DialContext:         dialIn(c.swNS),
		Proxy:               nil,
		MaxIdleConnsPerHost: 2,
	}}
	c.poll = newPoller(c)

	t = time.Now()
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	c.phase("etcd", t)

	t = time.Now()
	if err := c.writeFile(filepath.Join(c.dir, "patronictl.yml"), c.patronictlConfig()); err != nil {
		return err
	}
	for _, n := range c.nodes {
		conf := c.patroniConfig(n)
		if c.opts.IPv6VIP {
			if conf, err = listenIPv6(conf, n); err != nil {
				return err
			}
		}
		if err := c.writeFile(filepath.Join(n.dir, "patroni.yml"), conf); err != nil {
			return err
		}
	}
	n1 := c.nodes[0]
	if err := n1.StartPatroni(); err != nil {
		return err
	}
	if err := waitFor(ctx, "n1 bootstraps as primary", 90*time.Second, 200*time.Millisecond, func() (bool, string, error) {
		if !n1.patroniRunning() {
			return false, "", fmt.Errorf("patroni on n1 exited; see %s", n1.PatroniLogPath())
		}
		st, err := n1.Status(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		leader, _ := c.Leader(ctx)
		return st.Running() && st.Role == c.opts.Stack.PrimaryRole && leader == "n1", fmt.Sprintf("state %s role %s leader %q", st.State, st.Role, leader), nil
	}); err != nil {
		return err
	}
	c.phase("first primary (n1)", t)

	t = time.Now()
	for _, n := range c.nodes[1:] {
		if err := n.StartPatroni(); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, "replicas stream", 120*time.Second, 250*time.Millisecond, func() (bool, string, error) {
		why, err := c.patroniHealthy(ctx)
		return why == "", why, err
	}); err != nil {
		return err
	}
	c.phase("replicas streaming", t)

	t = time.Now()
	for _, n := range c.nodes {
		if n.syslog, err = newCollector(filepath.Join(n.dir, "log.sock"), filepath.Join(c.logDir, n.Name+"-syslog.log")); err != nil {
			return err
		}
	}
	if err := c.startAgents(ctx); err != nil {
		return err
	}
	c.poll.start()
	if _, err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
		return err
	}
	c.phase("VIP on the primary", t)
	return nil
}

// mkdir makes dir with exactly mode, owned by uid:gid (-1: unchanged).
func mkdir(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.Mkdir(dir, mode); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

func (c *Cluster) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	// A copy next to the logs, to read after the run directory is gone.
	if c.logDir != "" && !strings.HasPrefix(path, c.logDir) {
		rel, _ := filepath.Rel(c.dir, path)
		_ = os.WriteFile(filepath.Join(c.logDir, strings.ReplaceAll(rel, "/", "-")), []byte(content), 0o644)
	}
	return nil
}

func (c *Cluster) startNetwork(ctx context.Context) error {
	sw := c.swNS
	cmds := [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
		{"-n", sw, "addr", "add", SwitchAddr + "/24", "dev", "br0"},
	}
	for _, n := range c.nodes {
		cmds = append(cmds,
			[]string{"netns", "add", n.NS},
			[]string{"-n", n.NS, "link", "set", "lo", "up"},
			// The pair is created inside the switch namespace and its node end moved
			// straight into the node's: nothing appears in the root namespace.
			[]string{"-n", sw, "link", "add", n.Name, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
			[]string{"-n", sw, "link", "set", n.Name, "master", "br0", "up"},
			[]string{"-n", n.NS, "addr", "add", n.Addr + "/24", "dev", "eth0"},
			[]string{"-n", n.NS, "link", "set", "eth0", "up"},
		)
	}
	if c.opts.IPv6VIP {
		cmds = append(cmds, c.ipv6Network()...)
	}
	for _, args := range cmds {
		if err := ipCmd(ctx, args...); err != nil {
			return err
		}
	}
	var err error
	if c.swLinks, err = openNetlink(sw); err != nil {
		return err
	}
	for _, n := range c.nodes {
		if n.links, err = openNetlink(n.NS); err != nil {
			return err
		}
	}
	return nil
}

// WaitHealthy waits until the cluster is whole again — every Patroni running, one primary
// holding the leader key, both replicas streaming from it, and the VIP on the primary and
// on no other node — and returns the primary.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) (*Node, error) {
	var primary *Node
	err := waitFor(ctx, "cluster healthy", timeout, 250*time.Millisecond, func() (bool, string, error) {
		why, err := c.patroniHealthy(ctx)
		if err != nil || why != "" {
			return false, why, err
		}
		leader, err := c.Leader(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		holders, err := c.VIPHolders()
		if err != nil {
			return false, err.Error(), nil
		}
		if len(holders) != 1 || holders[0] != leader {
			return false, fmt.Sprintf("VIP on %v, primary %s", holders, leader), nil
		}
		if c.opts.Mode.checked() {
			// Every check has seen the cluster as it is now: its last line is the
			// primary's eligible state, or a replica's "not …".
			for _, n := range c.nodes {
				lines, _ := WithoutStalls(n.gateLog(time.Time{}))
				lines = slices.DeleteFunc(lines, WatchFileLine)
				if len(lines) == 0 {
					return false, n.Name + ": no check line yet", nil
				}
				st, _ := CheckState(lines[len(lines)-1])
				if CheckEligible(st) != (n.Name == leader) || !CheckEligible(st) && !strings.HasPrefix(st, "not ") {
					return false, fmt.Sprintf("%s: the check still says %q", n.Name, st), nil
				}
			}
		}
		primary = c.Node(leader)
		return true, "", nil
	})
	return primary, err
}

// VIPHolders lists the nodes whose namespace has the VIP configured, right now.
func (c *Cluster) VIPHolders() ([]string, error) {
	var holders []string
	for _, n := range c.nodes {
		ok, err := n.HoldsVIP()
		if err != nil {
			return nil, err
		}
		if ok {
			holders = append(holders, n.Name)
		}
	}
	return holders, nil
}

// Nodes returns the three nodes, n1 first.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node named name (n1…n3), or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Mode is what moves the VIP in this cluster.
func (c *Cluster) Mode() Mode { return c.opts.Mode }

// Stack is the software the cluster runs.
func (c *Cluster) Stack() *Stack { return c.opts.Stack }

// TTL is Patroni's DCS ttl in this cluster: how long a leader key outlives its holder.
func (c *Cluster) TTL() time.Duration { return time.Duration(c.opts.TTL) * time.Second }

// Dir is the cluster's run directory; it is removed by Close.
func (c *Cluster) Dir() string { return c.dir }

// LogDir is where this cluster's logs are written.
func (c *Cluster) LogDir() string { return c.logDir }

// KeepalivedConf returns the configuration node (1-based) runs, "" without keepalived.
func (c *Cluster) KeepalivedConf(node int) string {
	if node < 1 || node > len(c.keepConf) {
		return ""
	}
	return c.keepConf[node-1]
}

// Restore undoes what triggers did — starts the DCS if it is down, continues a stopped
// Patroni, reconnects a cut node, starts a Patroni that was stopped or killed — and waits
// until the cluster is healthy.
// A member that has not rejoined after rejoinWait is rebuilt from the primary (Reinit):
// Patroni 3.0.2 can wreck a demoted primary's data directory (see Reinit). Each rebuild
// is recorded in Repairs.
func (c *Cluster) Restore(ctx context.Context, timeout time.Duration) (*Node, error) {
	if err := c.StartEtcd(ctx); err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if err := n.ResumePatroni(); err != nil {
			return nil, err
		}
		if err := n.Reconnect(ctx); err != nil {
			return nil, err
		}
		if !n.patroniRunning() {
			if err := n.StartPatroni(); err != nil {
				return nil, err
			}
		}
	}
	const rejoinWait = 30 * time.Second
	p, err := c.WaitHealthy(ctx, min(rejoinWait, timeout))
	if err == nil || timeout <= rejoinWait {
		return p, err
	}
	leader, lerr := c.Leader(ctx)
	if lerr != nil || leader == "" {
		return nil, err
	}
	for _, n := range c.nodes {
		if n.Name == leader || c.streamsFrom(ctx, n, leader) {
			continue
		}
		c.logf("%s has not rejoined %s after %v (%v); rebuilding it from the primary", n.Name, leader, rejoinWait, err)
		c.mu.Lock()
		c.Repairs = append(c.Repairs, fmt.Sprintf("%s rebuilt: %v", n.Name, err))
		c.mu.Unlock()
		if rerr := n.Reinit(ctx); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
	}
	return c.WaitHealthy(ctx, timeout-rejoinWait)
}

// Close tears everything down: every process inside the lab's namespaces is killed by
// PID, the namespaces are deleted and the run directory is removed (logs stay if LogDir
// was given). Safe to call more than once and after a failed Start.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	t := time.Now()
	if c.poll != nil {
		c.poll.stop()
	}
	c.addrs.stop()
	// Services first, as systemd stops them: their supervisors would restart what the
	// namespaces' SIGKILL ends.
	for _, n := range c.nodes {
		if svc := n.Service(); svc != nil {
			svc.Stop()
		}
		for _, svc := range n.Instances() {
			svc.Stop()
		}
	}
	var names []string
	if c.swNS != "" {
		names = append(names, c.swNS)
	}
	for _, n := range c.nodes {
		names = append(names, n.NS)
	}
	// SIGKILL rather than an orderly stop: nothing here is worth a checkpoint, and a
	// stopped (SIGSTOP) process dies of SIGKILL too.
	var errs []error
	if err := killNamespaces(names, 20*time.Second, func(procs string) {
		c.logf("teardown: still dying a second after SIGKILL (pid, command, state): %s", procs)
	}); err != nil {
		errs = append(errs, err)
	}
	killed := time.Since(t)
	for _, p := range c.procs() {
		if err := p.wait(context.Background(), 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range c.nodes {
		if n.syslog != nil {
			n.syslog.close()
		}
		if n.links != nil {
			n.links.Close()
		}
	}
	if c.swLinks != nil {
		c.swLinks.Close()
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	removing := time.Now()
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	c.logf("%-28s %6.2fs (killing %.2fs, removing the run directory %.2fs)", "teardown",
		time.Since(t).Seconds(), killed.Seconds(), time.Since(removing).Seconds())
	return errors.Join(errs...)
}

func (c *Cluster) procs() []*proc {
	var ps []*proc
	if c.etcd != nil {
		ps = append(ps, c.etcd)
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		for _, p := range []*proc{n.patroni, n.agent} {
			if p != nil {
				ps = append(ps, p)
			}
		}
		n.mu.Unlock()
	}
	return ps
}
