package main

// The one way from a check result to a log line, shared by the single run
// (once.go) and the watch loop (watch.go): which fields, which level, which
// words. The -v trace is here too.

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
)

// verdict is one result with what a line about it needs.
type verdict struct {
	res      check.Result
	url      string // redacted: check.Redact
	endpoint check.Endpoint
	insecure bool
	args     string // the command line, when it did not parse (redacted)
}

// maxShown bounds a value the peer chose (a role, a state, a version) in a
// message: Patroni's are a few characters.
const maxShown = 64

// logLine writes the line for v: the result, how it relates to the
// previous state (decision d), and what went wrong with the state or the
// track file, if anything. The message is fixed words around values; every
// value the peer or the command line chose is escaped and bounded, here
// and again by the sink.
func logLine(log zerolog.Logger, v verdict, d ratelimit.Decision, problem error, now time.Time) {
	level := levelOf(v.res.Class)
	if problem != nil && level < zerolog.WarnLevel {
		level = zerolog.WarnLevel
	}
	e := log.WithLevel(level).
		Str("reason", string(v.res.Class)).
		Str("url", v.url).
		Str("event", d.Kind.String())
	if v.res.Status != 0 {
		e = e.Int("http_status", v.res.Status)
	}
	if p := v.res.Patroni; v.res.HasBody {
		e = e.Str("role", p.Role).Str("state", p.State)
		if p.Timeline > 0 {
			e = e.Int64("timeline", p.Timeline)
		}
		if p.Version != "" {
			e = e.Str("patroni_version", p.Version)
		}
	}
	if v.res.Elapsed > 0 {
		e = e.Str("elapsed", fmtDur(v.res.Elapsed))
	}
	if v.res.Err != nil {
		e = e.Str("detail", v.res.Err.Error())
	}
	switch d.Kind {
	case ratelimit.Change:
		e = e.Str("previous", d.Prev.Class).Str("previous_for", fmtDur(now.Sub(d.Prev.Since)))
	case ratelimit.Reminder:
		e = e.Str("since", d.Prev.Since.Format(time.RFC3339)).Uint64("suppressed", d.Prev.Suppressed)
	}
	if v.insecure {
		e = e.Bool("insecure", true)
	}
	if v.args != "" {
		e = e.Str("args", v.args)
	}
	if problem != nil {
		e = e.Str("problem", problem.Error())
	}
	e.Msg(message(v, d, problem, now))
}

func levelOf(c check.Class) zerolog.Level {
	switch c {
	case check.Eligible, check.NotEligible:
		return zerolog.InfoLevel
	case check.Config:
		return zerolog.ErrorLevel
	}
	return zerolog.WarnLevel
}

// message is the line a person reads, e.g.
//
//	not primary: 503 from http://127.0.0.1:8008/primary (role=replica, timeline=4); was primary for 3h12m
func message(v verdict, d ratelimit.Decision, problem error, now time.Time) string {
	var b strings.Builder
	head := headline(v.res.Class, v.endpoint)
	if d.Kind == ratelimit.Reminder {
		fmt.Fprintf(&b, "still %s since %s (%s, %d checks not logged): ",
			head, d.Prev.Since.Format(time.RFC3339), fmtDur(now.Sub(d.Prev.Since)), d.Prev.Suppressed)
	} else {
		b.WriteString(head + ": ")
	}
	b.WriteString(detail(v))
	if d.Kind == ratelimit.Change {
		fmt.Fprintf(&b, "; was %s for %s", headline(check.Class(d.Prev.Class), v.endpoint), fmtDur(now.Sub(d.Prev.Since)))
	}
	if v.insecure {
		b.WriteString(" [TLS not verified]")
	}
	if problem != nil {
		fmt.Fprintf(&b, " [%s]", sink.Clean(problem.Error(), 512))
	}
	return b.String()
}

// headline names a state for the endpoint: "primary", "not primary",
// "timeout"...
func headline(c check.Class, ep check.Endpoint) string {
	switch c {
	case check.Eligible:
		return ep.Name
	case check.NotEligible:
		return "not " + ep.Name
	case check.BadResponse:
		return "bad response"
	case check.TLS:
		return "TLS failure"
	case check.Auth:
		return "auth failure"
	case check.Config:
		return "configuration error"
	}
	return string(c) // unreachable, timeout, interrupted
}

// detail says what was seen: "503 from URL (role=replica, timeline=4)",
// or what went wrong.
func detail(v verdict) string {
	r := v.res
	if r.Class == check.Config {
		return sink.Clean(r.Err.Error(), 512)
	}
	var b strings.Builder
	if r.Status != 0 {
		fmt.Fprintf(&b, "%d from ", r.Status)
	}
	b.WriteString(sink.Clean(v.url, 512))
	if r.HasBody {
		p := r.Patroni
		var fields []string
		if p.Role != "" {
			fields = append(fields, "role="+sink.Clean(p.Role, maxShown))
		}
		if p.Timeline > 0 {
			fields = append(fields, "timeline="+strconv.FormatInt(p.Timeline, 10))
		}
		if p.State != "running" {
			fields = append(fields, "state="+sink.Clean(p.State, maxShown))
		}
		if p.Pause {
			fields = append(fields, "paused")
		}
		if p.Failsafe {
			fields = append(fields, "failsafe")
		}
		if len(fields) > 0 {
			b.WriteString(" (" + strings.Join(fields, ", ") + ")")
		}
	}
	// A 503 says it all; other failures say what went wrong.
	if r.Err != nil && !(r.Class == check.NotEligible && r.Status == 503) {
		b.WriteString(": " + sink.Clean(r.Err.Error(), 512))
	}
	return b.String()
}

// fmtDur writes durations for people: 3h12m, 4m5s, 850ms, 1.2ms.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d >= time.Hour:
		d = d.Round(time.Minute)
		return strings.TrimSuffix(d.String(), "0s") // 3h12m0s
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// trace is -v: what a person debugging a node by hand wants to see, on
// stderr, every piece of peer text escaped.
type trace struct{ w io.Writer }

func (t trace) printf(format string, args ...any) {
	fmt.Fprintf(t.w, "patroni-vip-check: "+format+"\n", args...)
}

func (t trace) start(url string, requestFor, connect time.Duration, retries int) {
	t.printf("GET %s (deadline %v for the request, connect timeout %v, retries %d)",
		sink.Clean(url, 512), fmtDur(requestFor), connect, retries)
}

func (t trace) result(ep check.Endpoint, r check.Result) {
	clean := func(s string) string { return sink.Clean(s, 512) }
	for i, at := range r.Attempts {
		var steps []string
		if at.Connected > 0 {
			steps = append(steps, fmt.Sprintf("connected to %s at %s", at.Addr, fmtDur(at.Connected)))
		}
		if at.Secured > 0 {
			steps = append(steps, "TLS done at "+fmtDur(at.Secured))
		}
		if at.FirstByte > 0 {
			steps = append(steps, "first byte at "+fmtDur(at.FirstByte))
		}
		if at.Status != 0 {
			steps = append(steps, "status "+strconv.Itoa(at.Status))
		}
		if at.Err != nil {
			steps = append(steps, "error: "+clean(at.Err.Error()))
		}
		t.printf("attempt %d, started at %s: %s", i+1, fmtDur(at.Start), strings.Join(steps, ", "))
	}
	if r.HasBody {
		p := r.Patroni
		t.printf("patroni: state=%s role=%s timeline=%d pause=%t failsafe=%t cluster_unlocked=%t version=%s scope=%s",
			sink.Clean(p.State, maxShown), sink.Clean(p.Role, maxShown), p.Timeline, p.Pause, p.Failsafe, p.Unlocked,
			sink.Clean(p.Version, maxShown), sink.Clean(p.Scope, maxShown))
	}
	exit := 1
	if r.Eligible() {
		exit = 0
	}
	why := ""
	if r.Err != nil {
		why = ": " + clean(r.Err.Error())
	}
	t.printf("verdict: %s (reason %s) after %s%s; exit %d", headline(r.Class, ep), r.Class, fmtDur(r.Elapsed), why, exit)
}
