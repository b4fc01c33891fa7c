package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
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
	hits   atomic.Int64 // requests answered
}

func newPatroni(status int, role string) *fakePatroni {
	p := &fakePatroni{}
	p.set(status, role)
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(p.status.Load()))
		fmt.Fprintf(w, `{"state": "running", "role": %q, "timeline": 4, "patroni": {"version": "3.0.2", "scope": "demo"}}`, p.role.Load())
		p.hits.Add(1)
	}))
	p.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.Server.Start()
	return p
}

func (p *fakePatroni) set(status int, role string) {
	p.status.Store(int32(status))
	p.role.Store(role)
}

// waitPolls waits until n more requests than now have been answered: a
// watcher's polls, counted as they happen.
func (p *fakePatroni) waitPolls(t *testing.T, n int64) {
	t.Helper()
	want := p.hits.Load() + n
	guard := time.Now().Add(10 * time.Second)
	for p.hits.Load() < want {
		if time.Now().After(guard) {
			t.Fatalf("%d polls in 10s, want %d", p.hits.Load()-want+n, n)
		}
		time.Sleep(time.Millisecond) // waits for the requests, measures nothing
	}
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
	base := cmdline.Config{}
	a := stateName(base, "http://127.0.0.1:8008/primary")
	if a != stateName(cmdline.Config{Timeout: time.Second, Retries: 3}, "http://127.0.0.1:8008/primary") {
		t.Error("timeouts changed the state name")
	}
	for _, other := range []cmdline.Config{{StatusOnly: true}, {User: "u"}, {CACert: "/x"}, {ServerName: "n"}, {Insecure: true}, {Cert: "/c"}} {
		if stateName(other, "http://127.0.0.1:8008/primary") == a {
			t.Errorf("%+v shares the state of the default", other)
		}
	}
	if stateName(base, "http://127.0.0.1:8008/replica") == a {
		t.Error("two endpoints share a state")
	}
}
