// Command bench measures patroni-vip-check against what users run today:
// the cost of one run and its deadline against hostile peers, side by
// side with curl as keepalived.conf files call it, and (vip) how fast the
// VIP follows the primary in a real cluster. `make bench` runs it; the
// figures and how to read them are in BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

func main() {
	bin := flag.String("bin", "bin/patroni-vip-check", "the check to measure")
	curl := flag.String("curl", "/usr/bin/curl", "curl, the baseline")
	rounds := flag.Int("rounds", 200, "cost: interleaved runs of each command")
	reps := flag.Int("reps", 10, "deadline: runs of the check per peer")
	curlCap := flag.Duration("curl-cap", 5*time.Second, "deadline: kill curl after this long")
	out := flag.String("out", "", "also write the report to this file")
	vipReps := flag.Int("vip-reps", 5, "vip, readvip: runs of each trigger per set-up")
	trig := flag.String("triggers", "switchover,graceful stop,kill -9,REST API hung 3 s,kill -9 of the watcher,watcher hung,"+strings.Join(outageTriggers, ","),
		"vip: triggers, comma-separated (the watcher's only where there is one)")
	outageReps := flag.Int("outage-reps", 1, "vip: runs of each outage trigger (each lasts longer than a ttl) per set-up")
	verbose := flag.Bool("v", false, "vip: show cluster progress and each run's timeline")
	stackNames := flag.String("stack", "debian12", "vip, readvip, cpu: the software stacks the clusters run, comma-separated ("+strings.Join(cluster.StackNames, ", ")+")")
	before := flag.String("before", "", "cost: also measure this build of the check (an earlier release), in the same rounds")
	cpuWindow := flag.Duration("cpu-window", 60*time.Second, "cpu: how long each set-up is measured")
	only := flag.String("setups", "", "vip, vip-tune, oneshot-tune, watch-tune, cpu: only the set-ups whose name contains one of these, separated by | (default all)")
	maxLoad := flag.Float64("max-load", 1.5, "vip, readvip, cpu: before each set-up, wait until the 1-minute load average is below this (0: do not wait)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bench [flags] cost|deadline|vip|readvip|vip-tune|oneshot-tune|watch-tune|cpu ...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	*bin = abs
	var logf func(string, ...any)
	if *verbose {
		logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	// Each stack is opened once, and only if a cluster is measured: opening a root's
	// stack may build the root first.
	stacks := map[string]*cluster.Stack{}
	openStack := func(name string) (*cluster.Stack, error) {
		if stacks[name] == nil {
			s, err := cluster.OpenStack(ctx, name, cluster.StackOptions{Logf: logf})
			if err != nil {
				return nil, err
			}
			stacks[name] = s
		}
		return stacks[name], nil
	}
	closeStacks := func() {
		for _, s := range stacks {
			s.Close()
		}
	}
	defer closeStacks()
	repo, err := cluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	// perStack runs fn on each stack of -stack in turn.
	perStack := func(title string, fn func(*cluster.Stack) error) error {
		for _, name := range splitList(*stackNames) {
			s, err := openStack(name)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "## %s (%s)\n\n", title, s.Name)
			if err := fn(s); err != nil {
				return err
			}
			fmt.Fprintln(w)
		}
		return nil
	}
	for _, what := range flag.Args() {
		switch what {
		case "cost":
			fmt.Fprintf(w, "## Per-run cost\n\n")
			err = runCost(ctx, w, *bin, *before, *curl, *rounds)
		case "deadline":
			fmt.Fprintf(w, "## Deadline adherence\n\n")
			err = runDeadline(ctx, w, *bin, *curl, *reps, *curlCap)
		case "vip":
			err = perStack("VIP movement", func(s *cluster.Stack) error {
				setups, err := standardSetups(*bin, repo, s)
				if err != nil {
					return err
				}
				return runVIP(ctx, w, s, pick(setups, *only), splitList(*trig), *vipReps, *outageReps, *maxLoad, logf)
			})
		case "readvip":
			err = perStack("The read VIP", func(s *cluster.Stack) error {
				return runReadVIP(ctx, w, s, *bin, *vipReps, *maxLoad, logf)
			})
		case "vip-tune":
			err = perStack("VIP movement with other keepalived timings", func(s *cluster.Stack) error {
				return runVIP(ctx, w, s, pick(tuningSetups(*bin), *only), splitList(*trig), *vipReps, *outageReps, *maxLoad, logf)
			})
		case "oneshot-tune":
			err = perStack("VIP movement with other vrrp_script timings", func(s *cluster.Stack) error {
				if !s.FractionalIntervals {
					fmt.Fprintf(w, "keepalived on %s takes whole seconds only: nothing to tune.\n", s.Name)
					return nil
				}
				return runVIP(ctx, w, s, pick(oneshotTuningSetups(*bin), *only), splitList(*trig), *vipReps, *outageReps, *maxLoad, logf)
			})
		case "watch-tune":
			err = perStack("VIP movement with other watch intervals and adverts", func(s *cluster.Stack) error {
				names := slices.DeleteFunc(splitList(*trig), func(n string) bool { return !slices.Contains(watchTuneTriggers, n) })
				return runVIP(ctx, w, s, pick(watchTuningSetups(*bin), *only), names, *vipReps, *outageReps, *maxLoad, logf)
			})
		case "cpu":
			err = perStack("What gating the VIP costs the node", func(s *cluster.Stack) error {
				setups, err := cpuSetups(*bin, repo, s)
				if err != nil {
					return err
				}
				return runCPU(ctx, w, s, pick(setups, *only), *cpuWindow, *maxLoad, logf)
			})
		default:
			err = fmt.Errorf("unknown measurement %q", what)
		}
		fmt.Fprintln(w)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", what+":", err)
			closeStacks()
			os.Exit(1)
		}
	}
}
