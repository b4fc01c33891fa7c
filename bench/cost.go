package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// standIn answers /primary like Patroni 3.0.2 on a primary node (200, a
// master body) or on a replica (503, a replica body). It runs in this
// process, on loopback.
func standIn(status int, role string) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	body := fmt.Sprintf(`{"state": "running", "postmaster_start_time": "2026-11-25 10:00:00.000000+00:00", "role": %q, `+
		`"server_version": 150010, "xlog": {"location": 67108864}, "timeline": 4, "dcs_last_seen": 1764064800, `+
		`"database_system_identifier": "7300000000000000000", "patroni": {"version": "3.0.2", "scope": "demo"}}`, role)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// sample is one whole process: wall time from fork to reaped, and CPU
// from the kernel's accounting of the child.
type sample struct {
	wall, cpu time.Duration
	code      int
}

func measure(ctx context.Context, argv []string, cap time.Duration) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, cap)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return sample{}, err
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	s := sample{wall: wall, code: cmd.ProcessState.ExitCode()}
	if ru != nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if ctx.Err() != nil {
		s.code = -1 // killed at the cap
	}
	return s, nil
}

type series []sample

func (s series) median(f func(sample) float64) float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// peakRSS is the median peak RSS (KiB) of runs under GNU time. Not from
// our own wait4: Go starts children with vfork, and the kernel counts the
// parent's memory, shared until exec, in the child's ru_maxrss.
func peakRSS(ctx context.Context, argv []string, runs int) (float64, error) {
	var v []float64
	for i := 0; i < runs; i++ {
		out, err := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M", "-o", "/dev/stdout", "--"}, argv...)...).Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return 0, fmt.Errorf("/usr/bin/time (Debian package time): %w", err)
		}
		lines := strings.Fields(string(out))
		if len(lines) == 0 {
			return 0, fmt.Errorf("/usr/bin/time printed nothing")
		}
		kib, err := strconv.ParseFloat(lines[len(lines)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/usr/bin/time printed %q", out)
		}
		v = append(v, kib)
	}
	slices.Sort(v)
	return v[len(v)/2], nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// costCase is one command line measured per round.
type costCase struct {
	name string
	argv []string
	want int // expected exit status
}

// runCost measures each case once per round, rotating the order every
// round, so that the machine's noise falls on all of them alike.
func runCost(ctx context.Context, w io.Writer, bin, before, curl string, rounds int) error {
	primary, stopPrimary, err := standIn(http.StatusOK, "master")
	if err != nil {
		return err
	}
	defer stopPrimary()
	replica, stopReplica, err := standIn(http.StatusServiceUnavailable, "replica")
	if err != nil {
		return err
	}
	defer stopReplica()
	state, err := os.MkdirTemp("", "pvc-bench-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	onPrimary, onReplica := "http://"+primary+"/primary", "http://"+replica+"/primary"
	curlArgs := []string{curl, "-s", "-o", "/dev/null", "-X", "GET", "-I", "--fail"}
	cases := []costCase{
		{"patroni-vip-check, primary (200)", []string{bin, "--log", "none", "--state-dir", state, onPrimary}, 0},
		{"curl -X GET -I --fail, primary (200)", append(slices.Clip(curlArgs), onPrimary), 0},
		{"patroni-vip-check, replica (503)", []string{bin, "--log", "none", "--state-dir", state, onReplica}, 1},
		{"curl -X GET -I --fail, replica (503)", append(slices.Clip(curlArgs), onReplica), 22},
		{"patroni-vip-check --version (start-up only)", []string{bin, "--version"}, 0},
		{"patroni-vip-check, primary, --no-state", []string{bin, "--log", "none", "--no-state", onPrimary}, 0},
	}
	// An earlier build, in the same rounds: what a change cost, free of the machine's
	// drift between sessions. Its state is kept apart: the record may have changed.
	beforeState := state + "-before"
	if before != "" {
		if err := os.MkdirAll(beforeState, 0o700); err != nil {
			return err
		}
		defer os.RemoveAll(beforeState)
		cases = append(cases,
			costCase{"before: primary (200)", []string{before, "--log", "none", "--state-dir", beforeState, onPrimary}, 0},
			costCase{"before: replica (503)", []string{before, "--log", "none", "--state-dir", beforeState, onReplica}, 1},
			costCase{"before: --version", []string{before, "--version"}, 0})
	}
	results := make([]series, len(cases))
	rss := make([]float64, len(cases))
	for _, c := range cases { // warm the page cache and the state files
		for i := 0; i < 5; i++ {
			if _, err := measure(ctx, c.argv, 10*time.Second); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
	}
	for r := 0; r < rounds; r++ {
		for k := range cases {
			i := (k + r) % len(cases)
			s, err := measure(ctx, cases[i].argv, 10*time.Second)
			if err != nil {
				return fmt.Errorf("%s: %w", cases[i].name, err)
			}
			if s.code != cases[i].want {
				return fmt.Errorf("%s: exit %d, want %d", cases[i].name, s.code, cases[i].want)
			}
			results[i] = append(results[i], s)
		}
	}
	for i, c := range cases {
		if rss[i], err = peakRSS(ctx, c.argv, 21); err != nil {
			return err
		}
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Per-run cost, median of %d interleaved runs each (wall: fork to reaped; CPU: user+sys of the child),\n"+
		"and peak RSS, median of 21 runs under GNU time.\n\n", rounds)
	fmt.Fprintf(w, "| command | wall ms | CPU ms | peak RSS MiB |\n|---|---:|---:|---:|\n")
	for i, c := range cases {
		s := results[i]
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.1f |\n", c.name,
			s.median(func(x sample) float64 { return ms(x.wall) }),
			s.median(func(x sample) float64 { return ms(x.cpu) }),
			rss[i]/1024)
	}
	fmt.Fprintf(w, "\nRatios, patroni-vip-check / curl (target: at most 0.45 for wall and CPU):\n\n")
	fmt.Fprintf(w, "| answer | wall | CPU | peak RSS |\n|---|---:|---:|---:|\n")
	for _, pair := range [][2]int{{0, 1}, {2, 3}} {
		a, b := results[pair[0]], results[pair[1]]
		ratio := func(f func(sample) float64) float64 { return a.median(f) / b.median(f) }
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f |\n", strings.TrimPrefix(cases[pair[0]].name, "patroni-vip-check, "),
			ratio(func(x sample) float64 { return ms(x.wall) }),
			ratio(func(x sample) float64 { return ms(x.cpu) }),
			rss[pair[0]]/rss[pair[1]])
	}
	fmt.Fprintf(w, "\nBinary size: %d bytes (%.1f MiB).\n", fi.Size(), float64(fi.Size())/(1<<20))
	if before != "" {
		fmt.Fprintf(w, "\nThis build against the one before (%s), same rounds, ratio this / before:\n\n", before)
		fmt.Fprintf(w, "| run | wall | CPU | peak RSS |\n|---|---:|---:|---:|\n")
		for _, pair := range [][2]int{{0, 6}, {2, 7}, {4, 8}} {
			a, b := results[pair[0]], results[pair[1]]
			ratio := func(f func(sample) float64) float64 { return a.median(f) / b.median(f) }
			fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f |\n", strings.TrimPrefix(cases[pair[1]].name, "before: "),
				ratio(func(x sample) float64 { return ms(x.wall) }),
				ratio(func(x sample) float64 { return ms(x.cpu) }),
				rss[pair[0]]/rss[pair[1]])
		}
		if bfi, err := os.Stat(before); err == nil {
			fmt.Fprintf(w, "\nThe build before: %d bytes (%.1f MiB).\n", bfi.Size(), float64(bfi.Size())/(1<<20))
		}
	}
	return nil
}
