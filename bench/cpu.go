package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// cpuSetup is one way of gating the VIP whose cost to the node is measured.
type cpuSetup struct {
	name string
	opts cluster.Options
}

// cpuSetups are the set-ups `bench cpu` compares on stack: curl and the one-shot check
// once a second, the watch at intervals from 50 ms to 1 s, and, on a keepalived that
// takes fractions of a second, the one-shot check and curl every 0.2 and 0.1 s.
func cpuSetups(bin string, stack *cluster.Stack) []cpuSetup {
	s := []cpuSetup{
		{"curl, every 1 s", cluster.Options{Mode: cluster.ModeCurl}},
		{"patroni-vip-check, every 1 s (keepalived.conf)", cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedFor: "2.2.7"}},
	}
	for _, iv := range []string{"50ms", "100ms", "200ms", "500ms", "1s"} {
		s = append(s, cpuSetup{"patroni-vip-check watch --interval " + iv,
			cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin, WatchArgs: []string{"--interval", iv}}})
	}
	if stack.FractionalIntervals {
		for _, iv := range []string{"0.2", "0.1"} {
			s = append(s,
				cpuSetup{"patroni-vip-check, every " + iv + " s", cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin,
					KeepalivedFor: "2.2.7", EditKeepalived: scriptEvery(iv)}},
				cpuSetup{"curl, every " + iv + " s", cluster.Options{Mode: cluster.ModeCurl, EditKeepalived: scriptEvery(iv)}})
		}
	}
	return s
}

var (
	intervalRe      = regexp.MustCompile(`(?m)^(\s*)interval\s+\S+`)
	scriptTimeoutRe = regexp.MustCompile(`(?m)^(\s*)timeout\s+\S+`)
	checkTimeoutRe  = regexp.MustCompile(`patroni-vip-check (?:--interval \S+ )?(?:--timeout \S+ )?http`)
)

// scriptEvery runs the vrrp_script every iv seconds as the oneshot tuning
// does (oneshotTimers).
func scriptEvery(iv string) func(int, string) string {
	t := oneshotTimers[iv]
	return scriptTimers(iv, t.timeout, t.own)
}

// oneshotTimers are, for each fractional interval measured, keepalived's
// timeout and the check's own --timeout, as vipconf picks them for 0.2 s:
// the check's below the interval, keepalived's well above the check's.
var oneshotTimers = map[string]struct{ timeout, own string }{
	"0.1": {"0.4", "80ms"},
	"0.2": {"0.5", "400ms"},
	"0.5": {"0.8", "400ms"},
}

// scriptTimers runs the vrrp_script every iv seconds, with keepalived's
// timeout and the check's own --timeout (own) as given. The check learns
// keepalived's interval (--interval), as the 2.3 example tells it.
func scriptTimers(iv, timeout, own string) func(int, string) string {
	return func(_ int, conf string) string {
		conf = intervalRe.ReplaceAllString(conf, "${1}interval "+iv)
		conf = scriptTimeoutRe.ReplaceAllString(conf, "${1}timeout "+timeout)
		ms, err := time.ParseDuration(iv + "s")
		if err != nil {
			panic(err) // the intervals are this file's constants
		}
		return checkTimeoutRe.ReplaceAllString(conf, "patroni-vip-check --interval "+ms.String()+" --timeout "+own+" http")
	}
}

// runCPU measures, for each set-up on a cluster of its own, the processor time the
// primary and a replica use per second in a steady state, by kind: the check (the
// watcher, or keepalived with the checks it runs), Patroni, PostgreSQL.
func runCPU(ctx context.Context, w io.Writer, stack *cluster.Stack, setups []cpuSetup, window time.Duration, logf func(string, ...any)) error {
	fmt.Fprintf(w, "Node CPU on %s (Patroni %d), milliseconds of CPU per second, over %v of steady state "+
		"after 10 s of settling, the harness's own sampling of PostgreSQL off. keepalived counts the checks "+
		"(or curl) it runs and its adverts; watcher is patroni-vip-check watch itself.\n\n", stack.Name, stack.PatroniMajor, window)
	fmt.Fprintf(w, "| set-up | node | total | keepalived | watcher | Patroni | PostgreSQL |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, s := range setups {
		opts := s.opts
		opts.Stack, opts.Logf = stack, logf
		opts.PollInterval = time.Hour // no sampling: its queries would cost PostgreSQL time
		c, err := cluster.Start(ctx, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		err = measureCPU(ctx, w, c, s.name, window)
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func measureCPU(ctx context.Context, w io.Writer, c *cluster.Cluster, name string, window time.Duration) error {
	leader, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	nodes := []*cluster.Node{c.Node(leader)}
	for _, n := range c.Nodes() {
		if n.Name != leader {
			nodes = append(nodes, n)
			break
		}
	}
	select {
	case <-time.After(10 * time.Second): // past start-up and the first adverts
	case <-ctx.Done():
		return ctx.Err()
	}
	before := make([]cluster.CPU, len(nodes))
	for i, n := range nodes {
		if before[i], err = n.CPU(); err != nil {
			return err
		}
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return ctx.Err()
	}
	for i, n := range nodes {
		after, err := n.CPU()
		if err != nil {
			return err
		}
		by, total := after.Since(before[i])
		role := "replica"
		if i == 0 {
			role = "primary"
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", name, role, ms(total),
			ms(by[cluster.CPUKeepalived]), ms(by[cluster.CPUWatcher]), ms(by[cluster.CPUPatroni]), ms(by[cluster.CPUPostgres]))
	}
	return nil
}
