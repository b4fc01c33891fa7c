package main

// What patroni-vip-check watch logs, and how every change reaches the log
// at least once however slow the log is. The loop never waits for the log:
// it queues a line for each change (of verdict, or of a problem with its
// files), and a goroutine of its own writes them one at a time, each
// bounded by logTimeout. A line the log did not take stays first in the
// queue and is tried again. When changes come faster than the log takes
// lines (a flapping verdict while the journal stalls), runs of queued
// lines of one kind are folded into one line that counts the changes it
// stands for, with the first and the last: the queue stays small, and no
// change goes unsaid.

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
)

const (
	// logTimeout bounds one write to a log socket: past it the line is not
	// taken, and tried again after logRetry.
	logTimeout = time.Second
	logRetry   = time.Second
	// maxQueued is how many lines may wait; past it, runs are folded.
	maxQueued = 16
)

// jobKind sorts the queue's lines for folding: only lines of one kind
// fold together.
type jobKind int

const (
	resultJob jobKind = iota // a verdict: a change, a first one, a reminder
	fileJob                  // a problem with a file, or its end
)

// logJob is one line for the logger goroutine.
type logJob struct {
	kind  jobKind
	at    time.Time
	what  string // what the line says, in a few words, for a folded line
	write func(log zerolog.Logger, now time.Time)

	// A folded line stands for count lines, the first of which said
	// first at firstAt.
	count   int
	first   string
	firstAt time.Time
}

type logAck struct{ taken bool }

// logQueue is the loop's side of the log. Only the loop touches it.
type logQueue struct {
	jobs     []logJob
	inflight bool
	retryAt  time.Time // after a line was not taken
	lines    chan<- logJob
}

// add queues job; folds when the queue is too long.
func (q *logQueue) add(job logJob) {
	job.count, job.first, job.firstAt = 1, job.what, job.at
	q.jobs = append(q.jobs, job)
	if len(q.jobs) > maxQueued {
		q.fold()
	}
}

// fold merges the first run of two or more lines of one kind that is not
// in flight into one line, which counts them.
func (q *logQueue) fold() {
	start := 0
	if q.inflight {
		start = 1
	}
	for i := start; i+1 < len(q.jobs); i++ {
		j := i
		for j+1 < len(q.jobs) && q.jobs[j+1].kind == q.jobs[i].kind {
			j++
		}
		if j == i {
			continue
		}
		q.jobs[i] = folded(q.jobs[i : j+1])
		q.jobs = append(q.jobs[:i+1], q.jobs[j+1:]...)
		return
	}
}

// folded is one line for a run of queued lines: how many changes, the
// first and the last, at what times.
func folded(run []logJob) logJob {
	first, last := run[0], run[len(run)-1]
	n := 0
	for _, j := range run {
		n += j.count
	}
	noun := "changes of verdict"
	if first.kind == fileJob {
		noun = "changes of the watch's files"
	}
	return logJob{
		kind: first.kind, at: last.at, what: last.what,
		count: n, first: first.first, firstAt: first.firstAt,
		write: func(log zerolog.Logger, now time.Time) {
			log.Warn().Str("reason", "log-slow").Str("event", "folded").Int("changes", n).
				Str("first", first.first).Str("first_at", first.firstAt.Format(time.RFC3339Nano)).
				Str("last", last.what).Str("last_at", last.at.Format(time.RFC3339Nano)).
				Msg(fmt.Sprintf("%d %s while the log took no lines, from %s (%s) to %s (%s)",
					n, noun, first.firstAt.Format(time.RFC3339Nano), first.first, last.at.Format(time.RFC3339Nano), last.what))
		},
	}
}

// pump hands the first line to the logger when it is free.
func (q *logQueue) pump(now time.Time) {
	if q.inflight || len(q.jobs) == 0 || now.Before(q.retryAt) {
		return
	}
	q.inflight = true
	q.lines <- q.jobs[0] // never blocks: one line at most is in flight
}

// acked: the line in flight was taken, or not (it stays first).
func (q *logQueue) acked(a logAck, now time.Time) {
	q.inflight = false
	if a.taken {
		q.jobs = q.jobs[1:]
		return
	}
	q.retryAt = now.Add(logRetry)
}

// logger writes lines until lines is closed, and says for each whether a
// sink took it.
func logger(d sink.Destination, lines <-chan logJob, acks chan<- logAck, now func() time.Time) {
	out := &sink.Writer{Dest: d}
	defer out.Close()
	log := zerolog.New(out)
	for job := range lines {
		job.write(log, now())
		acks <- logAck{taken: out.Err() == nil}
	}
}

// resultJob is the line for a verdict, decided by the policy (d).
func newResultJob(v verdict, d ratelimit.Decision, at time.Time) logJob {
	return logJob{kind: resultJob, at: at, what: headline(v.res.Class, v.endpoint),
		write: func(log zerolog.Logger, now time.Time) { logLine(log, v, d, nil, now) }}
}

// fileState is what was last logged about one of the watch's files: a
// problem (its text) or none, since when, and when last said.
type fileState struct {
	state ratelimit.State
	set   bool
}

// note decides whether a file's condition (err, nil when fine) deserves a
// line: at each change of the problem's text, at its end, and once per
// remind while it lasts.
func (f *fileState) note(p ratelimit.Policy, subject string, err error, now time.Time) (logJob, bool) {
	class, bad := "ok", err != nil
	if bad {
		class = sink.Clean(err.Error(), 200)
	}
	var prev *ratelimit.State
	if f.set {
		prev = &f.state
	}
	next, d := p.Next(prev, class, bad, now)
	f.state, f.set = next, true
	if d.Kind == ratelimit.Quiet || d.Kind == ratelimit.First && !bad {
		return logJob{}, false
	}
	what := subject + ": ok"
	if bad {
		what = subject + ": " + class
	}
	return logJob{kind: fileJob, at: now, what: what,
		write: func(log zerolog.Logger, at time.Time) { fileLine(log, subject, err, d, at) }}, true
}

// fileLine is the line about one of the watch's files: what is wrong with
// it (err), that it is fine again (err nil), or a reminder while it is not.
func fileLine(log zerolog.Logger, subject string, err error, d ratelimit.Decision, now time.Time) {
	level, msg := zerolog.InfoLevel, subject+": fine again"
	if err != nil {
		level = zerolog.ErrorLevel
		msg = subject + ": " + sink.Clean(err.Error(), 512)
		if d.Kind == ratelimit.Reminder {
			msg = fmt.Sprintf("still %s (since %s, %d polls not logged)", msg, d.Prev.Since.Format(time.RFC3339), d.Prev.Suppressed)
		}
	}
	e := log.WithLevel(level).Str("reason", "watch-file").Str("file", subject).Str("event", d.Kind.String())
	if err != nil {
		e = e.Str("detail", err.Error())
	}
	if d.Kind == ratelimit.Change {
		e = e.Str("previous_for", fmtDur(now.Sub(d.Prev.Since)))
	}
	e.Msg(msg)
}

// stuckJob is the line of a poll that overran: always queued, never folded
// away unsaid.
func stuckJob(url string, took, timeout time.Duration, at time.Time) logJob {
	msg := fmt.Sprintf("a poll of %s is still going %s after it began, past its %s deadline; wrote 0 and stopped answering systemd's watchdog",
		sink.Clean(url, 512), fmtDur(took), fmtDur(timeout))
	return logJob{kind: fileJob, at: at, what: "a poll stuck",
		write: func(log zerolog.Logger, now time.Time) {
			log.Error().Str("reason", string(check.Timeout)).Str("url", url).Str("event", "stuck").Msg(msg)
		}}
}
