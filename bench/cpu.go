package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// cpuSetup is one way of gating the VIP whose cost to the node is measured.
type cpuSetup struct {
	name string
	opts cluster.Options
}

// curlOnce is the row every other is compared with: what users run today.
const curlOnce = "curl, every 1 s"

// cpuSetups are the set-ups `bench cpu` compares on stack: curl and the one-shot check
// once a second; the watch as shipped (keepalived-watch.conf, --pgdata, its default
// interval), on polls alone every 200 ms (no --pgdata), and with --pgdata at each
// candidate interval with 20 ms and 10 ms adverts (in a steady state --pgdata costs
// nothing: nothing changes in the data directory); and, on a keepalived that takes
// fractions of a second, the one-shot check every 0.2 s (keepalived-2.3.conf).
func cpuSetups(bin, repo string, stack *cluster.Stack) ([]cpuSetup, error) {
	s := []cpuSetup{
		{curlOnce, cluster.Options{Mode: cluster.ModeCurl}},
		{"patroni-vip-check, every 1 s (keepalived.conf)", cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedFor: "2.2.7"}},
		{"patroni-vip-check watch --pgdata (keepalived-watch.conf)", cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin}},
		{"patroni-vip-check watch on polls alone, every 200 ms", cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin,
			WatchPollsAlone: true, WatchArgs: []string{"--interval", "200ms"}}},
	}
	for _, adv := range []string{"0.02", "0.01"} {
		for _, iv := range []string{"500ms", "1s", "2s"} {
			s = append(s, cpuSetup{"watch --pgdata --interval " + iv + ", advert_int " + adv,
				cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin, WatchArgs: []string{"--interval", iv}, EditKeepalived: vrrp3(adv)}})
		}
	}
	// Two watchers on each node: the primary's VIP and a read VIP's
	// (keepalived-read-vip.conf, patroni-vip-check@replica), as shipped.
	s = append(s, cpuSetup{"two watchers: the primary's and the read VIP's (keepalived-read-vip.conf)",
		cluster.Options{Mode: cluster.ModeWatch, CheckBinary: bin, ReadVIP: true}})
	if stack.FractionalIntervals {
		conf, err := os.ReadFile(filepath.Join(repo, "packaging", "keepalived-2.3.conf"))
		if err != nil {
			return nil, err
		}
		s = append(s, cpuSetup{"patroni-vip-check, every 0.2 s (keepalived-2.3.conf)",
			cluster.Options{Mode: cluster.ModeCheck, CheckBinary: bin, KeepalivedConf: string(conf)}})
	}
	return s, nil
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
func runCPU(ctx context.Context, w io.Writer, stack *cluster.Stack, setups []cpuSetup, window time.Duration, maxLoad float64, logf func(string, ...any)) error {
	fmt.Fprintf(w, "Node CPU on %s (Patroni %d), milliseconds of CPU per second, over %v of steady state "+
		"after 10 s of settling, the harness's own sampling of PostgreSQL off. keepalived counts the checks "+
		"(or curl) it runs and its adverts; watcher is patroni-vip-check watch itself; × curl is the total against "+
		"%q on the same kind of node in this table. Load: the 1-minute load average when the set-up began, and the highest "+
		"seen while it ran.\n\n", stack.Name, stack.PatroniMajor, window, curlOnce)
	fmt.Fprintf(w, "| set-up | node | total | × curl | keepalived | watcher | Patroni | PostgreSQL | load |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	curl := map[string]float64{}
	for _, s := range setups {
		opts := s.opts
		opts.Stack, opts.Logf = stack, logf
		opts.PollInterval = time.Hour // no sampling: its queries would cost PostgreSQL time
		load, err := quiet(ctx, maxLoad, s.name)
		if err != nil {
			return err
		}
		c, err := cluster.Start(ctx, opts)
		if err != nil {
			load.end()
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows, err := measureCPU(ctx, c, window)
		l := load.end()
		for _, r := range rows {
			if s.name == curlOnce {
				curl[r.kind] = r.total
			}
			ratio := "–"
			if curl[r.kind] > 0 {
				ratio = fmt.Sprintf("%.2f", r.total/curl[r.kind])
			}
			fmt.Fprintf(w, "| %s | %s | %.2f | %s | %s | %s |\n", s.name, r.role, r.total, ratio, r.cells, l)
		}
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// cpuRow is one node's CPU in a set-up: its total and the cells by kind.
type cpuRow struct {
	kind  string  // "primary" or "replica": what × curl compares with
	role  string  // kind, and what else the node holds ("replica, read VIP")
	total float64 // ms/s
	cells string
}

func measureCPU(ctx context.Context, c *cluster.Cluster, window time.Duration) ([]cpuRow, error) {
	leader, err := c.Leader(ctx)
	if err != nil {
		return nil, err
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
		return nil, ctx.Err()
	}
	replica := "replica"
	if h, err := c.ReadHolder(); err == nil {
		// The replica that holds the read VIP, which its keepalived advertises.
		nodes[1], replica = h, "replica, read VIP"
	}
	before := make([]cluster.CPU, len(nodes))
	for i, n := range nodes {
		if before[i], err = n.CPU(); err != nil {
			return nil, err
		}
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var rows []cpuRow
	for i, n := range nodes {
		after, err := n.CPU()
		if err != nil {
			return nil, err
		}
		by, total := after.Since(before[i])
		kind, role := "replica", replica
		if i == 0 {
			kind, role = "primary", "primary"
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
		rows = append(rows, cpuRow{kind: kind, role: role, total: float64(total) / float64(time.Millisecond),
			cells: strings.Join([]string{ms(by[cluster.CPUKeepalived]), ms(by[cluster.CPUWatcher]), ms(by[cluster.CPUPatroni]), ms(by[cluster.CPUPostgres])}, " | ")})
	}
	return rows, nil
}
