package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// samplePeriod is how often a VIP measurement samples the cluster: fine enough for the
// watch's fractions of a second.
const samplePeriod = 25 * time.Millisecond

// setup is one way of moving the VIP, on a cluster of its own.
type setup struct {
	name string
	opts cluster.Options
}

// standardSetups are what `bench vip` compares on stack: the blog's curl line, the
// one-shot check as packaging/keepalived.conf runs it (and, on a keepalived that takes
// fractions of a second, as keepalived-2.3.conf does), the watch behind keepalived's
// track_file (keepalived-watch.conf), and vip-manager.
func standardSetups(bin, repo string, stack *cluster.Stack) ([]setup, error) {
	s := []setup{
		{"keepalived + the blog's curl line (VRRP v2, advert_int 1)", cluster.Options{Mode: cluster.ModeCurl, EditKeepalived: vrrp2}},
		{"keepalived + patroni-vip-check every 1 s (keepalived.conf)",
			cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedFor: "2.2.7"}},
	}
	if stack.FractionalIntervals {
		conf, err := os.ReadFile(filepath.Join(repo, "packaging", "keepalived-2.3.conf"))
		if err != nil {
			return nil, err
		}
		s = append(s, setup{"keepalived + patroni-vip-check every 0.2 s (keepalived-2.3.conf)",
			cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedConf: string(conf)}})
	}
	s = append(s, setup{"patroni-vip-check watch --pgdata + track_file (keepalived-watch.conf)",
		cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin}},
		setup{"patroni-vip-check watch on polls alone, every 200 ms (no --pgdata)",
			cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin, WatchPollsAlone: true, WatchArgs: []string{"--interval", "200ms"}}})
	if stack.VIPManager != "" {
		s = append(s, setup{"vip-manager (" + stack.Name + ", 1.0.2)", cluster.Options{Mode: cluster.ModeVIPManager}})
	}
	return s, nil
}

// vrrp2 gives a configuration the original blog's VRRP timing: version 2,
// one advert a second, a shared password.
func vrrp2(_ int, conf string) string {
	conf = versionRe.ReplaceAllString(conf, "")
	conf = checkSrcRe.ReplaceAllString(conf, "${1}authentication {\n${1}    auth_type PASS\n${1}    auth_pass pg-vip-1\n${1}}\n")
	return advertRe.ReplaceAllString(conf, "${1}advert_int 1")
}

// tuningSetups are the example configuration with other VRRP timings, to
// find what makes the VIP follow the primary fastest without two holders.
func tuningSetups(bin string) []setup {
	s := []setup{{"VRRP v2, advert_int 1", cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, EditKeepalived: vrrp2}}}
	for _, adv := range []string{"1", "0.5", "0.2", "0.1", "0.05", "0.02"} {
		s = append(s, setup{"VRRP v3, advert_int " + adv,
			cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, EditKeepalived: vrrp3(adv)}})
	}
	return s
}

// watchTuneTriggers are what the watch's timers change: the watcher's own failures and
// the outages are measured on the shipped set-up (bench vip).
var watchTuneTriggers = []string{"switchover", "graceful stop", "kill -9", "REST API hung 3 s"}

// watchTuningSetups are the watch with --pgdata at other poll intervals, poll deadlines
// and adverts. What each trigger depends on: a promotion or a stop wakes the watch
// through PostgreSQL's files, so (c)−(a) depends on the adverts alone; a kill -9
// changes no file, so (b) waits for the next poll (--interval); a hung Patroni changes
// none either, and is seen at the next poll's deadline (--interval + --timeout).
func watchTuningSetups(bin string) []setup {
	var s []setup
	for _, t := range []struct{ iv, timeout, adv string }{
		{"1s", "400ms", "0.02"}, {"1s", "400ms", "0.01"},
		{"500ms", "800ms", "0.01"}, {"2s", "400ms", "0.01"},
	} {
		s = append(s, setup{fmt.Sprintf("watch --pgdata --interval %s --timeout %s, advert_int %s", t.iv, t.timeout, t.adv),
			cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin, WatchArgs: []string{"--interval", t.iv, "--timeout", t.timeout},
				EditKeepalived: vrrp3(t.adv)}})
	}
	return s
}

// oneshotTuningSetups are the one-shot check at other vrrp_script timings on a
// keepalived that takes fractions of a second: the interval against the VIP's
// speed and the check's CPU, keepalived's timeout against runs killed on a
// busy node. keepalived-2.3.conf ships "0.2 s, timeout 0.5".
func oneshotTuningSetups(bin string) []setup {
	s := []setup{{"every 1 s, timeout 1 (keepalived.conf)",
		cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedFor: "2.2.7"}}}
	// The last: every 0.2 s with a check deadline longer than the interval, which
	// keepalived 2.3.3 and later allow (they start no run while the last is going).
	for _, t := range []struct{ iv, timeout, own string }{{"0.5", "", ""}, {"0.2", "0.2", ""}, {"0.2", "", ""}, {"0.1", "", ""}, {"0.2", "0.5", "400ms"}} {
		own := oneshotTimers[t.iv]
		if t.timeout == "" {
			t.timeout = own.timeout
		}
		if t.own == "" {
			t.own = own.own
		}
		s = append(s, setup{fmt.Sprintf("every %s s, timeout %s, check --timeout %s", t.iv, t.timeout, t.own),
			cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedFor: "2.2.7", EditKeepalived: scriptTimers(t.iv, t.timeout, t.own)}})
	}
	return s
}

var (
	advertRe   = regexp.MustCompile(`(?m)^(\s*)advert_int\s+\S+`)
	authRe     = regexp.MustCompile(`(?ms)^\s*authentication\s*\{.*?\}\s*\n`)
	versionRe  = regexp.MustCompile(`(?m)^\s*version\s+\d+\s*\n`)
	checkSrcRe = regexp.MustCompile(`(?m)^(\s*)check_unicast_src\s*\n`)
)

// vrrp3 turns a configuration to VRRP version 3 with the given advert_int
// (version 3 allows fractions of a second; it has no authentication).
func vrrp3(advert string) func(int, string) string {
	return func(_ int, conf string) string {
		conf = versionRe.ReplaceAllString(conf, "")
		conf = authRe.ReplaceAllString(conf, "\n")
		return advertRe.ReplaceAllString(conf, "${1}version 3\n${1}advert_int "+advert)
	}
}

// triggers are what `bench vip` can fire, by name; load receives what the clients of a
// CPU load saw.
var triggers = map[string]func(c *cluster.Cluster, load *cluster.LoadResult) cluster.Trigger{
	"switchover":    func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.Switchover("") },
	"graceful stop": func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.StopPrimary() },
	"kill -9":       func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.KillPrimary() },
	// Patroni frozen for less than the ttl: no failover, the VIP leaves and comes back;
	// (b) is how fast the check notices a REST API that stopped answering.
	"REST API hung 3 s": func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger {
		return cluster.PausePrimary(3 * time.Second)
	},
	// The watch's own failures, measured only where there is a watcher.
	"kill -9 of the watcher": func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.KillWatcher() },
	"watcher hung":           func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.StopWatcher() },
	// The outages (outageTriggers): the DCS down for longer than the ttl, without and
	// with failsafe_mode; the primary alone cut from the DCS; Patroni frozen on the
	// primary for longer than the ttl, then continued; and a full CPU (twice as many busy
	// loops as cores) while 32 pgbench clients write through the VIP.
	"DCS down > ttl": func(c *cluster.Cluster, _ *cluster.LoadResult) cluster.Trigger {
		return cluster.StopDCS(c.TTL() + 5*time.Second)
	},
	"DCS down > ttl (failsafe)": func(c *cluster.Cluster, _ *cluster.LoadResult) cluster.Trigger {
		return cluster.WithFailsafe(cluster.StopDCS(c.TTL() + 5*time.Second))
	},
	"cut from the DCS": func(*cluster.Cluster, *cluster.LoadResult) cluster.Trigger { return cluster.CutPrimaryFromDCS() },
	"Patroni frozen > ttl": func(c *cluster.Cluster, _ *cluster.LoadResult) cluster.Trigger {
		return cluster.PausePrimary(c.TTL() + 5*time.Second)
	},
	"CPU load 120 s": func(_ *cluster.Cluster, load *cluster.LoadResult) cluster.Trigger {
		return cluster.LoadPrimary(cluster.Load{For: 120 * time.Second, Clients: 32, Busy: 2 * runtime.NumCPU()}, load)
	},
}

// outageTriggers are the triggers that last longer than a ttl each; -outage-reps (1 by
// default) says how often each runs.
var outageTriggers = []string{"DCS down > ttl", "DCS down > ttl (failsafe)", "cut from the DCS", "Patroni frozen > ttl", "CPU load 120 s"}

// watcherTrigger: a trigger aimed at the watcher, for set-ups that have one.
func watcherTrigger(name string) bool {
	return name == "kill -9 of the watcher" || name == "watcher hung"
}

// runVIP measures, for each setup, each trigger reps times: seconds from
// the trigger until Patroni has a new primary, the VIP left the old node,
// and the VIP is on the new primary, and any time with the VIP on two
// nodes or on a node that is not the primary.
func runVIP(ctx context.Context, w io.Writer, stack *cluster.Stack, setups []setup, names []string, reps, outageReps int, maxLoad float64, logf func(string, ...any)) error {
	ttl := stack.DefaultTTL() // cluster.Start's
	fmt.Fprintf(w, "VIP movement on %s (Patroni %d, keepalived %s), seconds from the trigger, min / median / max of %d runs each "+
		"(%d for the outages). Patroni ttl %d s, loop_wait 1 s, retry_timeout 4 s; 3 nodes in network namespaces. "+
		"(a) the new primary's PostgreSQL logged \"ready to accept connections\" (its own time stamp, to the millisecond); "+
		"(b) and (c) the VIP removed from the old primary and added to the new one to stay, and the time with the VIP on no node or on two, "+
		"from the kernel's address notifications in each node; the time on a non-primary from samples every %v, and on a node not accepting "+
		"writes from each PostgreSQL asked every %v, on a fresh connection, to commit a transaction ID. "+
		"Load: the 1-minute load average when the set-up began, and the highest seen while it ran.\n\n",
		stack.Name, stack.PatroniMajor, stack.KeepalivedVersion, reps, outageReps, ttl, samplePeriod, cluster.WriteProbeEvery)
	fmt.Fprintf(w, "| set-up | trigger | (a) PostgreSQL ready | (b) VIP left old | (c) VIP on new | (c)−(a) | VIP nowhere | on two nodes | "+
		"on a non-primary | on a node not accepting writes | unsettled | client errors | load |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range setups {
		opts := s.opts
		opts.Stack, opts.Logf = stack, logf
		opts.PollInterval = samplePeriod
		load, err := quiet(ctx, maxLoad, s.name)
		if err != nil {
			return err
		}
		c, err := cluster.Start(ctx, opts)
		if err != nil {
			load.end()
			return fmt.Errorf("%s: %w", s.name, err)
		}
		err = measureSetup(ctx, w, c, s, names, reps, outageReps, load, logf)
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func measureSetup(ctx context.Context, w io.Writer, c *cluster.Cluster, s setup, names []string, reps, outageReps int, load *loadRecord, logf func(string, ...any)) error {
	var rows []string
	defer func() {
		// The load is known once the set-up is over: its rows wait for it.
		l := load.end()
		for _, r := range rows {
			fmt.Fprintf(w, "%s %s |\n", r, l)
		}
	}()
	for _, name := range names {
		tr, ok := triggers[name]
		if !ok {
			return fmt.Errorf("unknown trigger %q", name)
		}
		if watcherTrigger(name) && c.Mode() != cluster.ModeWatch {
			continue
		}
		n := reps
		if slices.Contains(outageTriggers, name) {
			n = outageReps
		}
		var ms []cluster.Movement
		var ex []cluster.Exact
		unsettled, clientErrors, loads := 0, 0, 0
		for i := 0; i < n; i++ {
			if _, err := c.Restore(ctx, 3*time.Minute); err != nil {
				return fmt.Errorf("restoring before %s: %w", name, err)
			}
			var load cluster.LoadResult
			m, err := c.Measure(ctx, tr(c, &load))
			if load.Output != "" {
				loads++
				if load.Exit != 0 || load.Failed > 0 || len(load.Errors) > 0 || load.Transactions == 0 {
					clientErrors += max(1, load.Failed)
				}
				if logf != nil {
					logf("%s, %s #%d: pgbench exit %d, %d transactions, %d failed", s.name, name, i+1, load.Exit, load.Transactions, load.Failed)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				unsettled++
				if logf != nil {
					logf("%s, %s #%d: %v", s.name, name, i+1, err)
				}
			}
			e, err := c.Exact(m)
			if err != nil {
				return fmt.Errorf("%s #%d: %w", name, i+1, err)
			}
			if e.Lost {
				unsettled++ // the kernel dropped notifications: the run says nothing sure
			}
			ms, ex = append(ms, m), append(ex, e)
			if logf != nil {
				logf("%s, %s #%d: (a) %v (b) %v (c) %v (c)−(a) %v, no VIP %v, double %v\n%s", s.name, name, i+1,
					e.Ready, e.Gone, e.VIPOn, e.Follow(), e.NoVIP, e.Double, cluster.FormatMovements([]cluster.Movement{m}))
			}
		}
		exact := func(f func(cluster.Exact) time.Duration, prec int) string { return minMedMaxOf(ex, f, prec) }
		total := func(f func(cluster.Movement) time.Duration) string {
			var sum time.Duration
			for _, m := range ms {
				sum += max(f(m), 0)
			}
			return fmt.Sprintf("%.1f", sum.Seconds())
		}
		clients := "–"
		if loads > 0 {
			clients = fmt.Sprint(clientErrors)
		}
		double := 0.0
		for _, e := range ex {
			double += e.Double.Seconds()
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %s | %d | %s |", s.name, name,
			exact(func(e cluster.Exact) time.Duration { return e.Ready }, 2),
			exact(func(e cluster.Exact) time.Duration { return e.Gone }, 2),
			exact(func(e cluster.Exact) time.Duration { return e.VIPOn }, 2),
			exact(cluster.Exact.Follow, 3),
			exact(func(e cluster.Exact) time.Duration { return e.NoVIP }, 2),
			double,
			total(func(m cluster.Movement) time.Duration { return m.OnNonPrimary }),
			total(func(m cluster.Movement) time.Duration { return m.Unwritable }),
			unsettled, clients))
	}
	return nil
}

// minMedMaxOf formats "min / median / max" seconds of the records, with prec
// decimals; a run where the event never happened counts as "never".
func minMedMaxOf[T any](ms []T, f func(T) time.Duration, prec int) string {
	var v []float64
	never := 0
	for _, m := range ms {
		if d := f(m); d >= 0 {
			v = append(v, d.Seconds())
		} else {
			never++
		}
	}
	return minMedMax(v, never, prec)
}

// minMedMax formats "min / median / max" of v (seconds) with prec decimals, and how many
// more runs never saw the event.
func minMedMax(v []float64, never, prec int) string {
	if len(v) == 0 {
		return "never"
	}
	v = slices.Sorted(slices.Values(v))
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	s := fmt.Sprintf("%.*f / %.*f / %.*f", prec, v[0], prec, med, prec, v[len(v)-1])
	if never > 0 {
		s += fmt.Sprintf(" (never ×%d)", never)
	}
	return s
}

// named is a set-up of any measurement.
type named interface{ setupName() string }

func (s setup) setupName() string    { return s.name }
func (s cpuSetup) setupName() string { return s.name }

// pick keeps the set-ups whose name contains one of filter's |-separated
// parts (names have commas in them); all of them if filter is empty.
func pick[T named](all []T, filter string) []T {
	if strings.TrimSpace(filter) == "" {
		return all
	}
	var out []T
	for _, s := range all {
		for _, part := range strings.Split(filter, "|") {
			if part = strings.TrimSpace(part); part != "" && strings.Contains(s.setupName(), part) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
