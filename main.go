// A run lives a few milliseconds: no container-aware GOMAXPROCS (it reads
// cgroup files at start-up) and no goroutine to keep it up to date.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command patroni-vip-check tells keepalived whether this node may hold the
// Patroni cluster's virtual IP: it asks the local Patroni REST API within
// one deadline, exits 0 (eligible) or 1 (not eligible, or could not tell),
// and logs each change of state at least once. See README.md and
// patroni-vip-check(1).
//
// Following one check through the code:
//
//	main.go     the entry point, the subcommands, what signals do
//	internal/cmdline  the command line of both lifecycles
//	once.go     a single run, as keepalived's vrrp_script: one deadline,
//	            its fences, the state file, the exit status
//	watch.go    patroni-vip-check watch: the poll loop and the track file
//	line.go     the one way from a result to a log line, and -v
//
// and setup.go, which hands the commands that set a node up
// (keepalived-conf and doctor) to a binary of their own,
// patroni-vip-check-setup (cmd/patroni-vip-check-setup).
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
)

// onceCatchAfter is when a single run starts to catch SIGTERM and SIGINT
// (catchSignals).
const onceCatchAfter = 10 * time.Millisecond

// version is set at build time: -ldflags "-X main.version=..."
var version = "devel"

func main() {
	if sub, _ := cmdline.Split(os.Args[1:]); sub == "" {
		// A single run asks one question and has nothing to do in
		// parallel. With a second P the scheduler starts and wakes threads
		// for nothing, and the kernel then shoots down TLBs across CPUs:
		// one P from here saves a run about 5% of its CPU (BENCHMARKS.md,
		// section 1). The watch keeps every P.
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: it returns the exit status, 0 or 1. Nothing
// below it exits, but the fences of a single run (see once.go), which hold
// when something below hangs.
func run(args []string, stdout, stderr io.Writer) (code int) {
	start := time.Now()
	sub, rest := cmdline.Split(args)
	if sub == cmdline.SubKeepalivedConf || sub == cmdline.SubDoctor {
		// Before any signal is set to be ignored: the set-up binary would
		// inherit that.
		return runSetup(args, stderr)
	}
	catchAfter := time.Duration(0)
	if sub == "" {
		catchAfter = onceCatchAfter
	}
	stop := catchSignals(catchAfter)
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "patroni-vip-check: error: internal error: %v\n%s", p, debug.Stack())
			code = 1
		}
	}()
	if sub == cmdline.SubWatch {
		return runWatch(rest, stop, stdout, stderr)
	}
	return runOnce(rest, start, stop, stdout, stderr)
}

// catchSignals keeps every signal from ending the process with a status
// other than 0 or 1. SIGTERM (keepalived's timeout, systemd's stop) and
// SIGINT arrive on the returned channel: each lifecycle ends on them in its
// own way. Every other signal whose default action ends the process, with
// or without a core dump, is ignored: SIGHUP, SIGQUIT, SIGPIPE (a write to
// a closed pipe then fails with EPIPE instead), SIGUSR1, the real-time
// signals and the rest. A signal that only a fault raises (SIGSEGV...) is
// still a crash when a fault raises it; sent by kill(2), it is delivered
// here and ignored.
//
// It is called first thing, synchronously: a handler installed later (from
// a goroutine, say) leaves a window in which SIGTERM kills the process by
// signal. What remains is the Go runtime's own start, before main, about a
// millisecond after exec.
//
// With catchAfter > 0 (a single run), SIGTERM and SIGINT are ignored at
// once and caught only from catchAfter on. Catching them costs a run more
// than a tenth of its CPU (os/signal starts a thread of its own and waits
// for it twice: `bench cost`, BENCHMARKS.md section 1), and a run that
// answers in a few milliseconds never needs it: keepalived's SIGTERM comes
// at its timeout, long after. A SIGTERM in the first catchAfter is
// ignored, and the run ends by its own deadline, exit status 0 or 1.
func catchSignals(catchAfter time.Duration) chan os.Signal {
	stop := make(chan os.Signal, 2)
	if catchAfter > 0 {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		time.AfterFunc(catchAfter, func() { signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT) })
	} else {
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	}
	// The signals of faults: ignoring them leaves the runtime's handler in
	// place for a real fault (a panic or a crash), and makes one sent by
	// kill(2) or tgkill(2) harmless (runtime.sighandler returns early for a
	// signal from a user that os/signal ignores).
	ignore := []os.Signal{syscall.SIGILL, syscall.SIGTRAP, syscall.SIGBUS,
		syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSTKFLT, syscall.SIGSYS,
		syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGPIPE,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGVTALRM,
		syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGIO, syscall.SIGPWR}
	for rt := 34; rt <= 64; rt++ { // SIGRTMIN..SIGRTMAX as the kernel numbers them
		ignore = append(ignore, syscall.Signal(rt))
	}
	signal.Ignore(ignore...)
	ignoreLibcSignals()
	return stop
}

// userAgent names this build to Patroni.
func userAgent() string { return "patroni-vip-check/" + version }
