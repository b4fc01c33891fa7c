package main

// IPv6: a Patroni REST API on an IPv6 address, as a URL in brackets, for a
// single run and for the watch.

import (
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// newPatroni6 is newPatroni listening on [::1].
func newPatroni6(t *testing.T, status int, role string) *fakePatroni {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("listening on [::1]: %v", err)
	}
	// p's handler answers with p's status and role: serve it on ln.
	p := newPatroni(status, role)
	p.Server.Close()
	srv := httptest.NewUnstartedServer(p.Server.Config.Handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = p.Server.Config.ErrorLog
	srv.Start()
	p.Server = srv
	t.Cleanup(p.Close)
	if !strings.HasPrefix(p.URL, "http://[::1]:") {
		t.Fatalf("the stand-in's URL is %s", p.URL)
	}
	return p
}

func TestIPv6Once(t *testing.T) {
	p := newPatroni6(t, 200, "master")
	c := newCmd(t)
	c.mustExit(0, p.URL+"/primary")
	lines := c.log.lines(t)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "primary: 200 from "+p.URL+"/primary (") {
		t.Errorf("logged %q", lines)
	}
	// The state file's name keeps the address readable, without brackets
	// or colons.
	entries, err := os.ReadDir(c.stateDir)
	if err != nil || len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "1_") ||
		strings.ContainsAny(entries[0].Name(), "[]:") {
		t.Errorf("state files %v, %v", entries, err)
	}
	// Nothing listening on an IPv6 address: unreachable, exit 1.
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/primary"
	ln.Close()
	c.mustExit(1, closed)
	if lines := c.log.lines(t); len(lines) != 2 || !strings.Contains(lines[1], closed) || !strings.Contains(lines[1], "connection refused") {
		t.Errorf("logged %q", lines)
	}
}

func TestIPv6Watch(t *testing.T) {
	p := newPatroni6(t, 200, "master")
	c := newCmd(t)
	w := startWatch(t, c, nil, p.URL+"/primary")
	w.await("1", 5*time.Second)
	p.set(503, "replica")
	w.await("0", 5*time.Second)
}
