package main

// patroni-vip-check watch: stays running, asks Patroni every --interval,
// and keeps keepalived's track file at 1 (eligible) or 0. keepalived reads
// it with "weight 0 reverse": 0, no file or a damaged file is FAULT, so
// the watch fails closed. One process keeps a given track file (track.go);
// each poll follows the same rules as a single run (once.go) and logs
// through the same words (line.go); the log is written by a goroutine of
// its own (watchlog.go), so that a stalled log socket never delays a poll
// or the track file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
)

const (
	// pollGrace is how long past its --timeout a poll may take. Past it
	// the loop calls the poll stuck: it writes 0 itself and stops answering
	// systemd's watchdog, which restarts the process. A poll that ends past
	// it could not tell, whatever its answer says: an answer read before a
	// demotion must not put a 1 after it.
	pollGrace = 50 * time.Millisecond
	// textfileEvery is how often the textfile is rewritten when nothing
	// but the latency changed: node_exporter scrapes far less often.
	textfileEvery = time.Second
)

func runWatch(args []string, stop chan os.Signal, stdout, stderr io.Writer) int {
	cfg, err := cmdline.Parse(cmdline.Watch, args)
	switch {
	case err == nil && cfg.Help:
		fmt.Fprint(stdout, cmdline.Usage(cmdline.Watch))
		return 0
	case err == nil && cfg.Version:
		fmt.Fprintf(stdout, "patroni-vip-check %s\n", version)
		return 0
	case err != nil && cmdline.Salvage(cmdline.Watch, args).Release:
		// The unit's ExecStopPost runs with the unit's arguments: a typo
		// in them must not leave a 1 behind.
		return release(cmdline.Salvage(cmdline.Watch, args), stderr)
	case err != nil:
		// Nothing is touched: this process may not be the one that keeps
		// the track file, and the unit's ExecStopPost fails closed for the
		// one that is.
		fmt.Fprintf(stderr, "patroni-vip-check: error: %s (see patroni-vip-check watch --help)\n", cleanErr(err))
		return 1
	case cfg.Release:
		return release(cfg, stderr)
	}
	var track *trackFile
	if !cfg.Print {
		// Taken now, so that a second watcher ends before it does anything;
		// a directory that is not there yet is waited for (watcher.keep).
		track, err = takeTrackFile(cfg.TrackFile)
		var kept *keptError
		if errors.As(err, &kept) {
			fmt.Fprintf(stderr, "patroni-vip-check: error: %s%s\n", cleanErr(err), keptHint(err))
			return 1
		}
	}
	// A resident process stops, writing 0 first, on every signal that asks
	// it to: systemd's SIGTERM, a person's SIGINT or SIGHUP, and the SIGABRT
	// of systemd's watchdog on a systemd without WatchdogSignal.
	signal.Notify(stop, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGABRT)
	dest := destination(cfg, sink.Bound{Timeout: logTimeout}, stderr, false)
	if cfg.Print {
		dest = printDest{stdout}
	}
	w := newWatcher(cfg, track, realClock{}, dest, stderr)
	if d, err := daemon.SdWatchdogEnabled(true); err == nil && d > 0 && !cfg.Print {
		w.watchdog = d / 2
	}
	defer w.close()
	return w.loop(stop)
}

// printDest is the log of watch --print: what the service would log, on
// stdout, each line with the time, for a person watching by hand.
type printDest struct{ w io.Writer }

func (p printDest) Send(l sink.Line) error {
	_, err := fmt.Fprintf(p.w, "%s %s\n", time.Now().Format("15:04:05.000"), l.Message)
	return err
}

func (printDest) Close() error { return nil }

// cleanErr is an error as one line of stderr: escaped, bounded, and
// without the password of any URL in it.
func cleanErr(err error) string {
	return sink.Clean(check.RedactText(err.Error()), sink.MaxMessage)
}

// keptHint tells a person who started a second watcher how to watch by
// hand without taking the VIP away from this node.
func keptHint(err error) string {
	var kept *keptError
	if !errors.As(err, &kept) {
		return ""
	}
	return "; to watch by hand without touching keepalived's file, run patroni-vip-check watch --print (or once: patroni-vip-check -v --no-state)"
}

// release is `watch --release`, the unit's ExecStopPost: the watcher has
// ended, so no 1 it wrote may stay behind, unless another watcher keeps
// the file.
func release(cfg cmdline.Config, stderr io.Writer) int {
	err := releaseTrackFile(cfg.TrackFile)
	var kept *keptError
	switch {
	case errors.As(err, &kept):
		fmt.Fprintf(stderr, "patroni-vip-check: %s: left to it\n", cleanErr(err))
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "patroni-vip-check: error: %s\n", cleanErr(err))
		return 1
	}
	return 0
}

// watcher is the state of the watch loop. Only the loop's goroutine
// touches it; polls and the log run in goroutines of their own and talk to
// it over channels.
type watcher struct {
	cfg    cmdline.Config
	clock  clock
	stderr io.Writer
	track  *trackFile // nil with --print, or until it can be taken
	text   *textfile
	pg     *pgWatch    // --pgdata
	last   check.Class // the last verdict's

	// ask is one check: the checker's, or a test's.
	ask    func(ctx context.Context) check.Result
	url    string // redacted
	ep     check.Endpoint
	notify func(state string)

	policy ratelimit.Policy
	judged *ratelimit.State // the verdicts' log, as of the last line queued
	files  map[string]*fileState
	log    logQueue
	acks   chan logAck
	lines  chan logJob

	watchdog time.Duration // half of systemd's WatchdogSec, 0 without
	yield    error         // another watcher took the track file: end
}

// newWatcher is a watcher that logs to dest. Its logger goroutine runs
// until close.
func newWatcher(cfg cmdline.Config, track *trackFile, c clock, dest sink.Destination, stderr io.Writer) *watcher {
	lines := make(chan logJob, 1)
	w := &watcher{
		cfg:    cfg,
		clock:  c,
		stderr: stderr,
		track:  track,
		url:    check.Redact(cfg.URL),
		ep:     check.EndpointFor(""),
		policy: ratelimit.Policy{Remind: cfg.Remind},
		files:  map[string]*fileState{},
		log:    logQueue{lines: lines},
		acks:   make(chan logAck, 1),
		lines:  lines,
		notify: func(state string) { daemon.SdNotify(false, state) },
	}
	if cfg.Textfile != "" {
		w.text = &textfile{path: cfg.Textfile}
	}
	if cfg.PGData != "" {
		w.pg = newPGWatch(cfg.PGData)
	}
	go logger(dest, lines, w.acks, c.Now)
	return w
}

func (w *watcher) close() {
	close(w.lines)
	if w.pg != nil {
		w.pg.close()
	}
}

// poll is one check's outcome, from the poll goroutine.
type poll struct {
	res   check.Result
	start time.Time
}

func (w *watcher) loop(stop <-chan os.Signal) int {
	if w.ask == nil {
		checker, err := check.New(w.cfg.CheckOptions(userAgent()))
		if err != nil {
			// Nothing a poll could fix: say so, fail closed, and let
			// systemd decide about restarts.
			w.keep(false)
			w.queue(newResultJob(verdict{res: check.Result{Class: check.Config, Err: err}, url: w.url, endpoint: w.ep, insecure: w.cfg.Insecure},
				ratelimit.Decision{Kind: ratelimit.First}, w.clock.Now()))
			w.drain(time.Second)
			fmt.Fprintf(w.stderr, "patroni-vip-check: error: %s\n", cleanErr(err))
			return 1
		}
		w.ask, w.url, w.ep = checker.Check, checker.URL(), checker.Endpoint()
	}
	// A stale 1 left by a watcher that was killed must not outlive the
	// start: 0 until the first poll says otherwise.
	if got, _ := w.track.readIfTaken(); got != "0" {
		w.keep(false)
	}

	done := make(chan poll, 1)
	next, stuck, dog := w.clock.NewTimer(), w.clock.NewTimer(), w.clock.NewTimer()
	defer next.Stop()
	defer stuck.Stop()
	defer dog.Stop()
	var polledAt time.Time
	inPoll, ready, stalled := false, false, false
	// --pgdata: a change of PostgreSQL's files starts a poll at once (or as
	// soon as the one going ends), then a burst of polls every burstEvery,
	// until the verdict changes or burstFor has passed.
	var wake <-chan struct{}
	if w.pg != nil {
		wake = w.pg.wake
	}
	var burstUntil time.Time
	var burstFrom check.Class
	woken := false
	start := func() {
		polledAt, inPoll = w.clock.Now(), true
		if w.pg != nil {
			w.fileNote("data directory "+w.pg.dir, w.pg.ensure(), polledAt)
		}
		stuck.Reset(w.cfg.Timeout + pollGrace)
		go w.poll(polledAt, done)
	}
	start()
	for {
		select {
		case p := <-done:
			inPoll = false
			stuck.Stop()
			w.settle(p)
			if !ready {
				ready = true
				w.notify(daemon.SdNotifyReady)
				if w.watchdog > 0 {
					w.notify(daemon.SdNotifyWatchdog)
					dog.Reset(w.watchdog)
				}
			}
			// Polls keep their schedule; one that overran starts the next
			// at once.
			now := w.clock.Now()
			switch {
			case woken:
				woken = false
				next.Reset(0)
			case now.Before(burstUntil) && w.last == burstFrom:
				next.Reset(max(polledAt.Add(burstEvery).Sub(now), 0))
			default:
				burstUntil = time.Time{}
				next.Reset(max(polledAt.Add(w.cfg.Interval).Sub(now), 0))
			}
		case <-wake:
			burstUntil, burstFrom = w.clock.Now().Add(burstFor), w.last
			if inPoll {
				woken = true
			} else {
				next.Stop()
				start()
			}
		case <-next.C():
			start()
		case <-stuck.C():
			// The check honours its deadline; a poll still going past it
			// is stuck in something else. Fail closed, say so, and stop
			// answering the watchdog: systemd restarts the process.
			w.keep(false)
			w.queue(stuckJob(w.url, w.clock.Now().Sub(polledAt), w.cfg.Timeout, w.clock.Now()))
			stalled = true
		case a := <-w.acks:
			w.log.acked(a, w.clock.Now())
		case <-dog.C():
			if !stalled && !(inPoll && w.clock.Now().Sub(polledAt) > w.cfg.Timeout+pollGrace) {
				w.notify(daemon.SdNotifyWatchdog)
			}
			dog.Reset(w.watchdog)
		case <-stop:
			w.notify(daemon.SdNotifyStopping)
			w.keep(false)
			w.drain(500 * time.Millisecond)
			return 0
		}
		if w.yield != nil {
			w.notify(daemon.SdNotifyStopping)
			w.drain(time.Second)
			fmt.Fprintf(w.stderr, "patroni-vip-check: error: %s\n", cleanErr(w.yield))
			return 1
		}
		w.log.pump(w.clock.Now())
	}
}

// poll runs one check within --timeout and hands its result to the loop.
func (w *watcher) poll(start time.Time, done chan<- poll) {
	var res check.Result
	defer func() {
		if p := recover(); p != nil {
			res = check.Result{Class: check.BadResponse, Err: fmt.Errorf("internal error: %v", p)}
		}
		done <- poll{res, start}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	if w.cfg.Verbose {
		trace{w.stderr}.start(w.url, w.cfg.Timeout, w.cfg.ConnectTimeout, w.cfg.Retries)
	}
	res = w.ask(ctx)
	if w.cfg.Verbose {
		trace{w.stderr}.result(w.ep, res)
	}
}

// settle acts on a poll: the track file first, then the log, then the
// textfile. A poll that ended past its deadline and the grace could not
// tell, whatever it says.
func (w *watcher) settle(p poll) {
	now := w.clock.Now()
	if took := now.Sub(p.start); took >= w.cfg.Timeout+pollGrace {
		p.res = check.Result{Class: check.Timeout, Elapsed: took,
			Err: fmt.Errorf("the poll ended %s after it began, past its %s deadline: its answer is too old to use", fmtDur(took), fmtDur(w.cfg.Timeout))}
	}
	v := verdict{res: p.res, url: w.url, endpoint: w.ep, insecure: w.cfg.Insecure}
	w.last = v.res.Class
	eligible := v.res.Eligible()
	w.keep(eligible)
	w.result(v, now)
	if w.text != nil {
		w.fileNote("textfile "+w.text.path, w.text.update(v, eligible, now), now)
	}
}

// keep makes the track file say eligible, and logs a change in whether
// it can: the file, its lock, and its directory. A track file that could
// not be taken at the start (its directory missing) is taken as soon as it
// can be.
func (w *watcher) keep(eligible bool) {
	if w.cfg.Print || w.yield != nil {
		return
	}
	now := w.clock.Now()
	subject := "track file " + w.cfg.TrackFile
	var err error
	retaken := false
	if w.track == nil {
		w.track, err = takeTrackFile(w.cfg.TrackFile)
	} else {
		retaken, err = w.track.stillKept()
	}
	var kept *keptError
	if errors.As(err, &kept) {
		// A second watcher took the file (its lock was removed, or it was
		// there first): it is that watcher's. Stop touching it, and end.
		w.yield = err
		w.fileNote(subject, err, now)
		if w.track != nil {
			w.track.lock.Close()
			w.track = nil
		}
		return
	}
	if retaken {
		w.queue(logJob{kind: fileJob, at: now, what: subject + ": lock taken again",
			write: func(log zerolog.Logger, at time.Time) {
				log.Warn().Str("reason", "watch-file").Str("file", subject).Str("event", "relocked").
					Msg(subject + ": its lock " + lockPath(w.cfg.TrackFile) + " was removed; took it again")
			}})
	}
	if err == nil {
		err = w.track.keep(eligible)
	}
	w.fileNote(subject, err, now)
	if w.track == nil {
		return
	}
	var moved error
	if w.track.dirReplaced() {
		moved = fmt.Errorf("it was removed and made again since this watcher started: keepalived still watches the old one and never sees the track file; restart keepalived")
	}
	w.fileNote("track directory "+w.track.dir, moved, now)
}

// result folds a verdict into the log's state and queues a line when the
// policy says one is due.
func (w *watcher) result(v verdict, now time.Time) {
	class := string(v.res.Class)
	next, d := w.policy.Next(w.judged, class, v.res.Class != check.Eligible, now)
	w.judged = &next
	if d.Kind != ratelimit.Quiet {
		w.queue(newResultJob(v, d, now))
	}
}

// fileNote logs a change in a file's condition (err nil when fine).
func (w *watcher) fileNote(subject string, err error, now time.Time) {
	f := w.files[subject]
	if f == nil {
		f = &fileState{}
		w.files[subject] = f
	}
	if job, ok := f.note(w.policy, subject, err, now); ok {
		w.queue(job)
	}
}

func (w *watcher) queue(job logJob) {
	w.log.add(job)
	w.log.pump(w.clock.Now())
}

// drain waits up to d for the queued lines to be taken.
func (w *watcher) drain(d time.Duration) {
	deadline := time.After(d)
	for len(w.log.jobs) > 0 {
		w.log.retryAt = time.Time{}
		w.log.pump(w.clock.Now())
		select {
		case a := <-w.acks:
			w.log.acked(a, w.clock.Now())
			if !a.taken {
				return
			}
		case <-deadline:
			return
		}
	}
}

// textfile is a node_exporter textfile: the verdict, its reason, the
// number of transitions and the last poll's latency.
type textfile struct {
	path        string
	transitions uint64
	polls       uint64
	last        string // the last verdict's class
	writtenAt   time.Time
	err         error // of the last write
}

// update counts the poll and rewrites the file when something but the
// latency changed, or every textfileEvery; it returns the last write's
// error, which the caller logs when it changes.
func (t *textfile) update(v verdict, eligible bool, now time.Time) error {
	t.polls++
	changed := t.last != string(v.res.Class)
	if changed && t.last != "" && (t.last == string(check.Eligible)) != eligible {
		t.transitions++
	}
	t.last = string(v.res.Class)
	if !changed && now.Sub(t.writtenAt) < textfileEvery {
		return t.err
	}
	t.writtenAt = now
	e := 0
	if eligible {
		e = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP patroni_vip_check_eligible Whether this node may hold the virtual IP (1) or not (0).\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_eligible gauge\npatroni_vip_check_eligible %d\n", e)
	fmt.Fprintf(&b, "# HELP patroni_vip_check_reason The reason class of the last verdict.\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_reason gauge\npatroni_vip_check_reason{reason=%q} 1\n", string(v.res.Class))
	fmt.Fprintf(&b, "# HELP patroni_vip_check_transitions_total Changes between eligible and not since the watcher started.\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_transitions_total counter\npatroni_vip_check_transitions_total %d\n", t.transitions)
	fmt.Fprintf(&b, "# HELP patroni_vip_check_polls_total Polls since the watcher started.\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_polls_total counter\npatroni_vip_check_polls_total %d\n", t.polls)
	fmt.Fprintf(&b, "# HELP patroni_vip_check_poll_duration_seconds How long the last poll took.\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_poll_duration_seconds gauge\npatroni_vip_check_poll_duration_seconds %s\n",
		strconv.FormatFloat(v.res.Elapsed.Seconds(), 'f', 6, 64))
	fmt.Fprintf(&b, "# HELP patroni_vip_check_last_poll_timestamp_seconds When the last poll ended.\n")
	fmt.Fprintf(&b, "# TYPE patroni_vip_check_last_poll_timestamp_seconds gauge\npatroni_vip_check_last_poll_timestamp_seconds %d\n", now.Unix())
	t.err = replaceFile(t.path, []byte(b.String()))
	if t.err != nil {
		t.err = fmt.Errorf("cannot write it: %w%s", t.err, textfileHint(t.err))
	}
	return t.err
}

// textfileHint says how to let the unit write a textfile: its sandbox
// makes every path read-only but the ones it names.
func textfileHint(err error) string {
	if !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		return ""
	}
	return " (under patroni-vip-check.service the file system is read-only but for the paths of ReadWritePaths=: add the textfile's directory with systemctl edit)"
}
