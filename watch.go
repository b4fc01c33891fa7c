package main

// patroni-vip-check watch: stays running, asks Patroni every --interval,
// and keeps keepalived's track_file at 1 (eligible) or 0. keepalived reads
// it with "weight 0 reverse", so that anything but a 1 (a 0, no file, a
// damaged file) means FAULT: the watch fails closed. Each poll follows the
// same rules as a single run (once.go) and logs through the same words
// (line.go); the log is written by a goroutine of its own, so that a
// stalled log socket never delays a poll or the track file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
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

// Timing of the watch, besides --interval and --timeout.
const (
	// pollGrace is how long past its --timeout a poll may take before the
	// loop calls it stuck: it then writes 0 itself and stops answering
	// systemd's watchdog, which restarts the process.
	pollGrace = 50 * time.Millisecond
	// logTimeout bounds one write to a log socket: past it the line is
	// not taken, and said again later.
	logTimeout = time.Second
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
	case err != nil:
		// Fail closed: a watcher that cannot start leaves 0.
		(&trackFile{path: cmdline.Salvage(cmdline.Watch, args).TrackFile}).write(false)
		fmt.Fprintf(stderr, "patroni-vip-check: error: %s (see patroni-vip-check watch --help)\n", sink.Clean(err.Error(), sink.MaxMessage))
		return 1
	}
	// A resident process stops, writing 0 first, on every signal that
	// asks it to: systemd's SIGTERM, a person's SIGINT or SIGHUP, and the
	// SIGABRT of systemd's watchdog on a systemd without WatchdogSignal.
	signal.Notify(stop, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGABRT)
	w := newWatcher(cfg, stderr)
	defer w.close()
	return w.loop(stop)
}

// watcher is the state of the watch loop. Only the loop's goroutine
// touches it; the poll and the log run in goroutines of their own and talk
// to it over channels.
type watcher struct {
	cfg     cmdline.Config
	stderr  io.Writer
	checker *check.Checker
	track   trackFile
	text    *textfile

	// The log: lines go to the logger goroutine one at a time; saved is
	// the state as of the last line a sink took (or of a result that
	// needed none), as the state file is for a single run.
	policy   ratelimit.Policy
	saved    *ratelimit.State
	lines    chan logJob
	acks     chan logAck
	inflight bool
	pending  *verdict // the latest result, while a line is in flight
	trackLog *ratelimit.State

	watchdog time.Duration // half of systemd's WatchdogSec, 0 without
}

// logJob is one line for the logger goroutine; next is the state to save
// once a sink took it.
type logJob struct {
	write func(zerolog.Logger, time.Time)
	next  ratelimit.State
	track bool // a line about the track file, not a result
}

type logAck struct {
	job   logJob
	taken bool
}

func newWatcher(cfg cmdline.Config, stderr io.Writer) *watcher {
	w := &watcher{
		cfg:    cfg,
		stderr: stderr,
		track:  trackFile{path: cfg.TrackFile},
		policy: ratelimit.Policy{Remind: cfg.Remind},
		lines:  make(chan logJob, 1),
		acks:   make(chan logAck, 1),
	}
	if cfg.Textfile != "" {
		w.text = &textfile{path: cfg.Textfile}
	}
	if d, err := daemon.SdWatchdogEnabled(true); err == nil && d > 0 {
		w.watchdog = d / 2
	}
	go w.logger(destination(cfg, sink.Bound{Timeout: logTimeout}, stderr, false))
	return w
}

func (w *watcher) close() { close(w.lines) }

// logger writes lines until the loop closes its channel, and says for
// each whether a sink took it.
func (w *watcher) logger(d sink.Destination) {
	out := &sink.Writer{Dest: d}
	defer out.Close()
	log := zerolog.New(out)
	for job := range w.lines {
		job.write(log, time.Now())
		w.acks <- logAck{job, out.Err() == nil}
	}
}

// poll is one check's outcome, from the poll goroutine.
type poll struct {
	v     verdict
	start time.Time
}

func (w *watcher) loop(stop <-chan os.Signal) int {
	cfg := w.cfg
	checker, err := check.New(cfg.CheckOptions(userAgent()))
	v := verdict{url: check.Redact(cfg.URL), endpoint: check.EndpointFor(""), insecure: cfg.Insecure}
	if err != nil {
		// Nothing a poll could fix: say so, fail closed, and let systemd
		// decide about restarts.
		v.res = check.Result{Class: check.Config, Err: err}
		w.track.write(false)
		w.result(v)
		w.drain(time.Second)
		fmt.Fprintf(w.stderr, "patroni-vip-check: error: %s\n", sink.Clean(err.Error(), sink.MaxMessage))
		return 1
	}
	w.checker = checker
	// A stale 1 left by a watcher that was killed must not outlive the
	// start: 0 until the first poll says otherwise.
	if got, _ := w.track.read(); got != "0" {
		w.track.write(false)
	}

	done := make(chan poll, 1)
	start := func() time.Time {
		t := time.Now()
		go w.poll(t, done)
		return t
	}
	polledAt := start()
	ready := false
	var tick <-chan time.Time
	if w.watchdog > 0 {
		t := time.NewTicker(w.watchdog)
		defer t.Stop()
		tick = t.C
	}
	next := time.NewTimer(0)
	next.Stop()
	stuck := time.NewTimer(cfg.Timeout + pollGrace)
	inPoll := true
	for {
		select {
		case p := <-done:
			inPoll = false
			stuck.Stop()
			w.settle(p)
			if !ready {
				ready = true
				daemon.SdNotify(false, daemon.SdNotifyReady)
			}
			// Polls keep their schedule; one that overran starts the next
			// at once.
			next.Reset(time.Until(polledAt.Add(cfg.Interval)))
		case <-next.C:
			polledAt = start()
			inPoll = true
			stuck.Reset(cfg.Timeout + pollGrace)
		case <-stuck.C:
			// The check honours its deadline; a poll still going past it
			// is stuck in something else. Fail closed, say so, and stop
			// answering the watchdog: systemd restarts the process.
			w.track.write(false)
			w.logTrack(fmt.Errorf("a poll is still going %v after it began, past its %v deadline; wrote 0 and stopped answering systemd's watchdog",
				fmtDur(time.Since(polledAt)), cfg.Timeout))
			tick = nil
		case a := <-w.acks:
			w.acked(a)
		case <-tick:
			if inPoll && time.Since(polledAt) > cfg.Timeout+pollGrace {
				continue
			}
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		case <-stop:
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			w.track.write(false)
			w.drain(500 * time.Millisecond)
			return 0
		}
	}
}

// poll runs one check within --timeout and hands its verdict to the loop.
func (w *watcher) poll(start time.Time, done chan<- poll) {
	v := verdict{url: w.checker.URL(), endpoint: w.checker.Endpoint(), insecure: w.cfg.Insecure}
	defer func() {
		if p := recover(); p != nil {
			v.res = check.Result{Class: check.BadResponse, Err: fmt.Errorf("internal error: %v", p)}
		}
		done <- poll{v, start}
	}()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(w.cfg.Timeout))
	defer cancel()
	if w.cfg.Verbose {
		trace{w.stderr}.start(v.url, w.cfg.Timeout, w.cfg.ConnectTimeout, w.cfg.Retries)
	}
	v.res = w.checker.Check(ctx)
	if w.cfg.Verbose {
		trace{w.stderr}.result(v.endpoint, v.res)
	}
}

// settle acts on a poll: the track file first, then the log, then the
// textfile.
func (w *watcher) settle(p poll) {
	eligible := p.v.res.Eligible()
	err := w.track.keep(eligible)
	w.trackState(err)
	w.result(p.v)
	if w.text != nil {
		w.text.update(p.v, eligible, time.Now())
	}
}

// result folds a verdict into the log's state and queues a line if one is
// due. While a line is in flight the latest verdict waits: it is judged
// against what that line leaves.
func (w *watcher) result(v verdict) {
	if w.inflight {
		w.pending = &v
		return
	}
	now := time.Now()
	class := string(v.res.Class)
	next, d := w.policy.Next(w.saved, class, v.res.Class != check.Eligible, now)
	if d.Kind == ratelimit.Quiet {
		w.saved = &next
		return
	}
	w.send(logJob{next: next, write: func(log zerolog.Logger, at time.Time) {
		logLine(log, v, d, nil, at)
	}})
}

func (w *watcher) send(job logJob) {
	w.inflight = true
	w.lines <- job // never blocks: one job at most is in flight
}

// acked: a line was written or not. A line not taken leaves the state as
// it was, so the next poll says it again.
func (w *watcher) acked(a logAck) {
	w.inflight = false
	if a.taken {
		s := a.job.next
		if a.job.track {
			w.trackLog = &s
		} else {
			w.saved = &s
		}
	}
	if w.pending != nil {
		v := *w.pending
		w.pending = nil
		w.result(v)
	}
}

// trackState logs a change in whether the track file can be written, and
// a reminder while it cannot, through the same policy as results.
func (w *watcher) trackState(err error) {
	if w.inflight {
		return // judged again at the next poll
	}
	class, bad := "track-ok", false
	if err != nil {
		class, bad = "track-failing", true
	}
	next, d := w.policy.Next(w.trackLog, class, bad, time.Now())
	if d.Kind == ratelimit.Quiet || d.Kind == ratelimit.First && !bad {
		w.trackLog = &next
		return
	}
	w.send(logJob{next: next, track: true, write: func(log zerolog.Logger, at time.Time) {
		trackLine(log, w.track.path, err, d, at)
	}})
}

// logTrack logs a track file problem now, whatever the state.
func (w *watcher) logTrack(err error) {
	if w.inflight {
		return
	}
	w.send(logJob{track: true, next: ratelimit.State{Class: "track-failing", Since: time.Now(), Logged: time.Now()},
		write: func(log zerolog.Logger, at time.Time) {
			trackLine(log, w.track.path, err, ratelimit.Decision{Kind: ratelimit.First}, at)
		}})
}

// drain waits up to d for a line in flight.
func (w *watcher) drain(d time.Duration) {
	if !w.inflight {
		return
	}
	select {
	case a := <-w.acks:
		w.acked(a)
	case <-time.After(d):
	}
}

// trackFile is keepalived's track file. keepalived watches its directory
// with inotify and reads the file on a close after writing or a rename into
// place; it reads 1 as healthy (with "weight 0 reverse"), anything else
// as FAULT.
type trackFile struct {
	path    string
	written string // what this process last wrote: "1", "0" or ""
}

// keep makes the file say eligible, writing it only when the verdict
// changed or the file is not what it should be (deleted, or filled with
// something else by someone else).
func (t *trackFile) keep(eligible bool) error {
	want := "0"
	if eligible {
		want = "1"
	}
	if t.written == want {
		if got, err := t.read(); err == nil && got == want {
			return nil
		}
	}
	return t.write(eligible)
}

// read returns the file's value, trimmed.
func (t *trackFile) read() (string, error) {
	f, err := os.Open(t.path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 16)
	n, _ := io.ReadFull(f, buf)
	return strings.TrimSpace(string(buf[:n])), nil
}

// write replaces the file atomically: a temporary file in the same
// directory, renamed over it, so that keepalived never reads half a
// value. No fsync: the file lives in /run, and after a crash nothing of
// it is wanted (keepalived must see FAULT until a watcher writes again).
func (t *trackFile) write(eligible bool) error {
	value := "0\n"
	if eligible {
		value = "1\n"
	}
	dir, name := filepath.Split(t.path)
	tmp := filepath.Join(dir, "."+name+".tmp")
	t.written = ""
	err := os.WriteFile(tmp, []byte(value), 0o644)
	if err == nil {
		err = os.Rename(tmp, t.path)
	}
	if err == nil {
		t.written = value[:1]
		return nil
	}
	os.Remove(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (the directory is made at boot by tmpfiles.d, and must exist before keepalived starts)", err)
	}
	if !eligible {
		// A 1 that cannot be replaced must not stay: no file is FAULT too.
		if rerr := os.Remove(t.path); rerr == nil || errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("%w; removed it instead", err)
		}
	}
	return err
}

// textfile is a node_exporter textfile: the verdict, its reason, the
// number of transitions and the last poll's latency.
type textfile struct {
	path        string
	transitions uint64
	polls       uint64
	last        string // the last verdict's class
	writtenAt   time.Time
}

func (t *textfile) update(v verdict, eligible bool, now time.Time) {
	t.polls++
	changed := t.last != string(v.res.Class)
	if changed && t.last != "" && (t.last == string(check.Eligible)) != eligible {
		t.transitions++
	}
	t.last = string(v.res.Class)
	if !changed && now.Sub(t.writtenAt) < textfileEvery {
		return
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
	tmp := t.path + ".tmp"
	if os.WriteFile(tmp, []byte(b.String()), 0o644) == nil {
		os.Rename(tmp, t.path)
	}
}
