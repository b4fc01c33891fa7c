package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes this test binary the patroni-vip-check command too: the
// scripts in testdata/script and the tests below run it as a separate
// process, as keepalived does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"patroni-vip-check": main,
	})
}

// TestScripts runs the command-line contract in testdata/script/*.txtar.
// Extra script commands start peers in this process:
//
//	patroni VAR STATUS ROLE   a fake Patroni; $VAR is its base URL
//	hang VAR                  accepts and never answers; $VAR is its base URL
//	closed VAR                nothing listens; $VAR is its base URL
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"patroni": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: patroni VAR STATUS ROLE")
				}
				var status int
				fmt.Sscan(args[1], &status)
				s := newPatroni(status, args[2])
				ts.Defer(s.Close)
				ts.Setenv(args[0], s.URL)
			},
			"hang": func(ts *testscript.TestScript, neg bool, args []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
				go hangOn(ln)
				ts.Setenv(args[0], "http://"+ln.Addr().String())
			},
			"closed": func(ts *testscript.TestScript, neg bool, args []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Setenv(args[0], "http://"+ln.Addr().String())
				ln.Close()
			},
		},
	})
}

// fakePatroni answers every request with a status and a Patroni 3 body for
// a role; both can change while it runs.
type fakePatroni struct {
	*httptest.Server
	status atomic.Int32
	role   atomic.Value
}

func newPatroni(status int, role string) *fakePatroni {
	p := &fakePatroni{}
	p.set(status, role)
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(p.status.Load()))
		fmt.Fprintf(w, `{"state": "running", "role": %q, "timeline": 4, "patroni": {"version": "3.0.2", "scope": "demo"}}`, p.role.Load())
	}))
	p.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.Server.Start()
	return p
}

func (p *fakePatroni) set(status int, role string) {
	p.status.Store(int32(status))
	p.role.Store(role)
}

// hangOn accepts connections and never answers.
func hangOn(ln net.Listener) {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		held = append(held, c)
	}
}

func TestParseArgsDefaults(t *testing.T) {
	c, err := parseArgs(once, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.url != defaultURL || c.timeout != 800*time.Millisecond || c.connectTimeout != 300*time.Millisecond ||
		c.retries != 1 || c.remind != time.Hour || c.logTgt != "auto" || c.statusOnly || c.noState {
		t.Errorf("defaults %+v", c)
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	c, err := parseArgs(once, []string{"http://198.51.100.11:8008/replica?lag=16MB", "--timeout", "500ms", "-v", "--retries=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.url != "http://198.51.100.11:8008/replica?lag=16MB" || c.timeout != 500*time.Millisecond || !c.verbose || c.retries != 0 {
		t.Errorf("parsed %+v", c)
	}
}

func TestSalvage(t *testing.T) {
	c := salvage(once, []string{"--timeout", "x", "--log", "syslog", "--log-socket=/tmp/s", "--state-dir", "/tmp/st", "--remind", "5m"})
	if c.logTgt != "syslog" || c.logSock != "/tmp/s" || c.stateDir != "/tmp/st" || c.remind != 5*time.Minute {
		t.Errorf("salvaged %+v", c)
	}
}

// TestDoubleDashEndsFlags: after "--" everything is the URL, however
// flag-like: it neither sets a flag nor is salvaged as one.
func TestDoubleDashEndsFlags(t *testing.T) {
	_, err := parseArgs(once, []string{"--", "http://127.0.0.1:8008/primary", "--timeout=5s"})
	if err == nil || !strings.Contains(err.Error(), "one URL expected, got 2") {
		t.Errorf("-- URL --timeout=5s: %v", err)
	}
	c, err := parseArgs(once, []string{"--", "--state-dir=00"})
	if err != nil || c.url != "--state-dir=00" || c.stateDir != "" {
		t.Errorf("-- --state-dir=00: %+v, %v", c, err)
	}
	if s := salvage(once, []string{"--bogus", "--", "--state-dir=00"}); s.stateDir != "" {
		t.Errorf("salvage took --state-dir from after --: %q", s.stateDir)
	}
	// A flag's value may be "--"; it does not end the flags.
	c, err = parseArgs(once, []string{"--servername", "--", "--timeout", "2s"})
	if err != nil || c.servername != "--" || c.timeout != 2*time.Second {
		t.Errorf("--servername -- --timeout 2s: %+v, %v", c, err)
	}
}

func TestWatchFlags(t *testing.T) {
	c, err := parseArgs(watch, []string{"--interval", "200ms", "--track-file", "/run/x/y", "http://198.51.100.11:8008/primary"})
	if err != nil || c.interval != 200*time.Millisecond || c.trackFile != "/run/x/y" || c.url != "http://198.51.100.11:8008/primary" {
		t.Errorf("%+v, %v", c, err)
	}
	if _, err := parseArgs(once, []string{"--track-file", "/x"}); err == nil || !strings.Contains(err.Error(), "--track-file is a flag of patroni-vip-check watch") {
		t.Errorf("--track-file without watch: %v", err)
	}
	if c, err := parseArgs(once, []string{"--interval", "200ms"}); err != nil || !c.intervalSet || c.interval != 200*time.Millisecond {
		t.Errorf("--interval of a single run, keepalived's: %+v, %v", c, err)
	}
	if _, err := parseArgs(watch, []string{"--no-state"}); err == nil || !strings.Contains(err.Error(), "keeps its state in memory") {
		t.Errorf("--no-state with watch: %v", err)
	}
	if _, err := parseArgs(watch, []string{"--interval", "1ms"}); err == nil {
		t.Error("--interval 1ms accepted")
	}
}

// FuzzParseArgs: any command line parses or fails with a one-line error;
// nothing panics, what parses is consistent, and salvage reads the same
// logging and state flags from it as parseArgs.
func FuzzParseArgs(f *testing.F) {
	f.Add("--timeout\x00800ms\x00http://127.0.0.1:8008/primary")
	f.Add("-v\x00--log=syslog\x00--log-socket\x00/dev/log")
	f.Add("--retries\x0011")
	f.Add("--\x00--help")
	f.Add("--\x00--state-dir=00")
	f.Add("--servername\x00--\x00--state-dir\x00/x")
	f.Fuzz(func(t *testing.T, joined string) {
		args := splitNUL(joined)
		for _, m := range []mode{once, watch} {
			c, err := parseArgs(m, args)
			s := salvage(m, args)
			if err != nil {
				if msg := err.Error(); msg == "" || containsNewline(msg) {
					t.Fatalf("error %q", msg)
				}
				continue
			}
			if c.help || c.version {
				continue
			}
			if c.timeout < 10*time.Millisecond || c.connectTimeout <= 0 || c.retries < 0 || c.retries > 10 || c.remind < 0 {
				t.Fatalf("accepted %+v", c)
			}
			if s.logTgt != c.logTgt || s.logSock != c.logSock || s.stateDir != c.stateDir || s.remind != c.remind || s.noState != c.noState {
				t.Fatalf("salvage %+v disagrees with parseArgs %+v on %q", s, c, args)
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

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3*time.Hour + 12*time.Minute + 5*time.Second: "3h12m",
		4*time.Minute + 5*time.Second:                "4m5s",
		1500 * time.Millisecond:                      "1.5s",
		850 * time.Millisecond:                       "850ms",
		1234 * time.Microsecond:                      "1.23ms",
		-time.Second:                                 "0s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSlugAndStateName(t *testing.T) {
	if got := slug("http://127.0.0.1:8008/replica?lag=16MB"); got != "127.0.0.1_8008_replica_lag_16MB" {
		t.Errorf("slug %q", got)
	}
	base := config{}
	a := stateName(base, "http://127.0.0.1:8008/primary")
	if a != stateName(config{timeout: time.Second, retries: 3}, "http://127.0.0.1:8008/primary") {
		t.Error("timeouts changed the state name")
	}
	for _, other := range []config{{statusOnly: true}, {user: "u"}, {cacert: "/x"}, {servername: "n"}, {insecure: true}, {cert: "/c"}} {
		if stateName(other, "http://127.0.0.1:8008/primary") == a {
			t.Errorf("%+v shares the state of the default", other)
		}
	}
	if stateName(base, "http://127.0.0.1:8008/replica") == a {
		t.Error("two endpoints share a state")
	}
}
