package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// readTriggers are what `bench readvip` fires at the replica that holds the read VIP, by
// name, in order: it stops (Patroni stopped gracefully), it crashes (kill -9 of Patroni
// and PostgreSQL), it falls behind (replay held back, then 24 MiB written on the
// primary), it is promoted (a switchover to it).
var readTriggers = []struct {
	name string
	tr   func() cluster.Trigger
	// promotes: the primary's VIP must move (to the read VIP's replica).
	promotes bool
	// from is when the replica stopped qualifying, from the trigger: at once for a stop
	// or a kill, at the commit that ends the trigger for the lag, when Patroni had it
	// as the primary for a switchover to it.
	from func(cluster.VIPMovements) time.Duration
}{
	{"replica stopped", cluster.StopReadReplica, false, atOnce},
	{"replica killed (kill -9)", cluster.KillReadReplica, false, atOnce},
	{"replica lagging past 16MB", cluster.LagReadReplica, false, func(vm cluster.VIPMovements) time.Duration { return vm.Fired }},
	{"switchover to the read VIP's replica", cluster.SwitchoverToReadReplica, true, func(vm cluster.VIPMovements) time.Duration { return vm.ToPrimary }},
}

func atOnce(cluster.VIPMovements) time.Duration { return 0 }

// runReadVIP measures, on a cluster that runs packaging/keepalived-read-vip.conf (the
// primary's VIP, and the read VIP gated by patroni-vip-check@replica on
// /replica?lag=16MB), how fast the read VIP leaves a replica that stops qualifying and
// reaches the other, each trigger reps times.
func runReadVIP(ctx context.Context, w io.Writer, stack *cluster.Stack, bin string, reps int, maxLoad float64, logf func(string, ...any)) error {
	fmt.Fprintf(w, "The read VIP on %s (Patroni %d, keepalived %s, each watcher as shipped: --pgdata and its default interval), seconds, min / median / max of %d runs each: "+
		"(b) from the moment the replica stopped qualifying (the trigger; for the lag, the commit that put the replica past the bound; "+
		"for a switchover to it, Patroni having it as the primary, so that a negative time is before) until the read VIP left the replica, "+
		"(c) until it was on another replica to stay; how long no node held it, and how long, in all, a node that accepted writes "+
		"or two nodes did; how often the primary's VIP moved where it should not have (or did not follow the switchover). "+
		"Patroni loop_wait 1 s; sampled every %v. Load: the 1-minute load average when the set-up began, and the highest seen while it ran.\n\n",
		stack.Name, stack.PatroniMajor, stack.KeepalivedVersion, reps, samplePeriod)
	fmt.Fprintf(w, "| trigger | (b) read VIP left the replica | (c) on the other replica | read VIP nowhere | on a node accepting writes | on two nodes | primary's VIP wrong | unsettled | load |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	load, err := quiet(ctx, maxLoad, "the read VIP")
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Stack: stack, Mode: cluster.ModeWatch, CheckBinary: bin, ReadVIP: true,
		PollInterval: samplePeriod, Logf: logf})
	if err != nil {
		load.end()
		return err
	}
	rows, err := measureRead(ctx, c, reps, logf)
	// The load is known once the set-up is over: its rows wait for it.
	l := load.end()
	for _, r := range rows {
		fmt.Fprintf(w, "%s %s |\n", r, l)
	}
	if cerr := c.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// measureRead fires each trigger reps times and returns a table row for each, but for the
// load cell.
func measureRead(ctx context.Context, c *cluster.Cluster, reps int, logf func(string, ...any)) ([]string, error) {
	var rows []string
	for _, rt := range readTriggers {
		var gone, onNew, nowhere []float64
		var writable, double []time.Duration
		wrong, unsettled := 0, 0
		for i := 0; i < reps; i++ {
			if _, err := c.Restore(ctx, 3*time.Minute); err != nil {
				return rows, fmt.Errorf("restoring before %s: %w", rt.name, err)
			}
			if err := c.WaitVIPs(ctx, time.Minute); err != nil {
				return rows, fmt.Errorf("before %s: %w", rt.name, err)
			}
			vm, err := c.MeasureVIPs(ctx, rt.tr(), true)
			c.ReleaseReplays()
			if err != nil {
				if ctx.Err() != nil {
					return rows, ctx.Err()
				}
				unsettled++
				if logf != nil {
					logf("%s #%d: %v", rt.name, i+1, err)
				}
			}
			r := vm.Read
			from := rt.from(vm)
			after := func(d time.Duration) float64 {
				if d < 0 || from < 0 {
					return math.NaN()
				}
				return (d - from).Seconds()
			}
			gone, onNew = append(gone, after(r.ToGone)), append(onNew, after(r.ToOnNew))
			nowhere, writable, double = append(nowhere, r.Nowhere.Seconds()), append(writable, r.OnWritable), append(double, r.Double)
			if moved := vm.ToVIPGone >= 0 || vm.New != vm.Old; moved != rt.promotes || rt.promotes && vm.New != r.Old {
				wrong++ // the primary's VIP moved where it should not have, or not where it should
			}
			if logf != nil {
				logf("%s #%d: read VIP %s→%s, gone %v, on new %v (trigger took %v)\n%s", rt.name, i+1, r.Old, r.New,
					r.ToGone, r.ToOnNew, vm.Fired, vm.Timeline.Format(vm.Trigger))
			}
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %d | %d |", rt.name, durStats(gone), durStats(onNew), durStats(nowhere),
			sumSec(writable), sumSec(double), wrong, unsettled))
	}
	return rows, nil
}

// durStats formats "min / median / max" of seconds, which may be negative (the read VIP
// left before Patroni had its replica as the primary); NaN (it never happened) counts as
// "never".
func durStats(v []float64) string {
	ok := slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	return minMedMax(ok, len(v)-len(ok), 2)
}

// sumSec is the total of ds in seconds.
func sumSec(ds []time.Duration) string {
	var sum time.Duration
	for _, d := range ds {
		sum += max(d, 0)
	}
	return fmt.Sprintf("%.2f", sum.Seconds())
}
