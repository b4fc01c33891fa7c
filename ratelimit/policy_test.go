package ratelimit

import (
	"testing"
	"time"
)

// clock is an injected clock for the policy.
type clock struct{ now time.Time }

func (c *clock) tick(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

// replay runs a sequence of results through the policy, one per step, and
// returns the decisions.
func replay(p Policy, c *clock, step time.Duration, classes ...string) []Decision {
	var st *State
	var out []Decision
	for _, class := range classes {
		next, d := p.Next(st, class, class != "eligible", c.tick(step))
		st = &next
		out = append(out, d)
	}
	return out
}

func kinds(ds []Decision) []Kind {
	var ks []Kind
	for _, d := range ds {
		ks = append(ks, d.Kind)
	}
	return ks
}

func repeat(class string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = class
	}
	return s
}

func TestFirstThenQuiet(t *testing.T) {
	c := &clock{now: time.Unix(1764064800, 0)}
	ds := replay(Policy{Remind: time.Hour}, c, time.Second, repeat("not-eligible", 300)...)
	if ds[0].Kind != First {
		t.Fatalf("first result: %v", ds[0].Kind)
	}
	for i, d := range ds[1:] {
		if d.Kind != Quiet {
			t.Fatalf("result %d: %v, want quiet", i+2, d.Kind)
		}
	}
}

func TestChangeCarriesPreviousState(t *testing.T) {
	c := &clock{now: time.Unix(1764064800, 0)}
	p := Policy{Remind: time.Hour}
	classes := append(repeat("not-eligible", 10), "eligible", "eligible", "timeout", "eligible")
	ds := replay(p, c, time.Second, classes...)
	want := []Kind{First, Quiet, Quiet, Quiet, Quiet, Quiet, Quiet, Quiet, Quiet, Quiet, Change, Quiet, Change, Change}
	for i := range want {
		if ds[i].Kind != want[i] {
			t.Fatalf("decisions %v, want %v", kinds(ds), want)
		}
	}
	promo := ds[10]
	if promo.Prev.Class != "not-eligible" {
		t.Errorf("previous class %q", promo.Prev.Class)
	}
	// The replica state began at the first check and lasted until the
	// promotion: 10 checks a second apart.
	if lasted := c.now.Add(-3 * time.Second).Sub(promo.Prev.Since); lasted != 10*time.Second {
		t.Errorf("previous state lasted %v, want 10s", lasted)
	}
	if promo.Prev.Suppressed != 9 {
		t.Errorf("suppressed %d, want 9", promo.Prev.Suppressed)
	}
}

func TestReminders(t *testing.T) {
	c := &clock{now: time.Unix(1764064800, 0)}
	p := Policy{Remind: time.Minute}
	// 1 check a second for 3 minutes and a bit: first, then a reminder at
	// 60s, 120s and 180s.
	ds := replay(p, c, time.Second, repeat("timeout", 185)...)
	var at []int
	for i, d := range ds {
		if d.Kind == Reminder {
			at = append(at, i)
			if d.Prev.Suppressed != 59 {
				t.Errorf("reminder %d: %d suppressed, want 59", len(at), d.Prev.Suppressed)
			}
			if d.Prev.Since != time.Unix(1764064801, 0) {
				t.Errorf("reminder since %v", d.Prev.Since)
			}
		}
	}
	if len(at) != 3 || at[0] != 60 || at[1] != 120 || at[2] != 180 {
		t.Errorf("reminders at checks %v, want [60 120 180]", at)
	}
}

func TestNoReminderWhenEligibleOrDisabled(t *testing.T) {
	c := &clock{now: time.Unix(1764064800, 0)}
	for _, tc := range []struct {
		p     Policy
		class string
	}{{Policy{Remind: time.Minute}, "eligible"}, {Policy{Remind: 0}, "timeout"}} {
		for _, d := range replay(tc.p, c, time.Second, repeat(tc.class, 400)...)[1:] {
			if d.Kind != Quiet {
				t.Fatalf("%s with remind %v: %v", tc.class, tc.p.Remind, d.Kind)
			}
		}
	}
}

func TestClockGoingBack(t *testing.T) {
	p := Policy{Remind: time.Minute}
	now := time.Unix(1764064800, 0)
	st, _ := p.Next(nil, "timeout", true, now)
	// The clock steps back an hour: the next reminder comes a minute
	// after the step, not an hour and a minute.
	back := now.Add(-time.Hour)
	st, d := p.Next(&st, "timeout", true, back)
	if d.Kind != Quiet {
		t.Fatalf("%v", d.Kind)
	}
	_, d = p.Next(&st, "timeout", true, back.Add(time.Minute))
	if d.Kind != Reminder {
		t.Errorf("no reminder a minute after the clock went back: %v", d.Kind)
	}
}
