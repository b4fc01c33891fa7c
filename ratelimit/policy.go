// Package ratelimit decides which check results deserve a log line, across
// the short-lived processes keepalived starts every second: each change of
// state at once, an unchanged state never, except a rare reminder while a
// bad state lasts. The state lives in a small file per check (see Dir).
package ratelimit

import "time"

// State is what the last runs of one check found.
type State struct {
	Class      string    // the reason class of the last result
	Since      time.Time // when Class began
	Logged     time.Time // when a line about Class was last written
	Suppressed uint64    // results of Class not logged since Logged
}

// Kind says what, if anything, to log about a result.
type Kind int

const (
	Quiet    Kind = iota // unchanged: log nothing
	First                // no previous state: log the state once
	Change               // the class changed: log it, with the previous state
	Reminder             // unchanged and bad for --remind: remind
)

func (k Kind) String() string {
	switch k {
	case Quiet:
		return "quiet"
	case First:
		return "first"
	case Change:
		return "change"
	case Reminder:
		return "reminder"
	}
	return "unknown"
}

// Decision is the policy's verdict on one result.
type Decision struct {
	Kind Kind
	// Prev is the state before this result: for Change, what ended (and
	// how long it lasted); for Reminder, the state being reminded of, with
	// the count of results not logged since the last line.
	Prev State
}

// Policy holds the one knob: how often to remind of a bad state.
type Policy struct {
	Remind time.Duration // 0: never
}

// Next folds one result into the state. prev is nil when there is no usable
// previous state. bad says whether class is one to be reminded of (anything
// but eligible). Next is pure: the caller supplies the clock.
func (p Policy) Next(prev *State, class string, bad bool, now time.Time) (State, Decision) {
	if prev == nil {
		return State{Class: class, Since: now, Logged: now}, Decision{Kind: First}
	}
	if prev.Class != class {
		return State{Class: class, Since: now, Logged: now}, Decision{Kind: Change, Prev: *prev}
	}
	next := *prev
	if now.Before(next.Logged) {
		// The clock went back: count from now rather than stay silent
		// until it catches up.
		next.Logged = now
	}
	if bad && p.Remind > 0 && now.Sub(next.Logged) >= p.Remind {
		next.Logged = now
		next.Suppressed = 0
		return next, Decision{Kind: Reminder, Prev: *prev}
	}
	next.Suppressed++
	return next, Decision{Kind: Quiet}
}
