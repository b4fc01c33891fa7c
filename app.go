package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
	"github.com/patroni-vip-check/patroni-vip-check/sink"
)

// app is one run after the flags are parsed: its deadlines, its logger,
// and what it says.
type app struct {
	cfg    config
	stderr io.Writer
	log    zerolog.Logger
	closer io.Closer

	// One deadline for the whole run, split so that the request cannot
	// eat the time that recording its result needs.
	deadline      time.Time // the process is done by now (plus grace)
	httpDeadline  time.Time // the request, retries included
	stateDeadline time.Time // waiting for the state lock

	// claimed is taken by the first of report and the watchdog: only one
	// of them logs. reported or overrun is closed when that one is done.
	claimed  atomic.Bool
	reported chan struct{}
	overrun  chan struct{}
}

// newApp prepares a run. quietStderr is for a caller that has already
// told stderr what will be logged: the log then never falls back to it.
func newApp(cfg config, start time.Time, stderr io.Writer, quietStderr bool) *app {
	if cfg.timeout <= 0 {
		cfg.timeout = 800 * time.Millisecond // bad flags: report them in the default time
	}
	if cfg.stateDir == "" {
		cfg.stateDir = defaultStateDir()
	}
	if cfg.logTarget == "" {
		cfg.logTarget = "auto"
	}

	// State and logging take well under a millisecond on tmpfs; keep a
	// tenth of the deadline (5ms to 50ms) for them and for exiting.
	reserve := min(max(cfg.timeout/10, 5*time.Millisecond), 50*time.Millisecond)
	a := &app{
		cfg:           cfg,
		stderr:        stderr,
		deadline:      start.Add(cfg.timeout),
		httpDeadline:  start.Add(cfg.timeout - reserve),
		stateDeadline: start.Add(cfg.timeout - reserve/2),
		reported:      make(chan struct{}),
		overrun:       make(chan struct{}),
	}
	w, closer := a.writer(quietStderr, a.deadline)
	a.log, a.closer = zerolog.New(w), closer
	return a
}

// writer opens no socket: the sinks connect at the first line, and give up
// writing at deadline.
func (a *app) writer(quietStderr bool, deadline time.Time) (zerolog.LevelWriter, io.Closer) {
	socket := func(def string) string {
		if a.cfg.logSocket != "" {
			return a.cfg.logSocket
		}
		return def
	}
	switch a.cfg.logTarget {
	case "stderr":
		if quietStderr {
			return zerolog.MultiLevelWriter(), nil
		}
		return sink.Stderr{W: a.stderr}, nil
	case "none":
		return zerolog.MultiLevelWriter(), nil // writes nowhere
	case "journal":
		j := &sink.Journal{Path: socket(sink.JournalSocket), Deadline: deadline}
		return sink.Fallback{W: j, Stderr: a.stderr}, j
	case "syslog":
		s := &sink.Syslog{Path: socket(sink.SyslogSocket), Deadline: deadline}
		return sink.Fallback{W: s, Stderr: a.stderr}, s
	}
	auto := &sink.Auto{
		Terminal: func() bool {
			f, ok := a.stderr.(*os.File)
			return ok && isTerminal(int(f.Fd()))
		},
		Stderr:      a.stderr,
		JournalPath: sink.JournalSocket,
		SyslogPath:  sink.SyslogSocket,
		Deadline:    deadline,
		NoStderr:    quietStderr,
	}
	return auto, auto
}

// report records the result in the state file and logs what the policy
// says is worth a line. The exit status never depends on any of it.
func (a *app) report(c *check.Checker, res check.Result) {
	if !a.claimed.CompareAndSwap(false, true) {
		// The watchdog has it: let it write its line before returning,
		// since returning exits the process.
		select {
		case <-a.overrun:
		case <-time.After(100 * time.Millisecond):
		}
		return
	}
	defer close(a.reported)
	ev := event{res: res, insecure: a.cfg.insecure}
	if c != nil {
		ev.url, ev.endpoint = c.URL(), c.Endpoint()
	} else {
		ev.url, ev.endpoint = a.cfg.url, check.EndpointFor("")
	}
	a.record(stateName(a.cfg, ev.url), ev)
}

// reportBadArgs logs a command line that does not parse, once per distinct
// command line (and a reminder per --remind), like any other bad state.
func (a *app) reportBadArgs(args []string, err error) {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	name := "args-" + hex.EncodeToString(sum[:8]) + ".state"
	a.record(name, event{
		res:      check.Result{Class: check.Config, Err: fmt.Errorf("invalid command line: %w", err)},
		url:      a.cfg.url,
		endpoint: check.EndpointFor(""),
		badArgs:  strings.Join(args, " "),
	})
}

func (a *app) record(name string, ev event) {
	defer a.close()
	class := string(ev.res.Class)
	bad := ev.res.Class != check.Eligible
	now := time.Now()
	policy := ratelimit.Policy{Remind: a.cfg.remind}
	// Without usable state every result is logged, as a first one.
	unrecorded := func(problem error) {
		_, d := policy.Next(nil, class, bad, now)
		a.emit(ev, d, problem)
	}
	if a.cfg.noState {
		unrecorded(nil)
		return
	}
	dir, err := ratelimit.OpenDir(a.cfg.stateDir)
	if err != nil {
		unrecorded(fmt.Errorf("%w; logging every check until it is fixed", err))
		return
	}
	defer dir.Close()
	tx, err := dir.Begin(name, a.stateDeadline)
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
	// Save before logging: a line logged for a state that was not saved
	// would be logged again by the next run.
	saveErr := tx.Save(next)
	problem := errors.Join(tx.Repaired, loadErr, saveErr)
	if a.cfg.verbose {
		fmt.Fprintf(a.stderr, "patroni-vip-check: state: %s (%s)\n", d.Kind, filepath.Join(dir.Path(), name))
	}
	if d.Kind == ratelimit.Quiet && problem == nil {
		return
	}
	a.emit(ev, d, problem)
}

// overran is the watchdog's last word when the run is past its deadline
// and has not reported yet: the process was stalled (stopped, starved of
// CPU) or something blocked. Its line gets the few milliseconds the sinks
// give any late write, and it never touches the
// state: the next run compares with what was last recorded.
func (a *app) overran(start time.Time) {
	if !a.claimed.CompareAndSwap(false, true) {
		// report is under way. If the watchdog itself woke late, the
		// process was stalled, not stuck: report has only just resumed,
		// so let it finish (a first state is synced to disk). Otherwise
		// report may be stuck in what the watchdog is here to end.
		wait := minWrite
		if late := time.Since(a.deadline.Add(grace)); late > 10*time.Millisecond {
			wait = 100 * time.Millisecond
		}
		select {
		case <-a.reported:
		case <-time.After(wait):
		}
		return
	}
	w, closer := a.writer(false, time.Now()) // sinks give a write 5ms at least
	log := zerolog.New(w)
	late := time.Since(start) - a.cfg.timeout
	log.WithLevel(zerolog.WarnLevel).Str("reason", string(check.Timeout)).Str("url", a.cfg.url).
		Str("event", "overrun").Str("elapsed", fmtDur(time.Since(start))).
		Msgf("timeout: %s: the run overran its %v deadline by %s (the process was stalled or blocked); exit 1",
			a.cfg.url, a.cfg.timeout, fmtDur(late))
	if closer != nil {
		closer.Close()
	}
	close(a.overrun)
}

// minWrite is what the watchdog waits for a report under way.
const minWrite = 5 * time.Millisecond

func (a *app) close() {
	if a.closer != nil {
		a.closer.Close()
	}
}

// stateName is the state file of a check: the URL and every option that
// changes Patroni's answer or who asks, not timeouts. The readable part
// helps a person find the file; the hash keeps checks apart.
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
