package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// readTriggers are what `bench readvip` fires at the replica that holds the read VIP, by
// name, in order: it stops (Patroni stopped gracefully), it crashes (kill -9 of Patroni
// and PostgreSQL), it falls behind (replay held back, then 24 MiB written on the
// primary).
var readTriggers = []struct {
	name string
	tr   func() cluster.Trigger
}{
	{"replica stopped", cluster.StopReadReplica},
	{"replica killed (kill -9)", cluster.KillReadReplica},
	{"replica lagging past 16MB", cluster.LagReadReplica},
}

// runReadVIP measures, on a cluster that runs packaging/keepalived-read-vip.conf (the
// primary's VIP, and the read VIP gated by patroni-vip-check@replica on
// /replica?lag=16MB), how fast the read VIP leaves a replica that stops qualifying and
// reaches the other, each trigger reps times.
func runReadVIP(ctx context.Context, w io.Writer, stack *cluster.Stack, bin string, reps int, logf func(string, ...any)) error {
	fmt.Fprintf(w, "The read VIP on %s (Patroni %d, keepalived %s, the watch's default interval), seconds, min / median / max of %d runs each: "+
		"(b) from the trigger (for the lag, from the commit that put the replica past the bound) until the read VIP left the replica, "+
		"(c) until it was on the other replica to stay; how long no node held it, and how long a node that accepted writes or two nodes did. "+
		"Patroni loop_wait 1 s; sampled every %v.\n\n",
		stack.Name, stack.PatroniMajor, stack.KeepalivedVersion, reps, samplePeriod)
	fmt.Fprintf(w, "| trigger | (b) read VIP left the replica | (c) on the other replica | read VIP nowhere | on a node accepting writes | on two nodes | primary's VIP moved | unsettled |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	c, err := cluster.Start(ctx, cluster.Options{Stack: stack, Mode: cluster.ModeWatch, CheckBinary: bin, ReadVIP: true,
		PollInterval: samplePeriod, Logf: logf})
	if err != nil {
		return err
	}
	err = measureRead(ctx, w, c, reps, logf)
	if cerr := c.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

func measureRead(ctx context.Context, w io.Writer, c *cluster.Cluster, reps int, logf func(string, ...any)) error {
	for _, rt := range readTriggers {
		var gone, onNew, nowhere, writable, double []time.Duration
		moved, unsettled := 0, 0
		for i := 0; i < reps; i++ {
			if _, err := c.Restore(ctx, 3*time.Minute); err != nil {
				return fmt.Errorf("restoring before %s: %w", rt.name, err)
			}
			if err := c.WaitVIPs(ctx, time.Minute); err != nil {
				return fmt.Errorf("before %s: %w", rt.name, err)
			}
			vm, err := c.MeasureVIPs(ctx, rt.tr(), true)
			c.ReleaseReplays()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				unsettled++
				if logf != nil {
					logf("%s #%d: %v", rt.name, i+1, err)
				}
			}
			r := vm.Read
			// The lag begins with the commit that ends the trigger; a stop or a kill
			// with the trigger itself.
			from := time.Duration(0)
			if rt.name == "replica lagging past 16MB" {
				from = vm.Fired
			}
			after := func(d time.Duration) time.Duration {
				if d < 0 {
					return -1
				}
				return d - from
			}
			gone, onNew = append(gone, after(r.ToGone)), append(onNew, after(r.ToOnNew))
			nowhere, writable, double = append(nowhere, r.Nowhere), append(writable, r.OnWritable), append(double, r.Double)
			if vm.ToVIPGone >= 0 || vm.New != vm.Old {
				moved++
			}
			if logf != nil {
				logf("%s #%d: read VIP %s→%s, gone %v, on new %v (trigger took %v)\n%s", rt.name, i+1, r.Old, r.New,
					r.ToGone, r.ToOnNew, vm.Fired, vm.Timeline.Format(vm.Trigger))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d | %d |\n", rt.name, durStats(gone), durStats(onNew), durStats(nowhere),
			sumSec(writable), sumSec(double), moved, unsettled)
	}
	return nil
}

// durStats formats "min / median / max" seconds of ds; a negative one (it never
// happened) counts as "never".
func durStats(ds []time.Duration) string {
	var v []time.Duration
	never := 0
	for _, d := range ds {
		if d < 0 {
			never++
			continue
		}
		v = append(v, d)
	}
	if len(v) == 0 {
		return "never"
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	s := fmt.Sprintf("%.2f / %.2f / %.2f", v[0].Seconds(), med.Seconds(), v[len(v)-1].Seconds())
	if never > 0 {
		s += fmt.Sprintf(" (never ×%d)", never)
	}
	return s
}

// sumSec is the total of ds in seconds.
func sumSec(ds []time.Duration) string {
	var sum time.Duration
	for _, d := range ds {
		sum += max(d, 0)
	}
	return fmt.Sprintf("%.2f", sum.Seconds())
}
