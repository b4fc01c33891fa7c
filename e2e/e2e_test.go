//go:build e2e

// The end-to-end suite: a real Patroni cluster with keepalived gated by patroni-vip-check,
// in network namespaces (see package cluster), once per stack and set-up: keepalived
// running the check (packaging/keepalived.conf on keepalived 2.2, keepalived-2.3.conf on
// 2.3) and keepalived reading the track file of patroni-vip-check.service
// (keepalived-watch.conf). It needs root and the Debian packages of `make deps`; run it
// with `make e2e`.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
)

// Bounds the suite asserts. followBound: from Patroni's new primary running to the VIP on
// it. A node whose check has just passed waits for the master-down timer, 3 × advert_int +
// skew (0.035 s with the watch example's advert_int 0.01, 0.07 s with the others' 0.02,
// 3.6 s with the curl baseline's 1 s),
// after its check's next run (at most 1 s); 8 s leaves room for a loaded two-core machine.
const (
	followBound  = 8 * time.Second
	vipGoneBound = 4 * time.Second // from a hung REST API to the VIP gone: one check deadline and a run
	// quietFor: a steady state with no line; 30 runs of a check every second, 150 polls
	// of a watcher.
	quietFor = 30 * time.Second
	// garpDelay: keepalived's default vrrp_garp_master_delay.
	garpDelay = 5 * time.Second
)

// Bounds that follow from Patroni's ttl, which depends on the stack (Patroni 4 refuses
// less than 20 s).
func (s *suite) pauseFor() time.Duration { return s.c.TTL() + 5*time.Second } // a hung REST API outlives the leader key
// failoverBound: from a crash or a cut to the new primary: the leader key expires within
// a ttl, then a replica's next loop takes it and promotes.
func (s *suite) failoverBound() time.Duration { return s.c.TTL() + 10*time.Second }

// suite is the state shared by the scenarios, which run in order on one stack's cluster.
type suite struct {
	stack     *cluster.Stack
	mode      cluster.Mode // ModeCheck or ModeWatch
	c         *cluster.Cluster
	repo      string // the repository's root
	bin       string // the check
	userAgent string // the check's, as it sends it
	example   string // the keepalived.conf node 1 runs verbatim
	gate      string // its vrrp_script's or track_file's name
	movements []cluster.Movement
	broken    string // the scenario after which the cluster could not be restored
	// stallsSeen: the last stall line of each report, so that each is reported once.
	stallsSeen []string
	// loads: the set-ups' CPU loads take turns, each with the machine to itself (see
	// loadGate); arrived: this one has reached it.
	loads   *loadGate
	arrived bool
}

// TestEndToEnd runs the suite once per stack and set-up — TestEndToEnd/debian12/oneshot/…,
// TestEndToEnd/sid/watch/… — each on a cluster of its own, all at the same time (each
// cluster lives in namespaces of its own; their CPU loads, last, take turns: see
// loadGate), then each stack's baselines one after the other, and beside them the watch
// with a read VIP and an IPv6 VIP (TestEndToEnd/debian12/vips/…, vips_test.go).
// PVC_STACKS picks stacks ("sid", "debian12 debian13"; default all), PVC_SETUPS set-ups
// ("oneshot", "watch", "vips"; default all), PVC_E2E_SERIAL=1 runs the stacks and the
// set-ups one after the other.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	names, err := selectedStacks(os.Getenv("PVC_STACKS"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := cluster.CheckBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	// "patroni-vip-check 1.2.3" → the User-Agent the check sends.
	userAgent := strings.Replace(strings.TrimSpace(string(out)), " ", "/", 1)
	logDir := filepath.Join(root, "e2e", "out", time.Now().UTC().Format("20060102T150405Z"))
	t.Logf("check binary %s (%s); stacks %s; logs in %s", bin, userAgent, strings.Join(names, ", "), logDir)
	// Every stack first, so that building a root (a minute or two of debootstrap and
	// dpkg, on both cores) never overlaps a stack's timed scenarios. A stack that cannot
	// be had fails its own subtest only.
	stacks := map[string]*cluster.Stack{}
	openErr := map[string]error{}
	for _, name := range names {
		t0 := time.Now()
		stack, err := cluster.OpenStack(ctx, name, cluster.StackOptions{Logf: t.Logf})
		if err != nil {
			openErr[name] = err
			continue
		}
		t.Cleanup(func() { stack.Close() })
		t.Logf("stack %s ready in %.1fs (root %s)", name, time.Since(t0).Seconds(), stack.Root)
		stacks[name] = stack
	}
	serial := os.Getenv("PVC_E2E_SERIAL") != ""
	setups := []struct {
		name, example string
		mode          cluster.Mode
	}{
		{"oneshot", "", cluster.ModeCheck}, // the example depends on the stack's keepalived
		{"watch", "keepalived-watch.conf", cluster.ModeWatch},
	}
	if only := os.Getenv("PVC_SETUPS"); only != "" {
		setups = slices.DeleteFunc(setups, func(s struct {
			name, example string
			mode          cluster.Mode
		}) bool {
			return !slices.Contains(strings.Fields(only), s.name)
		})
	}
	// Every set-up that will run is a member of the load gate from the start, so that
	// none goes through it alone while the others are still on their way.
	var loads *loadGate
	if !serial {
		loads = newLoadGate(len(stacks) * len(setups))
	}
	// stackTest runs one stack's set-ups, then its baselines.
	stackTest := func(t *testing.T, name string) {
		if err := openErr[name]; err != nil {
			t.Fatalf("stack %s: %v", name, err)
		}
		// A set-up that never starts leaves the gate.
		notStarted := len(setups)
		defer func() {
			for ; notStarted > 0; notStarted-- {
				loads.leave()
			}
		}()
		stack := stacks[name]
		if err := cluster.Preflight(cluster.ModeCheck, stack); err != nil {
			t.Fatalf("end-to-end suite cannot run: %v", err)
		}
		// Each example on the keepalived it is written for, byte for byte.
		oneshot := "keepalived.conf"
		if stack.FractionalIntervals {
			oneshot = "keepalived-2.3.conf"
		}
		// The set-ups run at the same time, each on a cluster of its own (the two
		// stacks' four clusters share the machine), then the baselines.
		var wg sync.WaitGroup
		for _, setup := range setups {
			if setup.example == "" {
				setup.example = oneshot
			}
			example, err := os.ReadFile(filepath.Join(root, "packaging", setup.example))
			if err != nil {
				t.Fatal(err)
			}
			notStarted--
			s := &suite{stack: stack, mode: setup.mode, repo: root, bin: bin, userAgent: userAgent, example: string(example), loads: loads}
			runSetup := func() {
				ran := false
				t.Run(setup.name, func(t *testing.T) {
					ran = true
					t.Logf("%s: packaging/%s on node 1, the generator's output on nodes 2 and 3", setup.name, setup.example)
					s.run(t, filepath.Join(logDir, name, setup.name))
				})
				if !ran { // left out by go test -run
					loads.leave()
				}
			}
			if serial {
				runSetup()
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); runSetup() }()
		}
		wg.Wait()
		// The watch with a read VIP and an IPv6 VIP, on a cluster of its own beside
		// the baselines': as many clusters at once as the set-ups had.
		var vips sync.WaitGroup
		switch {
		case !vipsSelected():
		case serial:
			runVIPsSetup(t, stack, root, bin, filepath.Join(logDir, name))
		default:
			vips.Add(1)
			go func() { defer vips.Done(); runVIPsSetup(t, stack, root, bin, filepath.Join(logDir, name)) }()
		}
		defer vips.Wait()
		// The harness's other VIP movers, which the benchmarks compare, each on a
		// cluster of its own: they must keep working. curl takes the check's place
		// in the one-shot example.
		example, err := os.ReadFile(filepath.Join(root, "packaging", oneshot))
		if err != nil {
			t.Fatal(err)
		}
		base := &suite{stack: stack, mode: cluster.ModeCurl, repo: root, example: string(example)}
		t.Run("baseline curl", func(t *testing.T) { base.baseline(t, cluster.ModeCurl, filepath.Join(logDir, name)) })
		if stack.VIPManager != "" {
			t.Run("baseline vip-manager", func(t *testing.T) { base.baseline(t, cluster.ModeVIPManager, filepath.Join(logDir, name)) })
		} else {
			t.Logf("baseline vip-manager: not run, %s has no vip-manager", stack.Name)
		}
		fmt.Printf("\n%s baselines: VIP movements, seconds from each trigger:\n%s\n", stack.Name, cluster.FormatMovements(base.movements))
	}
	// Each stack in a goroutine of its own rather than as a parallel subtest: go test
	// runs no more parallel subtests at once than -parallel (the number of cores), and
	// every set-up must be under way for the load gate to open.
	var running sync.WaitGroup
	for _, name := range names {
		runStack := func() {
			t.Run(name, func(t *testing.T) { stackTest(t, name) })
		}
		if serial {
			runStack()
			continue
		}
		running.Add(1)
		go func() { defer running.Done(); runStack() }()
	}
	running.Wait()
}

// selectedStacks parses PVC_STACKS: stack names separated by spaces or commas.
func selectedStacks(env string) ([]string, error) {
	names := strings.FieldsFunc(env, func(r rune) bool { return r == ' ' || r == ',' })
	if len(names) == 0 {
		return cluster.StackNames, nil
	}
	for _, n := range names {
		if !slices.Contains(cluster.StackNames, n) {
			return nil, fmt.Errorf("PVC_STACKS: unknown stack %q (known: %s)", n, strings.Join(cluster.StackNames, ", "))
		}
	}
	return slices.Compact(names), nil
}

// run brings up the stack's cluster with the example configuration and runs every
// scenario on it in order; it prints the VIP movements and the count of passed and failed
// scenarios.
func (s *suite) run(t *testing.T, logDir string) {
	defer func() {
		if !s.arrived {
			s.loads.leave()
		}
	}()
	gate := `(?m)^\s*vrrp_script\s+(\S+)`
	if s.mode == cluster.ModeWatch {
		gate = `(?m)^\s*track_file\s+(\S+)\s*\{`
	}
	m := regexp.MustCompile(gate).FindStringSubmatch(s.example)
	if m == nil {
		t.Fatal("the example keepalived.conf has no vrrp_script or track_file")
	}
	s.gate = m[1]
	c := s.bringUp(t, logDir, cluster.Options{Mode: s.mode, KeepalivedConf: s.example})
	sc := &scenarios{t: t}
	run := sc.run
	run("start", s.start)
	if s.mode == cluster.ModeCheck {
		// Patroni's answers are the same whatever reads them: captured once per stack.
		run("health endpoints", s.healthEndpoints)
		run("switchover", func(t *testing.T) { s.switchovers(t, 3) })
	} else {
		run("switchover", func(t *testing.T) { s.switchovers(t, 20) }) // back to back
	}
	run("graceful stop", func(t *testing.T) { s.failover(t, cluster.StopPrimary()) })
	run("kill -9", func(t *testing.T) { s.failover(t, cluster.KillPrimary()) })
	run("REST API hung", s.hung)
	run("cut off", s.cutOff)
	run("DCS down", s.dcsDown(false))
	run("DCS down, failsafe on", s.dcsDown(true))
	run("cut from the DCS", s.cutFromDCS)
	if s.mode == cluster.ModeWatch {
		run("data directory unreadable", s.pgdataUnreadable)
		run("replica rebuilt", s.replicaRebuilt)
		run("kill -9 of the watcher", s.killWatcher)
		run("watcher stopped", s.stopWatcher)
		run("track file tampered with", s.tamperTrackFile)
	}
	run("quiet logs", s.quietLogs)
	// Last: the whole machine is loaded while it lasts, and the set-ups take turns.
	run("CPU load", s.cpuLoad)
	if err := c.Close(); err != nil {
		t.Errorf("teardown: %v", err)
	}

	// One write each, so that the two stacks' reports do not interleave.
	fmt.Printf("\n%s: VIP movements, seconds from each trigger (new-prim: VIP on the new primary after Patroni had it; "+
		"double: on two reachable nodes; unwritable: on a node whose PostgreSQL did not accept writes):\n%s\n%s: %d passed, %d failed\n",
		t.Name(), cluster.FormatMovements(s.movements), t.Name(), sc.passed, sc.failed)
}

// bringUp starts the set-up's cluster from opts, on the suite's stack with its binary and
// logs in logDir, makes it the suite's, and closes it when t ends.
func (s *suite) bringUp(t *testing.T, logDir string, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	opts.Stack, opts.CheckBinary, opts.LogDir, opts.Logf = s.stack, s.bin, logDir, t.Logf
	t0 := time.Now()
	c, err := cluster.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("bring-up: %v", err)
	}
	t.Logf("bring-up took %.1fs (Patroni ttl %v)", time.Since(t0).Seconds(), c.TTL())
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	s.c = c
	return c
}

// scenarios runs a set-up's scenarios in order, each a subtest, and counts how they ended.
type scenarios struct {
	t              *testing.T
	passed, failed int
}

func (sc *scenarios) run(name string, fn func(t *testing.T)) {
	start := time.Now()
	if sc.t.Run(name, fn) {
		sc.passed++
	} else {
		sc.failed++
	}
	sc.t.Logf("scenario %q took %.1fs", name, time.Since(start).Seconds())
}

// start: keepalived accepted the check, the VIP is on the primary alone and carries traffic,
// and each node's check logged exactly its first state.
func (s *suite) start(t *testing.T) {
	c := s.c
	if got := c.KeepalivedConf(1); got != s.example {
		t.Errorf("node 1 does not run the example keepalived.conf verbatim")
	}
	leader, err := c.Leader(context.Background())
	if err != nil || leader != "n1" {
		t.Fatalf("first primary is %q (%v), want n1: it bootstrapped alone", leader, err)
	}
	for _, n := range c.Nodes() {
		log, err := n.AgentLog()
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"Unsafe permissions", "isabling track script", "SECURITY VIOLATION", "insecure"} {
			if strings.Contains(log, bad) {
				t.Errorf("%s: keepalived refused the check (%q in %s)", n.Name, bad, n.AgentLogPath())
			}
		}
		switch {
		case s.mode == cluster.ModeCheck:
			// The script runs and its exit status reaches keepalived: 0 on the primary, 1
			// elsewhere.
			want := fmt.Sprintf("VRRP_Script(%s) succeeded", s.gate)
			if n.Name != leader {
				want = fmt.Sprintf("VRRP_Script(%s) failed (exited with status 1)", s.gate)
			}
			if !strings.Contains(log, want) {
				t.Errorf("%s: keepalived log lacks %q", n.Name, want)
			}
		default:
			// keepalived kept the track file (its directory was there when it started),
			// and the watcher keeps it at 1 on the primary alone.
			if strings.Contains(log, "does not exist - removing") || strings.Contains(log, "not found") {
				t.Errorf("%s: keepalived dropped the track file:\n%s", n.Name, log)
			}
			want := "0"
			if n.Name == leader {
				want = "1"
			}
			if got := n.TrackFile(); got != want {
				t.Errorf("%s: the track file says %q, want %q", n.Name, got, want)
			}
		}
	}
	if s.mode == cluster.ModeWatch {
		s.assertPGData(t)
	}
	s.assertVIPOnPrimary(t, leader)
	m := c.Timeline(time.Time{}, time.Now()).Analyze(time.Time{}, leader)
	if m.Double > 0 || m.OnNonPrimary > 0 {
		t.Errorf("since keepalived started: VIP on two nodes for %v, on a non-primary for %v", m.Double, m.OnNonPrimary)
	}
	m.Scenario = "since keepalived started"
	s.assertWrites(t, m)
	for _, n := range c.Nodes() {
		lines := s.states(t, n, time.Time{})
		want := "not primary" // the example configuration asks /primary
		if n.Name == leader {
			want = "primary"
		}
		if len(lines) != 1 {
			t.Errorf("%s: the check logged %d lines since start, want 1 (its first state):\n%s", n.Name, len(lines), joinLines(lines))
			continue
		}
		if st, _ := cluster.CheckState(lines[0]); st != want {
			t.Errorf("%s: first check line says %q, want %q: %s", n.Name, st, want, lines[0].Message)
		}
		// The check kept its state in its default directory, created 0711 as the
		// packaged tmpfiles.d entry makes it: root's state is in it, and a
		// script_user's directory of its own, which only root can create.
		fi, err := os.Stat(filepath.Join(n.RunDir(), "patroni-vip-check"))
		if err != nil {
			t.Errorf("%s: state directory: %v", n.Name, err)
		} else if fi.Mode().Perm() != 0o711 {
			t.Errorf("%s: state directory mode %v, want 0711", n.Name, fi.Mode().Perm())
		}
	}
}

// switchovers: switchovers that visit every node in turn; the VIP follows each, never on
// two.
func (s *suite) switchovers(t *testing.T, count int) {
	var follows []time.Duration // the watch's, from the events
	defer func() {
		if !t.Failed() {
			s.assertFollowByEvents(t, follows)
		}
	}()
	for i := 0; i < count; i++ {
		leader, err := s.c.Leader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		next := fmt.Sprintf("n%d", s.c.Node(leader).Index%3+1) // n1→n2→n3→n1
		m := s.measure(t, cluster.Switchover(next))
		if m.New != next {
			t.Errorf("switchover to %s ended with primary %q", next, m.New)
		}
		s.assertMove(t, m)
		if e, err := s.c.Exact(m); s.mode == cluster.ModeWatch && err == nil && e.Follow() >= 0 && !e.Lost {
			follows = append(follows, e.Follow())
		}
		s.restore(t)
	}
}

// failover: the primary's Patroni goes away (tr); another node becomes primary and gets
// the VIP within followBound of Patroni promoting it. After a crash, the new primary comes
// within failoverBound.
func (s *suite) failover(t *testing.T, tr cluster.Trigger) {
	m := s.measure(t, tr)
	if m.New == m.Old {
		t.Errorf("%s: %s is still primary", tr.Name, m.Old)
	}
	if tr.WaitsForTTL && (m.ToPrimary < 0 || m.ToPrimary > s.failoverBound()) {
		t.Errorf("%s: new primary after %v, want ≤ %v (ttl %v)", tr.Name, m.ToPrimary, s.failoverBound(), s.c.TTL())
	}
	s.assertMove(t, m)
	s.restore(t)
}

// skippedRuns splits keepalived's lines into those saying it skipped a run of the
// check because the last one was still going ("already running ... skipping run"),
// and the rest.
func skippedRuns(lines []cluster.LogLine) (rest, skipped []cluster.LogLine) {
	for _, l := range lines {
		if strings.Contains(l.Message, "skipping run") {
			skipped = append(skipped, l)
		} else {
			rest = append(rest, l)
		}
	}
	return rest, skipped
}

// allowSkips accepts keepalived skipping the odd run of a check every 0.2 s on this
// loaded machine (four clusters on two cores, where a run's start-up has reached 85 ms):
// the run before it is still going, and its answer stands. More than one in twenty runs
// of the window would mean the timers are wrong. While the API hangs (hanging), a run
// lasts the check's whole --timeout: where that is longer than the interval, keepalived
// 2.3.3 skips every run that would start while one goes on, and that is the design.
func (s *suite) allowSkips(t *testing.T, n *cluster.Node, skipped []cluster.LogLine, window time.Duration, when string, hanging bool) {
	t.Helper()
	if len(skipped) == 0 {
		return
	}
	conf := s.c.KeepalivedConf(1)
	interval := scriptInterval(t, conf)
	runs := int(window / interval)
	allowed := runs / 20
	if own := scriptCheckTimeout(t, conf); hanging && own+85*time.Millisecond > interval {
		// Of every k runs that one hung run spans, k-1 are skipped.
		k := int((own + 85*time.Millisecond + interval - 1) / interval)
		allowed = runs*(k-1)/k + 1
	}
	if len(skipped) > allowed {
		t.Errorf("%s keepalived skipped %d of about %d runs %s (at most %d allowed): the check overran the interval:\n%s", n.Name, len(skipped), runs, when, allowed, joinLines(skipped))
		return
	}
	t.Logf("%s keepalived skipped %d of about %d runs %s (the run before was still going)", n.Name, len(skipped), runs, when)
}

// scriptCheckTimeout is the --timeout of the check in the configuration's script line,
// read with the check's own grammar.
func scriptCheckTimeout(t *testing.T, conf string) time.Duration {
	m := regexp.MustCompile(`(?m)^\s*script\s+"([^"]*)"`).FindStringSubmatch(conf)
	if m == nil {
		return 0
	}
	words := strings.Fields(m[1])
	cfg, err := cmdline.Parse(cmdline.Once, words[1:])
	if err != nil {
		t.Fatalf("script %q: %v", m[1], err)
	}
	return cfg.Timeout
}

func scriptInterval(t *testing.T, conf string) time.Duration {
	m := regexp.MustCompile(`(?m)^\s*interval\s+(\S+)`).FindStringSubmatch(conf)
	if m == nil {
		return time.Minute
	}
	d, err := time.ParseDuration(m[1] + "s")
	if err != nil {
		t.Fatalf("interval %q: %v", m[1], err)
	}
	return d
}

// hung: the primary's Patroni is frozen for longer than the ttl. The check must time out
// by itself (keepalived never kills it, and seldom skips a run), the VIP must leave the frozen
// node at once and end on whichever node is primary.
func (s *suite) hung(t *testing.T) {
	c := s.c
	var byHand cluster.CheckRun
	var byHandErr error
	tr := cluster.PausePrimary(s.pauseFor())
	pause := tr.Fire
	tr.Fire = func(ctx context.Context, c *cluster.Cluster, p *cluster.Node) error {
		// Run the check by hand against the frozen API while it is frozen.
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(2 * time.Second)
			byHand, byHandErr = p.RunCheck(ctx, "--no-state", "--log", "stderr", "http://"+p.Addr+":8008/primary")
		}()
		err := pause(ctx, c, p)
		<-done
		return err
	}
	m := s.measure(t, tr)
	switch {
	case byHandErr != nil:
		t.Errorf("running the check by hand: %v", byHandErr)
	case byHand.Exit != 1:
		t.Errorf("check against a hung API exited %d, want 1: %s", byHand.Exit, byHand.Output)
	case byHand.Elapsed > 800*time.Millisecond+150*time.Millisecond:
		t.Errorf("check against a hung API took %v, want its --timeout 800ms (+ start-up): %s", byHand.Elapsed, byHand.Output)
	case !strings.Contains(byHand.Output, "timeout"):
		t.Errorf("check against a hung API does not say timeout: %s", byHand.Output)
	default:
		t.Logf("by hand against the hung API: exit %d after %v: %s", byHand.Exit, byHand.Elapsed.Round(time.Millisecond), strings.TrimSpace(byHand.Output))
	}
	s.assertWrites(t, m)
	t.Logf("%s: PostgreSQL accepted writes on two nodes for %v (Patroni's split brain without a watchdog)", m.Scenario, m.TwoWritable)
	if m.ToVIPGone < 0 || m.ToVIPGone > vipGoneBound {
		t.Errorf("VIP left the hung node after %v, want ≤ %v", m.ToVIPGone, vipGoneBound)
	}
	if !m.Settled {
		t.Errorf("the VIP did not end on the primary")
	}
	// keepalived never kills the check. A run against the hung API takes the check's
	// --timeout plus its start-up, which on this loaded machine (four clusters on two
	// cores) has reached 85 ms: keepalived skips the runs that would start meanwhile
	// ("already running"). That is harmless, the last run failed too (allowSkips).
	old := c.Node(m.Old)
	rest, skipped := skippedRuns(old.Syslog("Keepalived_vrrp", m.Trigger))
	for _, l := range rest {
		if strings.Contains(l.Message, "timed out") || strings.Contains(l.Message, "timed_out") {
			t.Errorf("%s keepalived: %s", old.Name, l.Message)
		}
	}
	s.allowSkips(t, old, skipped, s.pauseFor(), "while Patroni hung", true)
	if svc := old.Service(); svc != nil {
		for _, e := range svc.Events(m.Trigger) {
			if e.What != "start" && e.What != "ready" {
				t.Errorf("%s: the watcher's service, while Patroni hung: %s", old.Name, e)
			}
		}
	}
	timeouts := 0
	for _, l := range s.states(t, old, m.Trigger) {
		if st, _ := cluster.CheckState(l); st == "timeout" {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("%s: the check logged %d timeout lines while its API hung, want 1:\n%s", old.Name, timeouts, joinLines(old.CheckLog(m.Trigger)))
	}
	s.assertVIPOnPrimary(t, m.New)
	s.assertLogs(t, m)
	s.restore(t)
}

// cutOff: the primary loses the network. The VIP may stay on it (nobody can reach it), but
// never on two nodes a client can reach, and it is on the new primary once there is one.
func (s *suite) cutOff(t *testing.T) {
	m := s.measure(t, cluster.CutPrimary())
	if m.New == m.Old || m.New == "" {
		t.Errorf("no new primary after cutting %s off (ends with %q)", m.Old, m.New)
	}
	if m.ToPrimary < 0 || m.ToPrimary > s.failoverBound() {
		t.Errorf("new primary after %v, want ≤ %v (ttl %v)", m.ToPrimary, s.failoverBound(), s.c.TTL())
	}
	s.assertMove(t, m)
	s.restore(t)
}

// quietLogs: in a steady minute nobody logs anything: not the check (an unchanged state is
// logged once), not keepalived (no flapping).
func (s *suite) quietLogs(t *testing.T) {
	s.requireHealthy(t)
	// A new master repeats its gratuitous ARPs 5 s later (keepalived's
	// vrrp_garp_master_delay): the steady state begins after those.
	for _, n := range s.c.Nodes() {
		for _, l := range n.Syslog("Keepalived_vrrp", time.Now().Add(-garpDelay)) {
			if strings.Contains(l.Message, "Entering MASTER STATE") {
				time.Sleep(time.Until(l.At.Add(garpDelay + time.Second)))
			}
		}
	}
	from := time.Now()
	time.Sleep(quietFor)
	leader, err := s.c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.c.Nodes() {
		if lines := s.states(t, n, from); len(lines) != 0 {
			t.Errorf("%s: the check logged %d lines in %v of steady state, want 0:\n%s", n.Name, len(lines), quietFor, joinLines(lines))
		}
		lines, stalls := cluster.WithoutStalls(n.Syslog("Keepalived_vrrp", from))
		lines, skipped := skippedRuns(lines)
		s.allowSkips(t, n, skipped, quietFor, "in a steady state", false)
		if len(lines) != 0 {
			t.Errorf("%s: keepalived logged %d lines in %v of steady state:\n%s", n.Name, len(lines), quietFor, joinLines(lines))
		}
		if len(stalls) > 0 {
			t.Logf("%s: keepalived was scheduled late (the machine stalled it; not a change of state):\n%s", n.Name, joinLines(stalls))
		}
	}
	s.assertVIPOnPrimary(t, leader)
}

// baseline: a cluster whose VIP is moved by mode follows a switchover, never on two nodes.
func (s *suite) baseline(t *testing.T, mode cluster.Mode, logDir string) {
	c, err := cluster.Start(context.Background(), cluster.Options{
		Stack: s.stack, Mode: mode, KeepalivedConf: s.example, LogDir: filepath.Join(logDir, string(mode)), Logf: t.Logf})
	if err != nil {
		t.Fatalf("bring-up: %v", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}()
	own := s.c
	s.c = c
	defer func() { s.c = own }()
	m := s.measure(t, cluster.Switchover("n2"))
	s.movements[len(s.movements)-1].Scenario = string(mode) + ": " + m.Scenario
	if m.New != "n2" {
		t.Errorf("switchover to n2 ended with primary %q", m.New)
	}
	if m.Double > 0 {
		t.Errorf("VIP on two nodes for %v", m.Double)
	}
	if !m.Settled {
		t.Errorf("the VIP did not settle on the new primary")
	}
	s.assertVIPOnPrimary(t, m.New)
}

// measure fires tr, records the movement for the final table and logs its timeline.
func (s *suite) measure(t *testing.T, tr cluster.Trigger) cluster.Movement {
	t.Helper()
	s.requireHealthy(t)
	if _, err := s.c.WaitHealthy(context.Background(), 90*time.Second); err != nil {
		t.Fatalf("before %s: %v", tr.Name, err)
	}
	m, err := s.c.Measure(context.Background(), tr)
	s.movements = append(s.movements, m)
	t.Logf("%s: %s→%s  to primary %v, VIP gone %v, VIP on new %v, no VIP %v, double %v, on non-primary %v, "+
		"on unwritable %v (longest %v), two writable %v\n%s",
		m.Scenario, m.Old, m.New, sec(m.ToPrimary), sec(m.ToVIPGone), sec(m.ToVIPOnNew), sec(m.NoVIP), sec(m.Double),
		sec(m.OnNonPrimary), sec(m.Unwritable), sec(m.LongestUnwritable), sec(m.TwoWritable), m.Timeline.Format(m.Trigger))
	if err != nil {
		t.Errorf("%v", err)
	}
	return m
}

// assertMove: a new primary, the VIP on it within followBound of Patroni promoting it, never
// on two reachable nodes, traffic through the VIP reaching it, and logs that match.
func (s *suite) assertMove(t *testing.T, m cluster.Movement) {
	t.Helper()
	s.assertWrites(t, m)
	if !m.Settled || m.ToVIPOnNew < 0 {
		t.Errorf("%s: the VIP did not settle on the new primary", m.Scenario)
		return
	}
	if m.ToVIPGone < 0 {
		t.Errorf("%s: the VIP never left %s", m.Scenario, m.Old)
	}
	if d := m.FollowDelay(); d < 0 || d > followBound {
		if d < 0 && d >= -samplerSlack(s.c) && s.readyBeforeVIP(t, m) {
			// Woken by PostgreSQL's files, the watch can add the VIP before the
			// sample in which the harness reads Patroni's new role: the events, to
			// the millisecond, say PostgreSQL was ready first.
			t.Logf("%s: VIP on the new primary %v after the sampled role, after PostgreSQL was ready", m.Scenario, d)
		} else {
			t.Errorf("%s: VIP on the new primary %v after Patroni had it, want ≤ %v", m.Scenario, d, followBound)
		}
	}
	s.assertVIPOnPrimary(t, m.New)
	s.assertLogs(t, m)
}

// samplerSlack is how long a VIP may come before the sampled role says its node is
// primary, if PostgreSQL's own record says it was ready first. The sampler asks each
// node's Patroni in turn, so on a loaded machine a sample's roles trail its VIPs by up
// to a period or more (seen: 121 ms with 100 ms samples); three periods.
func samplerSlack(c *cluster.Cluster) time.Duration { return 3 * c.SamplePeriod() }

// readyBeforeVIP reports whether, by the kernel's and PostgreSQL's own time stamps, the
// VIP was added to the new primary after its PostgreSQL said it accepted connections.
func (s *suite) readyBeforeVIP(t *testing.T, m cluster.Movement) bool {
	e, err := s.c.Exact(m)
	if err != nil || e.Lost {
		t.Logf("%s: no exact record (%v, lost %v)", m.Scenario, err, e.Lost)
		return false
	}
	return e.Follow() >= 0
}

// assertVIPOnPrimary: the VIP is on primary alone and a client on the switch that connects
// to it reaches primary's PostgreSQL, out of recovery.
func (s *suite) assertVIPOnPrimary(t *testing.T, primary string) {
	t.Helper()
	holders, err := s.c.VIPHolders()
	if err != nil {
		t.Fatal(err)
	}
	reachable := holders[:0:0]
	for _, h := range holders {
		if !s.c.Node(h).IsCut() {
			reachable = append(reachable, h)
		}
	}
	if len(reachable) != 1 || reachable[0] != primary {
		t.Errorf("VIP on %v, want on %s alone", holders, primary)
	}
	a, err := s.c.QueryVIP(context.Background())
	if err != nil {
		t.Errorf("client through the VIP: %v", err)
		return
	}
	if a.Node != primary || a.InRecovery {
		t.Errorf("client through the VIP reached %s (in recovery %v), want primary %s", a.Node, a.InRecovery, primary)
	}
}

// assertLogs: in the movement's window each node's check logged each change of state once
// (never the same state twice in a row), its changes of eligibility match keepalived's
// succeeded/failed transitions one for one, and a node the move did not concern logged
// nothing.
func (s *suite) assertLogs(t *testing.T, m cluster.Movement) {
	t.Helper()
	for _, n := range s.c.Nodes() {
		all := s.states(t, n, time.Time{})
		var before []cluster.LogLine
		var window []cluster.LogLine
		for _, l := range all {
			if l.At.Before(m.Trigger) {
				before = append(before, l)
			} else {
				window = append(window, l)
			}
		}
		if !involved(m, n.Name) && len(window) != 0 {
			t.Errorf("%s: %s was not concerned but the check logged:\n%s", m.Scenario, n.Name, joinLines(window))
		}
		prev := ""
		if len(before) > 0 {
			prev, _ = cluster.CheckState(before[len(before)-1])
		}
		flips := 0
		for _, l := range window {
			st, reminder := cluster.CheckState(l)
			if reminder {
				continue
			}
			if st == prev {
				t.Errorf("%s: %s logged %q twice in a row: %s", m.Scenario, n.Name, st, l.Message)
			}
			if cluster.CheckEligible(st) != cluster.CheckEligible(prev) {
				flips++
			}
			prev = st
		}
		transitions := 0
		for _, l := range n.Syslog("Keepalived_vrrp", m.Trigger) {
			if s.isTransition(l.Message) {
				transitions++
			}
		}
		if flips != transitions {
			t.Errorf("%s: on %s the check logged %d changes of eligibility, keepalived saw %d:\ncheck:\n%skeepalived:\n%s",
				m.Scenario, n.Name, flips, transitions, joinLines(window), joinLines(n.Syslog("Keepalived_vrrp", m.Trigger)))
		}
		if n.Name == m.New && n.Name != m.Old && (len(window) == 0 || !cluster.CheckEligible(prev)) {
			t.Errorf("%s: the new primary %s's check did not log that it became primary:\n%s", m.Scenario, n.Name, joinLines(window))
		}
	}
}

// isTransition reports whether a keepalived line says the gate changed its verdict: the
// script succeeded or failed, or the track file left or entered FAULT.
func (s *suite) isTransition(msg string) bool {
	if s.mode == cluster.ModeWatch {
		return strings.HasSuffix(msg, "tracked file "+s.gate+" now FAULT state") ||
			strings.HasSuffix(msg, "tracked file "+s.gate+" leaving FAULT state")
	}
	return strings.HasPrefix(msg, "VRRP_Script("+s.gate+") succeeded") ||
		strings.HasPrefix(msg, "VRRP_Script("+s.gate+") failed")
}

// involved reports whether node took part in the movement: it was primary, held the
// leader key or the VIP at some point after the trigger.
func involved(m cluster.Movement, node string) bool {
	if node == m.Old || node == m.New {
		return true
	}
	for _, smp := range m.Timeline {
		if smp.At.Before(m.Trigger) {
			continue
		}
		if smp.Leader == node || slices.Contains(smp.Holders, node) {
			return true
		}
	}
	return false
}

// requireHealthy fails the scenario at once if an earlier one left the cluster broken.
func (s *suite) requireHealthy(t *testing.T) {
	t.Helper()
	if s.broken != "" {
		t.Fatalf("not run: the cluster could not be restored after %s", s.broken)
	}
}

// restore brings the cluster back to three healthy members for the next scenario.
func (s *suite) restore(t *testing.T) {
	t.Helper()
	before := len(s.c.Repairs)
	if _, err := s.c.Restore(context.Background(), 150*time.Second); err != nil {
		s.broken = t.Name()
		t.Fatalf("restoring the cluster: %v", err)
	}
	for _, r := range s.c.Repairs[before:] {
		t.Logf("Patroni did not rejoin by itself: %s", r)
	}
}

// states returns the check's log lines on n since since that say a state, and logs the
// others: the watchdog's "overran its deadline" lines, which say the machine stalled the
// check and, by design, are not a change of state (cluster.StallReport).
func (s *suite) states(t *testing.T, n *cluster.Node, since time.Time) []cluster.LogLine {
	t.Helper()
	lines, stalls := cluster.WithoutStalls(n.CheckLog(since))
	if len(stalls) > 0 && !slices.Contains(s.stallsSeen, stalls[len(stalls)-1].Raw) {
		s.stallsSeen = append(s.stallsSeen, stalls[len(stalls)-1].Raw)
		t.Logf("%s: the check overran its deadline (the machine stalled it; not a change of state):\n%s", n.Name, joinLines(stalls))
	}
	// The watch's lines about its files (the data directory, the track file) say
	// nothing of the verdict: the scenarios about them read them.
	return slices.DeleteFunc(lines, cluster.WatchFileLine)
}

func joinLines(ls []cluster.LogLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("    " + l.String() + "\n")
	}
	return b.String()
}

func sec(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// killWatcher: kill -9 of the watcher on the primary. The unit's command after stop
// removes the track file, keepalived puts the instance in FAULT and the VIP leaves; the
// service restarts the watcher, which writes 1 again, and the VIP comes back.
func (s *suite) killWatcher(t *testing.T) {
	s.watcherTrouble(t, cluster.KillWatcher(), time.Second, "exit")
}

// stopWatcher: the watcher hangs (SIGSTOP). It stops answering systemd's watchdog,
// which kills it after WatchdogSec; then as after a kill -9.
func (s *suite) stopWatcher(t *testing.T) {
	s.watcherTrouble(t, cluster.StopWatcher(), time.Second+time.Second, "watchdog")
}

// watcherTrouble fires do at the primary's watcher and asserts the VIP left the node
// within gone (on a loaded machine; the benchmarks measure the real figure), that the
// service saw want, that nothing else ever took the VIP, and that it came back.
func (s *suite) watcherTrouble(t *testing.T, tr cluster.Trigger, gone time.Duration, want string) {
	name := tr.Name
	var svc *cluster.Service
	fire := tr.Fire
	tr.Fire = func(ctx context.Context, c *cluster.Cluster, p *cluster.Node) error {
		svc = p.Service()
		return fire(ctx, c, p)
	}
	m := s.measure(t, tr)
	if m.New != m.Old {
		t.Errorf("%s: the primary changed from %s to %s", name, m.Old, m.New)
	}
	if m.ToVIPGone < 0 || m.ToVIPGone > gone {
		t.Errorf("%s: the VIP left %s after %v, want ≤ %v", name, m.Old, m.ToVIPGone, gone)
	}
	if m.OnNonPrimary > 0 {
		t.Errorf("%s: the VIP on a non-primary for %v", name, m.OnNonPrimary)
	}
	s.assertWrites(t, m)
	if !m.Settled {
		t.Errorf("%s: the VIP did not come back to %s", name, m.Old)
	}
	if svc != nil {
		var seen []string
		for _, e := range svc.Events(m.Trigger) {
			seen = append(seen, e.What)
		}
		if !slices.Contains(seen, want) || !slices.Contains(seen, "stop-post") || !slices.Contains(seen, "ready") {
			t.Errorf("%s: the service did %v, want %s, stop-post, a restart and ready", name, seen, want)
		}
		t.Logf("%s: the service: %v", name, svc.Events(m.Trigger))
	}
	s.assertVIPOnPrimary(t, m.Old)
	s.restore(t)
}

// tamperTrackFile: someone deletes the primary's track file, then fills it with
// garbage. keepalived reads both as FAULT; the watcher writes 1 again at its next poll.
func (s *suite) tamperTrackFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(path string) error
	}{
		{"track file deleted", os.Remove},
		{"track file garbage", func(path string) error { return os.WriteFile(path, []byte("garbage\n"), 0o644) }},
	} {
		m := s.measure(t, cluster.Trigger{Name: tc.name, Timeout: 30 * time.Second, SamePrimaryOK: true,
			Fire: func(ctx context.Context, c *cluster.Cluster, p *cluster.Node) error {
				return tc.tamper(p.TrackFilePath())
			}})
		if m.New != m.Old || !m.Settled {
			t.Errorf("%s: the VIP ended on %q, want back on %s", tc.name, m.New, m.Old)
		}
		if m.OnNonPrimary > 0 {
			t.Errorf("%s: the VIP on a non-primary for %v", tc.name, m.OnNonPrimary)
		}
		s.assertWrites(t, m)
		if got := s.c.Node(m.Old).TrackFile(); got != "1" {
			t.Errorf("%s: the track file says %q, want 1 again", tc.name, got)
		}
		s.assertVIPOnPrimary(t, m.Old)
		s.restore(t)
	}
}
