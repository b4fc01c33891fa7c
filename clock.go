package main

import "time"

// clock is the watch loop's time. The program runs on the real one; tests
// step a fake one, so that what the loop does at each moment (a poll that
// overruns, a late answer, a watchdog ping) is proven without sleeping.
type clock interface {
	Now() time.Time
	// NewTimer is a stopped timer.
	NewTimer() timer
}

// timer fires once on C after Reset(d), unless stopped first.
type timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer() timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }

// Reset and Stop drain nothing: since Go 1.23 a stopped or reset timer
// delivers no stale value.
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }
