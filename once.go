package main

// A single run, as keepalived's vrrp_script runs it: one deadline for
// everything, the state file that keeps replicas quiet, the line logged and
// the exit status, which always agree.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
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
	cfg    cmdline.Config
	plan   plan
	stdout io.Writer // --json
	stderr io.Writer
	exit   exitStatus
	cancel context.CancelFunc // ends the request
	ctx    context.Context
}

func runOnce(args []string, start time.Time, stop <-chan os.Signal, stdout, stderr io.Writer) int {
	cfg, err := cmdline.Parse(cmdline.Once, args)
	switch {
	case err == nil && cfg.Help:
		fmt.Fprint(stdout, cmdline.Usage(cmdline.Once))
		return 0
	case err == nil && cfg.Version:
		fmt.Fprintf(stdout, "patroni-vip-check %s\n", version)
		return 0
	case err != nil:
		cfg = cmdline.Salvage(cmdline.Once, args) // its error is logged where the user asked, in the default time
	}
	r := &onceRun{cfg: cfg, plan: newPlan(start, cfg.Timeout), stdout: stdout, stderr: stderr}
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
	checker, err := check.New(cfg.CheckOptions(userAgent()))
	v := verdict{url: check.Redact(cfg.URL), endpoint: check.EndpointFor(""), insecure: cfg.Insecure}
	if err != nil {
		v.res = check.Result{Class: check.Config, Err: err}
	} else {
		v.url, v.endpoint = checker.URL(), checker.Endpoint()
		if cfg.Verbose {
			trace{r.stderr}.start(v.url, time.Until(r.plan.request), cfg.ConnectTimeout, cfg.Retries)
		}
		v.res = checker.Check(r.ctx)
	}
	code := 1
	if v.res.Eligible() {
		code = 0
	}
	r.exit.settle(code)
	if cfg.Verbose {
		trace{r.stderr}.result(v.endpoint, v.res)
	}
	if cfg.JSON {
		json.NewEncoder(r.stdout).Encode(check.NewReport(v.res, v.url))
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
	msg := cleanErr(err)
	fmt.Fprintf(r.stderr, "patroni-vip-check: error: %s (see --help)\n", msg)
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = check.Redact(a)
	}
	cmdline := strings.Join(shown, " ")
	sum := sha256.Sum256([]byte(strings.Join(shown, "\x00")))
	v := verdict{
		res:      check.Result{Class: check.Config, Err: fmt.Errorf("invalid command line: %s", msg)},
		url:      check.Redact(r.cfg.URL),
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
		r.cfg.Timeout, fmtDur(time.Since(r.plan.deadline))), wait)
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
			url:      check.Redact(r.cfg.URL),
			endpoint: check.EndpointFor(""),
			insecure: r.cfg.Insecure,
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
	policy := ratelimit.Policy{Remind: cfg.Remind}
	emit := func(d ratelimit.Decision, problem error) bool {
		logLine(log, v, d, problem, now)
		return w.Err() == nil
	}
	// Without usable state every result is logged, as a first one.
	unrecorded := func(problem error) {
		_, d := policy.Next(nil, class, bad, now)
		emit(d, problem)
	}
	if cfg.NoState {
		unrecorded(nil)
		return
	}
	path := stateDir(cfg)
	perm := uint32(0o700)
	if path == cmdline.RootStateDir {
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
	if cfg.Verbose {
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
	if !r.cfg.IntervalSet || s.Suppressed != cadenceRuns {
		return nil
	}
	every := now.Sub(s.Logged) / cadenceRuns
	if every < 3*r.cfg.Interval {
		return nil
	}
	return fmt.Errorf("keepalived runs this check every %s, not every %s (--interval): keepalived before 2.3.2 ignores a fractional interval and runs it every second",
		fmtDur(every), fmtDur(r.cfg.Interval))
}

// stateDirHint says how to fix a missing state directory of a user other
// than root, which only root can create.
func stateDirHint(cfg cmdline.Config, err error) string {
	if cfg.StateDir != "" || os.Geteuid() == 0 || !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ENOENT) {
		return ""
	}
	name, owner := stateUser()
	return fmt.Sprintf(" (only root can create it: add \"d %s/%s 0700 %s %s -\" to a file in /etc/tmpfiles.d and run systemd-tmpfiles --create, or pass --state-dir)",
		cmdline.RootStateDir, name, owner, owner)
}

// writer is the run's log: it connects at the first line, and gives up
// writing at the bound.
func (r *onceRun) writer(b sink.Bound, quietStderr bool) *sink.Writer {
	return &sink.Writer{Dest: destination(r.cfg, b, r.stderr, quietStderr)}
}

// destination is where lines go for --log and --log-socket. quietStderr
// is for a caller that has already said the same on stderr: the log then
// never falls back to it.
func destination(cfg cmdline.Config, b sink.Bound, stderr io.Writer, quietStderr bool) sink.Destination {
	socket := func(def string) string {
		if cfg.LogSocket != "" {
			return cfg.LogSocket
		}
		return def
	}
	switch cfg.Log {
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
func stateName(cfg cmdline.Config, url string) string {
	key := strings.Join([]string{
		"url=" + url,
		"status-only=" + strconv.FormatBool(cfg.StatusOnly),
		"cacert=" + cfg.CACert,
		"cert=" + cfg.Cert,
		"servername=" + cfg.ServerName,
		"insecure=" + strconv.FormatBool(cfg.Insecure),
		"user=" + cfg.User,
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

// stateDir is the run's state directory (cmdline.Config.StateDirOf); the
// user's name is looked up only when it is needed.
func stateDir(cfg cmdline.Config) string {
	uid, who := os.Geteuid(), ""
	if uid != 0 && cfg.StateDir == "" {
		who, _ = stateUser()
	}
	return cfg.StateDirOf(uid, who)
}

// stateUser names the state directory of a user other than root: the user
// name, or uid-N if there is none usable; owner is what a tmpfiles.d line
// calls the user.
func stateUser() (name, owner string) {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil && u.Username != "" &&
		!strings.ContainsAny(u.Username, "/\x00") && u.Username[0] != '.' {
		return u.Username, u.Username
	}
	return "uid-" + uid, uid
}
