package main

// The watch loop in this process, on a clock the test steps: what it does
// at each moment is proven by waiting for what it does, never by sleeping.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
)

// wait bounds every wait of these tests: a guard against a hang, never a
// measure of anything.
const wait = 10 * time.Second

// fakeClock is a clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed at every change of a timer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer() timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// signal wakes the waiters; c.mu is held.
func (c *fakeClock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			t.ch <- t.when
		}
	}
	c.signal()
}

// armed reports whether a timer is set to fire at when, and returns the
// channel closed at the next change of a timer.
func (c *fakeClock) armed(when time.Time) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tm := range c.timers {
		if tm.active && tm.when.Equal(when) {
			return true, nil
		}
	}
	return false, c.changed
}

// waitTimer waits until a timer is set to fire at when.
func (c *fakeClock) waitTimer(t *testing.T, when time.Time) {
	t.Helper()
	guard := time.After(wait)
	for {
		ok, changed := c.armed(when)
		if ok {
			return
		}
		select {
		case <-changed:
		case <-guard:
			t.Fatalf("no timer set for %v", when.Sub(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)))
		}
	}
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	when   time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.when, t.active = t.c.now.Add(d), true
	if d <= 0 { // due now, as a real timer is
		t.active = false
		t.ch <- t.when
	}
	t.c.signal()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.active = false
	t.c.signal()
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// recordDest is a log that hands each line to the test, and can be made
// slow: while held, Send waits until released.
type recordDest struct {
	lines chan sink.Line
	mu    sync.Mutex
	held  chan struct{} // nil when not held
}

func newRecordDest() *recordDest { return &recordDest{lines: make(chan sink.Line, 256)} }

func (d *recordDest) Send(l sink.Line) error {
	d.mu.Lock()
	held := d.held
	d.mu.Unlock()
	if held != nil {
		<-held
	}
	d.lines <- l
	return nil
}

func (d *recordDest) Close() error { return nil }

func (d *recordDest) hold() {
	d.mu.Lock()
	d.held = make(chan struct{})
	d.mu.Unlock()
}

func (d *recordDest) release() {
	d.mu.Lock()
	close(d.held)
	d.held = nil
	d.mu.Unlock()
}

// next is the next line logged.
func (d *recordDest) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-d.lines:
		return l.Message
	case <-time.After(wait):
		t.Fatal("no line logged")
	}
	return ""
}

// none checks that nothing more was logged, once the loop has settled.
func (d *recordDest) none(t *testing.T) {
	t.Helper()
	select {
	case l := <-d.lines:
		t.Errorf("unexpected line %q", l.Message)
	default:
	}
}

// loopHarness runs a watcher's loop with a fake clock, a fake Patroni that
// answers when the test says, and a recorded log.
type loopHarness struct {
	t       *testing.T
	clk     *fakeClock
	w       *watcher
	log     *recordDest
	track   string
	asked   chan time.Time
	answers chan check.Result
	stop    chan os.Signal
	exit    chan int
	notes   chan string
}

func newLoop(t *testing.T, args ...string) *loopHarness {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "track")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &loopHarness{
		t: t, clk: newFakeClock(), log: newRecordDest(), track: filepath.Join(dir, "eligible"),
		asked: make(chan time.Time, 1), answers: make(chan check.Result), stop: make(chan os.Signal, 1),
		exit: make(chan int, 1), notes: make(chan string, 64),
	}
	cfg, err := cmdline.Parse(cmdline.Watch, append([]string{"--track-file", h.track, "http://198.51.100.11:8008/primary"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	track, err := takeTrackFile(h.track)
	if err != nil {
		t.Fatal(err)
	}
	h.w = newWatcher(cfg, track, h.clk, h.log, io.Discard)
	h.w.ask = func(ctx context.Context) check.Result {
		h.asked <- h.clk.Now()
		return <-h.answers
	}
	h.w.url, h.w.ep = check.Redact(cfg.URL), check.EndpointFor("/primary")
	h.w.notify = func(s string) { h.notes <- s }
	return h
}

func (h *loopHarness) run() {
	go func() {
		code := h.w.loop(h.stop)
		h.w.close()
		if h.w.track != nil {
			h.w.track.lock.Close()
		}
		h.exit <- code
	}()
	h.t.Cleanup(func() {
		h.stop <- syscall.SIGTERM
		select {
		case <-h.exit:
		case <-time.After(wait):
			h.t.Error("the loop did not end on SIGTERM")
		}
	})
}

// poll waits for the loop to ask Patroni, and returns when it asked.
func (h *loopHarness) poll() time.Time {
	h.t.Helper()
	select {
	case at := <-h.asked:
		return at
	case <-time.After(wait):
		h.t.Fatal("the loop did not poll")
	}
	return time.Time{}
}

// answer answers the poll that began at start, then waits until the loop
// has settled it (its next poll is scheduled) and advances to that poll.
func (h *loopHarness) answer(start time.Time, r check.Result) time.Time {
	h.t.Helper()
	h.answers <- r
	h.clk.waitTimer(h.t, start.Add(h.w.cfg.Interval))
	h.clk.Advance(start.Add(h.w.cfg.Interval).Sub(h.clk.Now()))
	return h.poll()
}

// settleWith answers r to every poll that starts now, until the loop has
// scheduled its next poll at when: one change of a file can come as two
// events (created, then written and closed), and a wake during a poll
// makes another at once.
func (h *loopHarness) settleWith(r check.Result, when time.Time) {
	h.t.Helper()
	guard := time.After(wait)
	for {
		ok, changed := h.clk.armed(when)
		if ok {
			return
		}
		select {
		case <-changed:
		case <-h.asked:
			h.answers <- r
		case <-guard:
			h.t.Fatalf("no poll scheduled at %v", when.Sub(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)))
		}
	}
}

func (h *loopHarness) value() string {
	b, _ := os.ReadFile(h.track)
	return strings.TrimSpace(string(b))
}

func primary() check.Result {
	return check.Result{Class: check.Eligible, Status: 200, HasBody: true, Elapsed: time.Millisecond,
		Patroni: check.Patroni{Role: "master", State: "running", Timeline: 4}}
}

func replica() check.Result {
	return check.Result{Class: check.NotEligible, Status: 503, HasBody: true, Elapsed: time.Millisecond,
		Err: errors.New("503"), Patroni: check.Patroni{Role: "replica", State: "running", Timeline: 4}}
}

// TestLoopNoLateYes: an eligible answer that arrives after its poll's
// deadline and the grace is not applied: the loop wrote 0 when the poll
// overran, says so, and the late answer counts as a timeout.
func TestLoopNoLateYes(t *testing.T) {
	h := newLoop(t)
	h.run()
	h.answer(h.poll(), primary())
	if v := h.value(); v != "1" {
		t.Fatalf("track file %q on a primary", v)
	}
	if l := h.log.next(t); !strings.HasPrefix(l, "primary: 200") {
		t.Fatalf("first line %q", l)
	}
	// The poll overruns: the loop writes 0 and says so.
	h.clk.Advance(h.w.cfg.Timeout + pollGrace)
	if l := h.log.next(t); !strings.Contains(l, "is still going") || !strings.Contains(l, "wrote 0") {
		t.Fatalf("line %q, want the stuck poll", l)
	}
	if v := h.value(); v != "0" {
		t.Fatalf("track file %q after the poll overran", v)
	}
	// Its answer, read before a demotion, arrives late: still 0, and the
	// next poll starts at once.
	h.answers <- primary()
	h.poll()
	if v := h.value(); v != "0" {
		t.Errorf("track file %q after a late yes, want 0", v)
	}
	if l := h.log.next(t); !strings.HasPrefix(l, "timeout: ") || !strings.Contains(l, "too old to use") || !strings.Contains(l, "was primary") {
		t.Errorf("line %q, want the late answer logged as a timeout", l)
	}
}

// TestLoopLogsEveryChange: while the log takes no line, the track file
// still follows Patroni, and every change is logged once the log is back:
// each one while few, and beyond maxQueued one line that counts the rest.
func TestLoopLogsEveryChange(t *testing.T) {
	h := newLoop(t)
	h.run()
	start := h.answer(h.poll(), replica())
	if l := h.log.next(t); !strings.HasPrefix(l, "not primary: 503") {
		t.Fatalf("first line %q", l)
	}
	h.log.hold()
	// A flap: 1, 0, 1, 0. The first line is held in flight; the rest wait.
	for i, r := range []check.Result{primary(), replica(), primary(), replica()} {
		start = h.answer(start, r)
		if want := map[bool]string{true: "1", false: "0"}[r.Eligible()]; h.value() != want {
			t.Fatalf("change %d: track file %q, want %q while the log is held", i, h.value(), want)
		}
	}
	h.log.release()
	var got []string
	for range 4 {
		got = append(got, h.log.next(t))
	}
	for i, prefix := range []string{"primary: 200", "not primary: 503", "primary: 200", "not primary: 503"} {
		if !strings.HasPrefix(got[i], prefix) {
			t.Errorf("line %d %q, want %q...", i, got[i], prefix)
		}
	}
	h.log.none(t)

	// Far more changes than the queue holds: folded, none unsaid.
	h.log.hold()
	flaps := 3 * maxQueued
	for i := range flaps {
		r := primary()
		if i%2 == 1 {
			r = replica()
		}
		start = h.answer(start, r)
	}
	h.log.release()
	counted, last, lines := 0, "", 0
	for counted < flaps {
		l := h.log.next(t)
		lines++
		if n, ok := foldedCount(l); ok {
			counted += n
		} else {
			counted++
		}
		last = l
	}
	if counted != flaps || !strings.HasPrefix(last, "not primary") {
		t.Errorf("lines stood for %d changes, the last %q; want %d ending not primary", counted, last, flaps)
	}
	// The line in flight, and at most maxQueued behind it.
	if lines > maxQueued+1 {
		t.Errorf("%d lines for %d changes: the queue held more than %d", lines, flaps, maxQueued)
	}
}

// foldedCount reads "N changes of verdict while the log took no lines...".
func foldedCount(l string) (int, bool) {
	var n int
	if _, err := fmt.Sscan(l, &n); err != nil || !strings.Contains(l, " changes of verdict while the log took no lines, from ") {
		return 0, false
	}
	return n, true
}

// TestLoopStuckLineQueued: a poll that overruns while a line is in flight
// is still logged once the log is back, not dropped.
func TestLoopStuckLineQueued(t *testing.T) {
	h := newLoop(t)
	h.run()
	h.log.hold()
	h.answer(h.poll(), primary()) // its line is held in flight; the next poll is going
	h.clk.Advance(h.w.cfg.Timeout + pollGrace)
	h.waitValue("0")
	h.log.release()
	if l := h.log.next(t); !strings.HasPrefix(l, "primary: 200") {
		t.Errorf("first line %q", l)
	}
	if l := h.log.next(t); !strings.Contains(l, "is still going") {
		t.Errorf("second line %q, want the stuck poll", l)
	}
}

// waitValue waits until the track file says want.
func (h *loopHarness) waitValue(want string) {
	h.t.Helper()
	guard := time.Now().Add(wait)
	for h.value() != want {
		if time.Now().After(guard) {
			h.t.Fatalf("track file %q, want %q", h.value(), want)
		}
		time.Sleep(time.Millisecond) // the loop runs on: this only waits for its write
	}
}

// TestLoopWatchdog: no WATCHDOG=1 before READY=1, however slow the first
// poll; pings every half WatchdogSec while polls keep their deadline; none
// once a poll is stuck, so that systemd restarts the process.
func TestLoopWatchdog(t *testing.T) {
	h := newLoop(t)
	h.w.watchdog = 100 * time.Millisecond
	h.run()
	h.poll()
	h.clk.Advance(300 * time.Millisecond) // a slow first poll
	select {
	case n := <-h.notes:
		t.Fatalf("%q before the first verdict", n)
	default:
	}
	h.answers <- primary()
	for _, want := range []string{"READY=1", "WATCHDOG=1"} {
		if n := <-h.notes; n != want {
			t.Fatalf("notification %q, want %q", n, want)
		}
	}
	// The next poll is due at once (the first overran its interval).
	start := h.poll()
	h.clk.waitTimer(t, start.Add(h.w.watchdog))
	h.clk.Advance(h.w.watchdog)
	if n := <-h.notes; n != "WATCHDOG=1" {
		t.Fatalf("notification %q, want WATCHDOG=1", n)
	}
	// Stuck: the pings stop.
	h.clk.Advance(h.w.cfg.Timeout + pollGrace)
	h.waitValue("0")
	for range 5 {
		h.clk.Advance(h.w.watchdog)
	}
	h.log.next(t) // the first verdict
	h.log.next(t) // the stuck poll: the loop has seen every tick before it
	select {
	case n := <-h.notes:
		t.Errorf("%q while a poll is stuck", n)
	default:
	}
}

// TestLoopTrackDirReplaced: a track directory removed and made again (its
// lock with it) is said at once, with the fix, and again at each reminder.
func TestLoopTrackDirReplaced(t *testing.T) {
	h := newLoop(t, "--remind", "1h")
	h.run()
	start := h.answer(h.poll(), primary())
	h.log.next(t)
	dir := filepath.Dir(h.track)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.answer(start, primary())
	var lines []string
	for range 2 {
		lines = append(lines, h.log.next(t))
	}
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "was removed; took it again") || !strings.Contains(joined, "restart keepalived") {
		t.Errorf("lines %q, want the lock taken again and the directory's fix", lines)
	}
	if v := h.value(); v != "1" {
		t.Errorf("track file %q in the new directory, want 1", v)
	}
	h.clk.Advance(time.Hour)
	h.answers <- primary()
	if l := h.log.next(t); !strings.HasPrefix(l, "still track directory") || !strings.Contains(l, "restart keepalived") {
		t.Errorf("line %q, want the reminder", l)
	}
}

// TestLoopYieldsTrackFile: a watcher whose lock file was removed, and taken
// by another process, stops touching the track file and ends with 1.
func TestLoopYieldsTrackFile(t *testing.T) {
	h := newLoop(t)
	h.run()
	h.answer(h.poll(), primary())
	h.log.next(t)
	if err := os.Remove(lockPath(h.track)); err != nil {
		t.Fatal(err)
	}
	other, _, err := lockFile(h.track)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	os.WriteFile(h.track, []byte("other\n"), 0o644)
	h.answers <- replica()
	select {
	case code := <-h.exit:
		h.exit <- code // for the cleanup
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	case <-time.After(wait):
		t.Fatal("the loop went on after another process took the track file")
	}
	if v := h.value(); v != "other" {
		t.Errorf("track file %q, want the other keeper's", v)
	}
	if l := h.log.next(t); !strings.Contains(l, "is kept by process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("line %q, want who keeps the file now", l)
	}
}

// TestLoopTextfileErrors: a textfile that cannot be written is said once
// per change of its error, and once when it can be written again.
func TestLoopTextfileErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "textfile")
	h := newLoop(t, "--textfile", filepath.Join(dir, "pvc.prom"))
	h.run()
	start := h.answer(h.poll(), primary())
	h.log.next(t)
	if l := h.log.next(t); !strings.HasPrefix(l, "textfile ") || !strings.Contains(l, "no such file or directory") {
		t.Fatalf("line %q, want the textfile's error", l)
	}
	for range 3 {
		start = h.answer(start, primary())
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Rewritten within textfileEvery of polls.
	for range int(textfileEvery / h.w.cfg.Interval) {
		start = h.answer(start, primary())
	}
	if l := h.log.next(t); !strings.HasSuffix(l, ": fine again") {
		t.Errorf("line %q, want the textfile fine again", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "pvc.prom")); err != nil {
		t.Error(err)
	}
	h.log.none(t)
}
