package cmdline

import (
	"strings"
	"testing"
	"time"
)

func TestParseArgsDefaults(t *testing.T) {
	c, err := Parse(Once, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != DefaultURL || c.Timeout != 800*time.Millisecond || c.ConnectTimeout != 300*time.Millisecond ||
		c.Retries != 1 || c.Remind != time.Hour || c.Log != "auto" || c.StatusOnly || c.NoState {
		t.Errorf("defaults %+v", c)
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	c, err := Parse(Once, []string{"http://198.51.100.11:8008/replica?lag=16MB", "--timeout", "500ms", "-v", "--retries=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "http://198.51.100.11:8008/replica?lag=16MB" || c.Timeout != 500*time.Millisecond || !c.Verbose || c.Retries != 0 {
		t.Errorf("parsed %+v", c)
	}
}

func TestSalvage(t *testing.T) {
	c := Salvage(Once, []string{"--timeout", "x", "--log", "syslog", "--log-socket=/tmp/s", "--state-dir", "/tmp/st", "--remind", "5m"})
	if c.Log != "syslog" || c.LogSocket != "/tmp/s" || c.StateDir != "/tmp/st" || c.Remind != 5*time.Minute {
		t.Errorf("salvaged %+v", c)
	}
}

// TestDoubleDashEndsFlags: after "--" everything is the URL, however
// flag-like: it neither sets a flag nor is salvaged as one.
func TestDoubleDashEndsFlags(t *testing.T) {
	_, err := Parse(Once, []string{"--", "http://127.0.0.1:8008/primary", "--timeout=5s"})
	if err == nil || !strings.Contains(err.Error(), "one URL expected, got 2") {
		t.Errorf("-- URL --timeout=5s: %v", err)
	}
	c, err := Parse(Once, []string{"--", "--state-dir=00"})
	if err != nil || c.URL != "--state-dir=00" || c.StateDir != "" {
		t.Errorf("-- --state-dir=00: %+v, %v", c, err)
	}
	if s := Salvage(Once, []string{"--bogus", "--", "--state-dir=00"}); s.StateDir != "" {
		t.Errorf("salvage took --state-dir from after --: %q", s.StateDir)
	}
	// A flag's value may be "--"; it does not end the flags.
	c, err = Parse(Once, []string{"--servername", "--", "--timeout", "2s"})
	if err != nil || c.ServerName != "--" || c.Timeout != 2*time.Second {
		t.Errorf("--servername -- --timeout 2s: %+v, %v", c, err)
	}
}

func TestWatchFlags(t *testing.T) {
	c, err := Parse(Watch, []string{"--interval", "200ms", "--track-file", "/run/x/y", "http://198.51.100.11:8008/primary"})
	if err != nil || c.Interval != 200*time.Millisecond || c.TrackFile != "/run/x/y" || c.URL != "http://198.51.100.11:8008/primary" {
		t.Errorf("%+v, %v", c, err)
	}
	if _, err := Parse(Once, []string{"--track-file", "/x"}); err == nil || !strings.Contains(err.Error(), "--track-file is a flag of patroni-vip-check watch") {
		t.Errorf("--track-file without watch: %v", err)
	}
	if c, err := Parse(Once, []string{"--interval", "200ms"}); err != nil || !c.IntervalSet || c.Interval != 200*time.Millisecond {
		t.Errorf("--interval of a single run, keepalived's: %+v, %v", c, err)
	}
	if _, err := Parse(Watch, []string{"--no-state"}); err == nil || !strings.Contains(err.Error(), "keeps its state in memory") {
		t.Errorf("--no-state with watch: %v", err)
	}
	if _, err := Parse(Watch, []string{"--interval", "1ms"}); err == nil {
		t.Error("--interval 1ms accepted")
	}
	// With --pgdata, PostgreSQL's files tell of promotions and stops: the polls come
	// every second, each within 400ms, unless told otherwise.
	for _, tc := range []struct {
		args              []string
		interval, timeout time.Duration
	}{
		{[]string{"http://198.51.100.11:8008/primary"}, 200 * time.Millisecond, 800 * time.Millisecond},
		{[]string{"--pgdata", "/var/lib/postgresql/15/main"}, time.Second, 400 * time.Millisecond},
		{[]string{"--interval", "200ms", "--pgdata", "/x"}, 200 * time.Millisecond, 400 * time.Millisecond},
		{[]string{"--pgdata=/x", "--timeout=800ms"}, time.Second, 800 * time.Millisecond},
		{[]string{"--pgdata", "/x", "--interval", "2s", "--timeout", "1s"}, 2 * time.Second, time.Second},
	} {
		c, err := Parse(Watch, tc.args)
		if err != nil || c.Interval != tc.interval || c.Timeout != tc.timeout {
			t.Errorf("watch %q: interval %v, timeout %v (%v), want %v and %v", tc.args, c.Interval, c.Timeout, err, tc.interval, tc.timeout)
		}
	}
	// A single run has no --pgdata; its deadline stays.
	if c, err := Parse(Once, nil); err != nil || c.Timeout != DefaultTimeout {
		t.Errorf("a single run's deadline: %v (%v)", c.Timeout, err)
	}
}

// TestOneTrackFile: a watcher keeps one track file, named once. The
// template unit names its instance's before the arguments it reads; a
// second is refused, and Salvage (the unit's --release after a bad
// command line) keeps the first. A name the watch gives its own files (a
// lock, a temporary file) is refused.
func TestOneTrackFile(t *testing.T) {
	args := []string{"--track-file=/run/keepalived-patroni-vip-check/a", "--track-file", "/run/keepalived-patroni-vip-check/b", "http://198.51.100.11:8008/primary"}
	if _, err := Parse(Watch, args); err == nil || err.Error() != `--track-file "/run/keepalived-patroni-vip-check/b": a second --track-file, after "/run/keepalived-patroni-vip-check/a": a watcher keeps one` {
		t.Errorf("two --track-file: %v", err)
	}
	if s := Salvage(Watch, append([]string{"--release"}, args...)); s.TrackFile != "/run/keepalived-patroni-vip-check/a" || !s.Release {
		t.Errorf("salvaged %q, release %t", s.TrackFile, s.Release)
	}
	for file, want := range map[string]string{
		"/run/keepalived-patroni-vip-check/a.lock":            "a name ending in .lock is a track file's lock",
		"/run/keepalived-patroni-vip-check/.a.1234.tmp":       "a name starting with . is a temporary file's",
		"/run/keepalived-patroni-vip-check/":                  "not a file",
		"/run/keepalived-patroni-vip-check/a.lock.d/eligible": "",
		"eligible": "",
	} {
		c, err := Parse(Watch, []string{"--track-file", file})
		if want == "" && (err != nil || c.TrackFile != file) || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("--track-file %s: %v, want %q", file, err, want)
		}
	}
}

// FuzzParseArgs: any command line parses or fails with a one-line error;
// nothing panics, what parses is consistent, and salvage reads the same
// logging and state flags from it as Parse.
func FuzzParseArgs(f *testing.F) {
	f.Add("--timeout\x00800ms\x00http://127.0.0.1:8008/primary")
	f.Add("-v\x00--log=syslog\x00--log-socket\x00/dev/log")
	f.Add("--retries\x0011")
	f.Add("--\x00--help")
	f.Add("--\x00--state-dir=00")
	f.Add("--servername\x00--\x00--state-dir\x00/x")
	f.Add("--track-file=/run/k/a\x00--release\x00--track-file\x00/run/k/a.lock")
	f.Fuzz(func(t *testing.T, joined string) {
		args := splitNUL(joined)
		for _, m := range []Mode{Once, Watch} {
			c, err := Parse(m, args)
			s := Salvage(m, args)
			if err != nil {
				if msg := err.Error(); msg == "" || containsNewline(msg) {
					t.Fatalf("error %q", msg)
				}
				continue
			}
			if c.Help || c.Version {
				continue
			}
			if c.Timeout < 10*time.Millisecond || c.ConnectTimeout <= 0 || c.Retries < 0 || c.Retries > 10 || c.Remind < 0 {
				t.Fatalf("accepted %+v", c)
			}
			if s.Log != c.Log || s.LogSocket != c.LogSocket || s.StateDir != c.StateDir || s.Remind != c.Remind || s.NoState != c.NoState ||
				s.TrackFile != c.TrackFile || s.Release != c.Release {
				t.Fatalf("salvage %+v disagrees with Parse %+v on %q", s, c, args)
			}
		}
	})
}

func splitNUL(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func containsNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return true
		}
	}
	return false
}

// TestBounds: durations beyond any sane use are refused with the range,
// before any deadline could overflow (a --timeout of 2562047h once made
// every poll of the watch "stuck" at once).
func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		args []string
		want string
	}{
		{Watch, []string{"--timeout", "2562047h"}, "--timeout 2562047h0m0s is out of range (10ms to 10m0s)"},
		{Once, []string{"--timeout", "11m"}, "--timeout 11m0s is out of range"},
		{Once, []string{"--timeout", "5ms"}, "--timeout 5ms is out of range"},
		{Watch, []string{"--connect-timeout", "2562047h"}, "--connect-timeout 2562047h0m0s is out of range"},
		{Watch, []string{"--interval", "2h"}, "--interval 2h0m0s is out of range (10ms to 1h0m0s)"},
		{Once, []string{"--remind", "9000h"}, "--remind 9000h0m0s is out of range"},
	} {
		if _, err := Parse(tc.mode, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	if c, err := Parse(Watch, []string{"--timeout", "10m", "--interval", "1h", "--remind", "8760h"}); err != nil || c.Timeout != MaxTimeout {
		t.Errorf("the bounds themselves: %+v, %v", c, err)
	}
}
