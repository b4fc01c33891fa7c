package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
)

// event is one result with what a log line about it needs.
type event struct {
	res      check.Result
	url      string
	endpoint check.Endpoint
	insecure bool
	badArgs  string // the command line, when it did not parse
}

// emit writes one line: the result, how it relates to the previous state
// (decision d), and, if the state could not be used, why.
func (a *app) emit(ev event, d ratelimit.Decision, problem error) {
	level := levelOf(ev.res.Class)
	if problem != nil && level < zerolog.WarnLevel {
		level = zerolog.WarnLevel
	}
	e := a.log.WithLevel(level).
		Str("reason", string(ev.res.Class)).
		Str("url", ev.url).
		Str("event", d.Kind.String())
	if ev.res.Status != 0 {
		e = e.Int("http_status", ev.res.Status)
	}
	if p := ev.res.Patroni; ev.res.HasBody {
		e = e.Str("role", p.Role).Str("state", p.State)
		if p.Timeline > 0 {
			e = e.Int64("timeline", p.Timeline)
		}
	}
	if ev.res.Elapsed > 0 {
		e = e.Str("elapsed", fmtDur(ev.res.Elapsed))
	}
	if ev.res.Err != nil {
		e = e.Str("detail", ev.res.Err.Error())
	}
	if d.Kind == ratelimit.Change {
		e = e.Str("previous", d.Prev.Class).Str("previous_for", fmtDur(time.Since(d.Prev.Since)))
	}
	if d.Kind == ratelimit.Reminder {
		e = e.Str("since", d.Prev.Since.Format(time.RFC3339)).Uint64("suppressed", d.Prev.Suppressed)
	}
	if ev.insecure {
		e = e.Bool("insecure", true)
	}
	if ev.badArgs != "" {
		e = e.Str("args", ev.badArgs)
	}
	if problem != nil {
		e = e.Str("state_problem", problem.Error())
	}
	e.Msg(message(ev, d, problem, time.Now()))
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
func message(ev event, d ratelimit.Decision, problem error, now time.Time) string {
	var b strings.Builder
	head := headline(ev.res.Class, ev.endpoint)
	if d.Kind == ratelimit.Reminder {
		fmt.Fprintf(&b, "still %s since %s (%s, %d checks not logged): ",
			head, d.Prev.Since.Format(time.RFC3339), fmtDur(now.Sub(d.Prev.Since)), d.Prev.Suppressed)
	} else {
		b.WriteString(head + ": ")
	}
	b.WriteString(detail(ev))
	if d.Kind == ratelimit.Change {
		fmt.Fprintf(&b, "; was %s for %s", headline(check.Class(d.Prev.Class), ev.endpoint), fmtDur(now.Sub(d.Prev.Since)))
	}
	if ev.insecure {
		b.WriteString(" [TLS not verified]")
	}
	if problem != nil {
		fmt.Fprintf(&b, " [state: %v]", problem)
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
func detail(ev event) string {
	r := ev.res
	if r.Class == check.Config {
		return r.Err.Error()
	}
	var b strings.Builder
	if r.Status != 0 {
		fmt.Fprintf(&b, "%d from ", r.Status)
	}
	b.WriteString(ev.url)
	if r.HasBody {
		p := r.Patroni
		var fields []string
		if p.Role != "" {
			fields = append(fields, "role="+p.Role)
		}
		if p.Timeline > 0 {
			fields = append(fields, "timeline="+strconv.FormatInt(p.Timeline, 10))
		}
		if p.State != "running" {
			fields = append(fields, "state="+p.State)
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
		b.WriteString(": " + r.Err.Error())
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
		s := d.String() // 3h12m0s
		return strings.TrimSuffix(s, "0s")
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// traceStart and traceResult are --verbose: what a person debugging a
// node by hand wants to see, on stderr.
func (a *app) traceStart(c *check.Checker) {
	fmt.Fprintf(a.stderr, "patroni-vip-check: GET %s (deadline %v for the request, connect timeout %v, retries %d)\n",
		c.URL(), fmtDur(a.httpDeadline.Sub(time.Now())), a.cfg.connectTimeout, a.cfg.retries)
}

func (a *app) traceResult(c *check.Checker, r check.Result) {
	p := func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "patroni-vip-check: "+format+"\n", args...)
	}
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
			steps = append(steps, "error: "+at.Err.Error())
		}
		p("attempt %d, started at %s: %s", i+1, fmtDur(at.Start), strings.Join(steps, ", "))
	}
	if r.HasBody {
		pt := r.Patroni
		p("patroni: state=%s role=%s timeline=%d pause=%t failsafe=%t cluster_unlocked=%t version=%s scope=%s",
			pt.State, pt.Role, pt.Timeline, pt.Pause, pt.Failsafe, pt.Unlocked, pt.Version, pt.Scope)
	}
	ep := check.EndpointFor("")
	if c != nil {
		ep = c.Endpoint()
	}
	exit := 1
	if r.Eligible() {
		exit = 0
	}
	why := ""
	if r.Err != nil {
		why = ": " + r.Err.Error()
	}
	p("verdict: %s (reason %s) after %s%s; exit %d", headline(r.Class, ep), r.Class, fmtDur(r.Elapsed), why, exit)
}
