package main

// A single run, as keepalived's vrrp_script runs it: one deadline for
// everything, the state file that keeps replicas quiet, the line logged and
// the exit status, which always agree.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
	"github.com/patroni-vip-check/patroni-vip-check/sink"
)

// plan is the timing of one run. Everything derives from its start and
// --timeout (T), so that the process is gone before keepalived's own
// timeout:
//
//	start ── request ───────────── lock ─── deadline ── watchdog
//	         T − reserve           T − r/2   T           T + grace
//
// The request (retries included) ends first, so that it cannot eat the
// time that recording its result needs; reserve is a tenth of T, 5ms to
// 50ms (state and logging take well under a millisecond on tmpfs). Waiting
// for the state lock ends next, writing the line at the deadline; the
// watchdog is the last fence, for whatever blocks past it.
type plan struct {
	start, request, lock, deadline, watchdog time.Time
}

// grace is how long past the deadline the watchdog lets the process live;
// keepalived's timeout should leave more than this.
const grace = 15 * time.Millisecond

func newPlan(start time.Time, timeout time.Duration) plan {
	reserve := min(max(timeout/10, 5*time.Millisecond), 50*time.Millisecond)
	return plan{
		start:    start,
		request:  start.Add(timeout - reserve),
		lock:     start.Add(timeout - reserve/2),
		deadline: start.Add(timeout),
		watchdog: start.Add(timeout + grace),
	}
}

// retryWait is the pause before a retry: long enough for a reset listener
// to come back, short enough to fit twice in the default deadline.
const retryWait = 25 * time.Millisecond

// exitStatus is decided once, and agrees with the line logged. The run
// settles it as soon as its verdict is known, before any line about that
// verdict; a fence (the watchdog, a second signal) that fires before then
// logs a line of its own and exits 1; one that fires after exits with the
// settled status, once the run's report is done or after a short wait.
type exitStatus struct {
	mu       sync.Mutex
	code     int // -1 until settled
	fenced   bool
	reported chan struct{} // closed when the run's report is done
}

// settle fixes the status. If a fence already has the run, it never
// returns: the fence is exiting the process.
func (e *exitStatus) settle(code int) {
	e.mu.Lock()
	if e.fenced {
		e.mu.Unlock()
		select {}
	}
	e.code = code
	e.mu.Unlock()
}

// onceRun is one run after its flags are parsed.
type onceRun struct {
	cfg    config
	plan   plan
	stderr io.Writer
	exit   exitStatus
	cancel context.CancelFunc // ends the request
	ctx    context.Context
}

func runOnce(args []string, start time.Time, stop <-chan os.Signal, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(once, args)
	switch {
	case err == nil && cfg.help:
		fmt.Fprint(stdout, usage(once))
		return 0
	case err == nil && cfg.version:
		fmt.Fprintf(stdout, "patroni-vip-check %s\n", version)
		return 0
	case err != nil:
		cfg = salvage(once, args) // its error is logged where the user asked, in the default time
	}
	r := &onceRun{cfg: cfg, plan: newPlan(start, cfg.timeout), stderr: stderr}
	r.exit.code = -1
	r.exit.reported = make(chan struct{})
	r.ctx, r.cancel = context.WithDeadline(context.Background(), r.plan.request)
	defer r.cancel()
	watchdog := time.AfterFunc(time.Until(r.plan.watchdog), r.overran)
	defer watchdog.Stop()
	go r.onSignals(stop)
	if err != nil {
		return r.badArgs(args, err)
	}
	return r.check()
}

func (r *onceRun) check() int {
	cfg := r.cfg
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
	v := verdict{url: check.Redact(cfg.url), endpoint: check.EndpointFor(""), insecure: cfg.insecure}
	if err != nil {
		v.res = check.Result{Class: check.Config, Err: err}
	} else {
		v.url, v.endpoint = checker.URL(), checker.Endpoint()
		if cfg.verbose {
			trace{r.stderr}.start(v.url, time.Until(r.plan.request), cfg.connectTimeout, cfg.retries)
		}
		v.res = checker.Check(r.ctx)
	}
	code := 1
	if v.res.Eligible() {
		code = 0
	}
	r.exit.settle(code)
	if cfg.verbose {
		trace{r.stderr}.result(v.endpoint, v.res)
	}
	r.report(v, stateName(cfg, v.url), false)
	return code
}

// badArgs says what is wrong with a command line that does not parse, on
// stderr and in the log: once per distinct command line (and a reminder
// per --remind), like any other bad state.
func (r *onceRun) badArgs(args []string, err error) int {
	r.exit.settle(1)
	// Before the line on stderr: a full stderr pipe must not keep the
	// watchdog's line from saying what went wrong.
	msg := sink.Clean(err.Error(), sink.MaxMessage)
	fmt.Fprintf(r.stderr, "patroni-vip-check: error: %s (see --help)\n", msg)
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = check.Redact(a)
	}
	cmdline := strings.Join(shown, " ")
	sum := sha256.Sum256([]byte(strings.Join(shown, "\x00")))
	v := verdict{
		res:      check.Result{Class: check.Config, Err: fmt.Errorf("invalid command line: %s", msg)},
		url:      check.Redact(r.cfg.url),
		endpoint: check.EndpointFor(""),
		args:     cmdline,
	}
	r.report(v, "args-"+hex.EncodeToString(sum[:8])+".state", true)
	return 1
}

// onSignals: the first SIGTERM or SIGINT ends the request (keepalived's
// timeout: the run then logs why and exits 1); a second one is a fence.
func (r *onceRun) onSignals(stop <-chan os.Signal) {
	<-stop
	r.cancel()
	<-stop
	r.fence(check.Interrupted, "a second signal ended the run", 5*time.Millisecond)
}

// overran is the watchdog: the run is past its deadline and still going.
// Either it was stalled (stopped, starved of CPU) and has only just
// resumed, or something blocks (a stalled log socket, a stuck file
// system).
func (r *onceRun) overran() {
	late := time.Since(r.plan.watchdog)
	wait := 5 * time.Millisecond // for a line in flight
	if late > 10*time.Millisecond {
		// The watchdog woke late: the process was stalled, not stuck, and
		// the run has just resumed; let it finish (a first state is
		// synced to disk).
		wait = 100 * time.Millisecond
	}
	r.fence(check.Timeout, fmt.Sprintf("the run overran its %v deadline by %s (the process was stalled or blocked)",
		r.cfg.timeout, fmtDur(time.Since(r.plan.deadline))), wait)
}

// fence ends the process: with a line of its own and status 1 if the run
// has no verdict yet, else with the run's status once its report is done
// or wait has passed. A fence's line never touches the state: the next run
// compares with what was last recorded.
func (r *onceRun) fence(class check.Class, why string, wait time.Duration) {
	e := &r.exit
	e.mu.Lock()
	if e.code < 0 {
		e.fenced = true
		e.mu.Unlock()
		v := verdict{
			res:      check.Result{Class: class, Err: errors.New(why), Elapsed: time.Since(r.plan.start)},
			url:      check.Redact(r.cfg.url),
			endpoint: check.EndpointFor(""),
			insecure: r.cfg.insecure,
		}
		w := r.writer(sink.Bound{Deadline: time.Now()}, false) // a write gets 5ms at least
		logLine(zerolog.New(w), v, ratelimit.Decision{Kind: ratelimit.First}, nil, time.Now())
		w.Close()
		os.Exit(1)
	}
	code := e.code
	e.mu.Unlock()
	select {
	case <-e.reported:
	case <-time.After(wait):
	}
	os.Exit(code)
}

// report records v in the state file name and logs what the policy says is
// worth a line, so that each change of state is logged at least once:
//
//   - The state file is locked, so that overlapping runs take turns.
//   - A change's new state is written beside the file and synced, and
//     takes its place only once a sink took the line. A line that was not
//     taken (the log daemon stalled or missing) leaves the old state, and
//     the next run logs the change again.
//   - A change that was logged but cannot be saved (a full or read-only
//     file system) invalidates the old state, so that it cannot hide the
//     next change.
//   - An unchanged state is rewritten in place, with no line; one that
//     cannot be rewritten is logged, with why, every run.
//
// The cost of "at least once" is a repeated line: a run killed between
// its line and its rename, or a line the daemon took but lost, is logged
// again by the next run. The exit status never depends on any of this.
func (r *onceRun) report(v verdict, name string, quietStderr bool) {
	defer close(r.exit.reported)
	cfg := r.cfg
	w := r.writer(sink.Bound{Deadline: r.plan.deadline}, quietStderr)
	defer w.Close()
	log := zerolog.New(w)
	class := string(v.res.Class)
	bad := v.res.Class != check.Eligible
	now := time.Now()
	policy := ratelimit.Policy{Remind: cfg.remind}
	emit := func(d ratelimit.Decision, problem error) bool {
		logLine(log, v, d, problem, now)
		return w.Err() == nil
	}
	// Without usable state every result is logged, as a first one.
	unrecorded := func(problem error) {
		_, d := policy.Next(nil, class, bad, now)
		emit(d, problem)
	}
	if cfg.noState {
		unrecorded(nil)
		return
	}
	path := stateDirFor(cfg)
	perm := uint32(0o700)
	if path == rootStateDir {
		perm = 0o711 // other users' directories are in it
	}
	dir, err := ratelimit.OpenDir(path, perm)
	if err != nil {
		unrecorded(fmt.Errorf("%w%s; logging every check until it is fixed", err, stateDirHint(cfg, err)))
		return
	}
	defer dir.Close()
	tx, err := dir.Begin(name, r.plan.lock)
	if err != nil {
		unrecorded(err)
		return
	}
	defer tx.Close()
	prev, loadErr := tx.Load()
	next, d := policy.Next(prev, class, bad, now)
	if loadErr != nil {
		loadErr = fmt.Errorf("%w; starting afresh", loadErr)
	}
	if cfg.verbose {
		fmt.Fprintf(r.stderr, "patroni-vip-check: state: %s (%s)\n", d.Kind, filepath.Join(dir.Path(), name))
	}
	switch d.Kind {
	case ratelimit.Quiet:
		if err := tx.Save(next); err != nil {
			emit(d, err)
		} else if slow := r.cadence(next, now); slow != nil {
			emit(d, slow)
		}
	case ratelimit.Reminder:
		// Saved only once logged; a state that cannot be rewritten says
		// so on the next quiet run.
		if emit(d, nil) {
			tx.Save(next)
		}
	default: // ratelimit.First, ratelimit.Change
		pending, saveErr := tx.Prepare(next)
		taken := emit(d, errors.Join(tx.Repaired, loadErr, saveErr))
		switch {
		case !taken && pending != nil:
			pending.Abort()
		case !taken:
		case pending != nil && pending.Commit() == nil:
		default:
			tx.Invalidate(next)
		}
	}
}

// cadenceRuns is how many unchanged runs after a line the cadence is judged
// on: once per line logged, so the warning is as rare as reminders.
const cadenceRuns = 20

// cadence says, when --interval names keepalived's interval, whether
// keepalived runs the check far less often than that: keepalived before
// 2.3.2 takes "interval 0.2" for an error, logs "invalid number" and runs
// the script every second. The pace is the state's own: the runs not
// logged since the last line, over the time since it.
func (r *onceRun) cadence(s ratelimit.State, now time.Time) error {
	if !r.cfg.intervalSet || s.Suppressed != cadenceRuns {
		return nil
	}
	every := now.Sub(s.Logged) / cadenceRuns
	if every < 3*r.cfg.interval {
		return nil
	}
	return fmt.Errorf("keepalived runs this check every %s, not every %s (--interval): keepalived before 2.3.2 ignores a fractional interval and runs it every second",
		fmtDur(every), fmtDur(r.cfg.interval))
}

// stateDirHint says how to fix a missing state directory of a user other
// than root, which only root can create.
func stateDirHint(cfg config, err error) string {
	if cfg.stateDir != "" || os.Geteuid() == 0 || !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ENOENT) {
		return ""
	}
	name, owner := stateUser()
	return fmt.Sprintf(" (only root can create it: add \"d %s/%s 0700 %s %s -\" to a file in /etc/tmpfiles.d and run systemd-tmpfiles --create, or pass --state-dir)",
		rootStateDir, name, owner, owner)
}

// writer is the run's log: it connects at the first line, and gives up
// writing at the bound.
func (r *onceRun) writer(b sink.Bound, quietStderr bool) *sink.Writer {
	return &sink.Writer{Dest: destination(r.cfg, b, r.stderr, quietStderr)}
}

// destination is where lines go for --log and --log-socket. quietStderr
// is for a caller that has already said the same on stderr: the log then
// never falls back to it.
func destination(cfg config, b sink.Bound, stderr io.Writer, quietStderr bool) sink.Destination {
	socket := func(def string) string {
		if cfg.logSock != "" {
			return cfg.logSock
		}
		return def
	}
	switch cfg.logTgt {
	case "stderr":
		if quietStderr {
			return sink.Discard{}
		}
		return sink.Stderr{W: stderr}
	case "none":
		return sink.Discard{}
	case "journal":
		return sink.Fallback{Dest: &sink.Journal{Path: socket(sink.JournalSocket), Bound: b}, Stderr: stderr}
	case "syslog":
		return sink.Fallback{Dest: &sink.Syslog{Path: socket(sink.SyslogSocket), Bound: b}, Stderr: stderr}
	}
	return &sink.Auto{
		Terminal: func() bool {
			f, ok := stderr.(*os.File)
			return ok && isTerminal(int(f.Fd()))
		},
		Stderr:      stderr,
		JournalPath: sink.JournalSocket,
		SyslogPath:  sink.SyslogSocket,
		Bound:       b,
		NoStderr:    quietStderr,
	}
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// stateName is the state file of a check: the URL and every option that
// changes Patroni's answer or who asks, not timeouts. The readable part
// helps a person find the file; the hash keeps checks apart. url is
// redacted: no password reaches a file name.
func stateName(cfg config, url string) string {
	key := strings.Join([]string{
		"url=" + url,
		"status-only=" + strconv.FormatBool(cfg.statusOnly),
		"cacert=" + cfg.cacert,
		"cert=" + cfg.cert,
		"servername=" + cfg.servername,
		"insecure=" + strconv.FormatBool(cfg.insecure),
		"user=" + cfg.user,
	}, "\n")
	sum := sha256.Sum256([]byte(key))
	return slug(url) + "-" + hex.EncodeToString(sum[:8]) + ".state"
}

// slug keeps letters, digits, dots and dashes of the URL after its scheme.
func slug(url string) string {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		rest = url
	}
	b := []byte(rest)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	s := strings.Trim(string(b), "_.")
	if len(s) > 48 {
		s = s[:48]
	}
	if s == "" || s[0] == '.' {
		s = "check" + s
	}
	return s
}
