// A run lives a few milliseconds: no container-aware GOMAXPROCS (it reads
// cgroup files at start-up) and no goroutine to keep it up to date.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command patroni-vip-check tells keepalived whether this node may hold the
// Patroni cluster's virtual IP: it asks the local Patroni REST API within
// one deadline, exits 0 (eligible) or 1 (not eligible, or could not tell),
// and logs each change of state once. See README.md and
// patroni-vip-check(1).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/patroni-vip-check/patroni-vip-check/check"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "devel"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// grace is how long past the deadline the watchdog lets the process live;
// its own last line may take 5ms more. keepalived's timeout should leave
// more than this.
const grace = 15 * time.Millisecond

// run is the whole program: it returns the exit status, 0 or 1, and
// nothing below it exits, except the watchdog and a second signal, the two
// fences that hold when something below hangs.
func run(args []string, stdout, stderr io.Writer) (code int) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "patroni-vip-check: error: internal error: %v\n", p)
			code = 1
		}
	}()

	cfg, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "patroni-vip-check: error: %v (see --help)\n", err)
		newApp(salvage(args), start, stderr, true).reportBadArgs(args, err)
		return 1
	}
	if cfg.help || cfg.version {
		// A closed stdout (--help | head -1) must not kill us with SIGPIPE.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}
	switch {
	case cfg.help:
		fmt.Fprint(stdout, usage)
		return 0
	case cfg.version:
		fmt.Fprintf(stdout, "patroni-vip-check %s\n", version)
		return 0
	}

	a := newApp(cfg, start, stderr, false)
	// The last fence: whatever blocks (a stalled log socket, a stuck
	// filesystem), the process is gone just after the deadline.
	watchdog := time.AfterFunc(time.Until(a.deadline.Add(grace)), func() {
		a.overran(start)
		os.Exit(1)
	})
	defer watchdog.Stop()

	ctx, cancel := context.WithDeadline(context.Background(), a.httpDeadline)
	defer cancel()
	// keepalived ends a run that outlives its timeout with SIGTERM (SIGKILL
	// 2s later): abort the request, record why, exit 1. A second signal
	// exits at once. The handler is installed off the critical path:
	// signal.Notify hands each signal to a thread of its own and waits for
	// it (0.2 ms of a 3.5 ms run), while keepalived's SIGTERM comes a whole
	// script timeout after the start. Nothing unregisters it: the process
	// is about to exit, and signal.Stop waits for the signal loop to idle.
	sigs := make(chan os.Signal, 2)
	go func() {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		cancel()
		<-sigs
		os.Exit(1)
	}()

	checker, err := check.New(check.Options{
		URL:            cfg.url,
		ConnectTimeout: cfg.connectTimeout,
		Retries:        cfg.retries,
		RetryWait:      retryWait,
		StatusOnly:     cfg.statusOnly,
		CACert:         cfg.cacert,
		Cert:           cfg.cert,
		Key:            cfg.key,
		ServerName:     cfg.servername,
		Insecure:       cfg.insecure,
		User:           cfg.user,
		PasswordFile:   cfg.passwordFile,
		UserAgent:      "patroni-vip-check/" + version,
	})
	var res check.Result
	if err != nil {
		res = check.Result{Class: check.Config, Err: err}
	} else {
		if cfg.verbose {
			a.traceStart(checker)
		}
		res = checker.Check(ctx)
	}
	if cfg.verbose {
		a.traceResult(checker, res)
	}
	a.report(checker, res)
	if res.Eligible() {
		return 0
	}
	return 1
}

// retryWait is the pause before a retry: long enough for a reset listener
// to come back, short enough to fit twice in the default deadline.
const retryWait = 25 * time.Millisecond

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
