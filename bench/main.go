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
	vipReps := flag.Int("vip-reps", 5, "vip: runs of each trigger per set-up")
	trig := flag.String("triggers", "switchover,graceful stop,kill -9", "vip: triggers, comma-separated")
	verbose := flag.Bool("v", false, "vip: show cluster progress and each run's timeline")
	stackName := flag.String("stack", "debian12", "vip: the software stack the clusters run ("+strings.Join(cluster.StackNames, ", ")+")")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bench [flags] cost|deadline|vip|vip-tune ...\n")
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
	// The stack is opened once, and only if a cluster is measured: opening a root's stack
	// may build the root first.
	var stack *cluster.Stack
	openStack := func() (*cluster.Stack, error) {
		if stack == nil {
			s, err := cluster.OpenStack(ctx, *stackName, cluster.StackOptions{Logf: logf})
			if err != nil {
				return nil, err
			}
			stack = s
		}
		return stack, nil
	}
	defer func() {
		if stack != nil {
			stack.Close()
		}
	}()
	for _, what := range flag.Args() {
		switch what {
		case "cost":
			fmt.Fprintf(w, "## Per-run cost\n\n")
			err = runCost(ctx, w, *bin, *curl, *rounds)
		case "deadline":
			fmt.Fprintf(w, "## Deadline adherence\n\n")
			err = runDeadline(ctx, w, *bin, *curl, *reps, *curlCap)
		case "vip":
			var s *cluster.Stack
			if s, err = openStack(); err == nil {
				fmt.Fprintf(w, "## VIP movement (%s)\n\n", s.Name)
				err = runVIP(ctx, w, s, standardSetups(*bin, s), splitList(*trig), *vipReps, logf)
			}
		case "vip-tune":
			var s *cluster.Stack
			if s, err = openStack(); err == nil {
				fmt.Fprintf(w, "## VIP movement with other keepalived timings (%s)\n\n", s.Name)
				err = runVIP(ctx, w, s, tuningSetups(*bin), splitList(*trig), *vipReps, logf)
			}
		default:
			err = fmt.Errorf("unknown measurement %q", what)
		}
		fmt.Fprintln(w)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", what+":", err)
			if stack != nil {
				stack.Close()
			}
			os.Exit(1)
		}
	}
}
