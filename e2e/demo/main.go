// Command demo shows patroni-vip-check at work: it brings up a three-node Patroni cluster
// with keepalived in network namespaces on this machine, gated by patroni-vip-check watch
// and keepalived-watch.conf (-mode watch, the default) or by the one-shot check and
// keepalived.conf (-mode oneshot), shows the cluster and where the VIP is, runs one
// switchover while printing the VIP moving and the check's log lines, and tears
// everything down. Run it as root with `make demo` or `make demo MODE=oneshot` (the
// packages come from `make deps`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
)

func main() { os.Exit(run()) }

func run() int {
	modeName := flag.String("mode", "watch", "watch: patroni-vip-check watch behind track_file; oneshot: the check as keepalived's vrrp_script")
	flag.Parse()
	mode := map[string]cluster.Mode{"watch": cluster.ModeWatch, "oneshot": cluster.ModeCheck}[*modeName]
	if mode == "" || flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: -mode is watch or oneshot, not %q\n", *modeName)
		return 1
	}
	if err := cluster.Preflight(mode, nil); err != nil {
		fmt.Fprintf(os.Stderr, "demo: cannot run here: %v; run it as root on Linux after `make deps`: sudo make demo\n", err)
		return 1
	}
	// Whatever ends the demo early — Ctrl-C, a closed terminal, `make demo | head` — the
	// teardown below still runs.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	fail := func(err error) int {
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		say("demo: %v", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", fmt.Sprintf("%s%d-bin-", cluster.Prefix, os.Getpid()))
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	bin, err := cluster.CheckBinary(ctx, tmp)
	if err != nil {
		return fail(err)
	}

	say("== bringing up etcd, three PostgreSQL + Patroni nodes and keepalived (about 15 s)")
	c, err := cluster.Start(ctx, cluster.Options{
		Mode:        mode,
		CheckBinary: bin,
		Logf:        func(f string, a ...any) { say("   "+f, a...) },
	})
	if err != nil {
		return fail(err)
	}
	defer func() {
		say("== tearing down")
		if err := c.Close(); err != nil {
			say("demo: teardown: %v", err)
		}
	}()

	if err := show(ctx, c, say); err != nil {
		return fail(err)
	}
	say("\nThe check's log on each node so far (one line each: its first answer):")
	for _, n := range c.Nodes() {
		for _, l := range n.CheckLog(time.Time{}) {
			say("   %s: %s", n.Name, l.Message)
		}
	}
	primary, _ := c.Leader(ctx)
	target := "n2"
	if primary == "n2" {
		target = "n3"
	}
	say("\n== switchover %s → %s (patronictl switchover --force --candidate %s)", primary, target, target)
	say("   every change, seconds from the switchover:")
	since := time.Now()
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() { watch(c, since, done, say); close(watched) }()
	m, err := c.Measure(ctx, cluster.Switchover(target))
	close(done)
	<-watched
	if err != nil {
		return fail(err)
	}
	say("\n   new primary after %.1f s; VIP gone from %s after %.1f s, on %s after %.1f s; on two nodes: %.1f s",
		m.ToPrimary.Seconds(), m.Old, m.ToVIPGone.Seconds(), m.New, m.ToVIPOnNew.Seconds(), m.Double.Seconds())
	if err := show(ctx, c, say); err != nil {
		return fail(err)
	}
	if mode == cluster.ModeWatch {
		say("\nWhat you saw: on node 1 patroni-vip-check.service runs\n   %s\n"+
			"which asks the node's own Patroni at once when PostgreSQL's files in its data directory change\n"+
			"(a promotion, a stop), and once a second otherwise, and keeps %s at 1 while\n"+
			"the node is the primary, else 0. keepalived reads that file (packaging/keepalived-watch.conf,\n"+
			"\"weight 0 reverse\": anything but 1 is FAULT), so only the primary holds the VIP, and a\n"+
			"watcher that dies or hangs takes the VIP away. It logs a line only when its answer changes.\n"+
			"Try the check on a node by hand: patroni-vip-check -v --no-state URL",
			strings.Join(c.Nodes()[0].Service().Command(), " "), cmdline.DefaultTrackFile)
		return 0
	}
	say("\nWhat you saw: keepalived on node 1 runs\n   %s\n"+
		"every second (packaging/keepalived.conf; each node asks its own address); only the primary's check\n"+
		"exits 0, so only the primary holds the VIP.\n"+
		"The check logs a line only when its answer changes. Try it on a node by hand: patroni-vip-check -v --no-state URL",
		cluster.ScriptCommand(c.KeepalivedConf(1)))
	return 0
}

// show prints patronictl list, where the VIP is and what a client on the VIP reaches.
func show(ctx context.Context, c *cluster.Cluster, say func(string, ...any)) error {
	out, err := c.Patronictl(ctx, "list")
	if err != nil {
		return err
	}
	say("\n$ patronictl list\n%s", strings.TrimRight(out, "\n"))
	holders, err := c.VIPHolders()
	if err != nil {
		return err
	}
	a, err := c.QueryVIP(ctx)
	if err != nil {
		return err
	}
	say("VIP %s is on %s; psql to it reaches %s (pg_is_in_recovery = %v)",
		cluster.VIP, strings.Join(holders, ", "), a.Node, a.InRecovery)
	return nil
}

// watch prints, until done, every change of the timeline, every line the check logs and
// every change of keepalived's state, in time order.
func watch(c *cluster.Cluster, start time.Time, done <-chan struct{}, say func(string, ...any)) {
	since, prev := start, ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var quit bool
		select {
		case <-done:
			quit = true
		case <-tick.C:
		}
		now := time.Now()
		type event struct {
			at   time.Time
			text string
		}
		var events []event
		for _, s := range c.Timeline(since, now) {
			if line := describe(s); line != prev {
				events = append(events, event{s.At, line})
				prev = line
			}
		}
		for _, n := range c.Nodes() {
			for _, l := range n.Syslog("", since) {
				if l.At.After(now) {
					continue
				}
				switch {
				case l.Tag == cluster.CheckTag:
					events = append(events, event{l.At, n.Name + " check: " + l.Message})
				case strings.Contains(l.Message, "Entering"):
					events = append(events, event{l.At, n.Name + " keepalived: " + l.Message})
				}
			}
		}
		slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
		for _, e := range events {
			say("   %+6.2fs  %s", e.at.Sub(start).Seconds(), e.text)
		}
		since = now.Add(time.Nanosecond)
		if quit {
			return
		}
	}
}

func describe(s cluster.Sample) string {
	vip := strings.Join(s.Holders, "+")
	if vip == "" {
		vip = "nowhere"
	}
	var roles []string
	for i, r := range s.Roles {
		if r == "" {
			r = "?"
		}
		roles = append(roles, fmt.Sprintf("n%d %s", i+1, r))
	}
	return fmt.Sprintf("VIP on %-8s PostgreSQL: %s", vip, strings.Join(roles, ", "))
}
