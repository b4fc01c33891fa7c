package check

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slack is how far past its deadline a check may return: the deadline is
// enforced by context, so this is scheduling noise, not a second timeout.
const slack = 100 * time.Millisecond

func defaults(url string) Options {
	return Options{URL: url, ConnectTimeout: 300 * time.Millisecond, Retries: 1, RetryWait: 25 * time.Millisecond}
}

func httpPeer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Start()
	t.Cleanup(s.Close)
	return s.URL
}

func tlsPeer(t *testing.T, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.TLS = cfg
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failures are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.URL
}

type outcome struct {
	class    Class
	status   int
	role     string
	attempts int // 0: any
}

func TestCheck(t *testing.T) {
	p := newPKI(t)
	serverTLS := func(cert tls.Certificate) *tls.Config { return &tls.Config{Certificates: []tls.Certificate{cert}} }
	mtls := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	primary := answer(200, patroniBody("running", "master", 4))

	cases := []struct {
		name     string
		setup    func(t *testing.T) Options
		deadline time.Duration
		want     outcome
	}{
		{"200 master (Patroni 3)", func(t *testing.T) Options {
			return defaults(httpPeer(t, primary) + "/primary")
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"200 primary (Patroni 4)", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(200, patroniBody("running", "primary", 7))) + "/primary")
		}, time.Second, outcome{Eligible, 200, "primary", 1}},
		{"503 replica is an answer, not retried", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(503, patroniBody("running", "replica", 4))) + "/primary")
		}, time.Second, outcome{NotEligible, 503, "replica", 1}},
		{"503 with no body", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(503, "")) + "/primary")
		}, time.Second, outcome{NotEligible, 503, "", 1}},
		{"200 with the wrong role", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(200, patroniBody("running", "replica", 4))) + "/primary")
		}, time.Second, outcome{NotEligible, 200, "replica", 1}},
		{"200 leader lock held but PostgreSQL stopped", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(200, `{"state": "stopped", "role": "master", "dcs_last_seen": 1}`)) + "/primary")
		}, time.Second, outcome{NotEligible, 200, "master", 1}},
		{"200 replica on /replica?lag=16MB", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(200, patroniBody("running", "replica", 4))) + "/replica?lag=16MB")
		}, time.Second, outcome{Eligible, 200, "replica", 1}},
		{"200 not JSON", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(200, "<html>It works!</html>")) + "/primary")
		}, time.Second, outcome{BadResponse, 200, "", 1}},
		{"200 not JSON accepted with --status-only", func(t *testing.T) Options {
			o := defaults(httpPeer(t, answer(200, "<html>It works!</html>")) + "/primary")
			o.StatusOnly = true
			return o
		}, time.Second, outcome{Eligible, 200, "", 1}},
		{"500", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(500, patroniBody("running", "master", 4))) + "/primary")
		}, time.Second, outcome{BadResponse, 500, "", 1}},
		{"redirect not followed", func(t *testing.T) Options {
			var hit atomic.Int32
			target := httpPeer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hit.Add(1)
				primary(w, r)
			}))
			t.Cleanup(func() {
				if hit.Load() != 0 {
					t.Errorf("redirect target was requested %d times", hit.Load())
				}
			})
			return defaults(httpPeer(t, http.RedirectHandler(target+"/primary", http.StatusFound)) + "/primary")
		}, time.Second, outcome{BadResponse, 302, "", 1}},
		{"401 is an auth failure", func(t *testing.T) Options {
			return defaults(httpPeer(t, answer(401, "no")) + "/primary")
		}, time.Second, outcome{Auth, 401, "", 1}},
		{"refused, retried once", func(t *testing.T) Options {
			return defaults("http://" + closedAddr(t) + "/primary")
		}, time.Second, outcome{Unreachable, 0, "", 2}},
		{"refused, --retries 0", func(t *testing.T) Options {
			o := defaults("http://" + closedAddr(t) + "/primary")
			o.Retries = 0
			return o
		}, time.Second, outcome{Unreachable, 0, "", 1}},
		{"reset then OK: the retry", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				if n == 1 {
					reset(c)
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n%s", patroniBody("running", "master", 5))
				c.Close()
			})
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{Eligible, 200, "master", 2}},
		{"closed without an answer, twice", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) { readRequest(c); c.Close() })
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{Unreachable, 0, "", 2}},
		{"accepts and never answers", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) { readRequest(c); select {} })
			return defaults("http://" + addr + "/primary")
		}, 300 * time.Millisecond, outcome{Timeout, 0, "", 1}},
		{"drips the headers", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				drip(c, "HTTP/1.1 200 OK\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 10*time.Millisecond)
			})
			return defaults("http://" + addr + "/primary")
		}, 300 * time.Millisecond, outcome{Timeout, 0, "", 1}},
		{"drips the body", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
				drip(c, patroniBody("running", "master", 4), 10*time.Millisecond)
			})
			return defaults("http://" + addr + "/primary")
		}, 300 * time.Millisecond, outcome{Timeout, 200, "", 1}},
		{"header that never ends", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Padding: " + strings.Repeat("a", 1000) + "\r\n"
				for {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			})
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{BadResponse, 0, "", 1}},
		{"100 Continue, then the answer", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				fmt.Fprintf(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s", patroniBody("running", "master", 4))
				c.Close()
			})
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"chunked answer", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				b := patroniBody("running", "master", 4)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(b), b)
				c.Close()
			})
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"speaks something that is not HTTP", func(t *testing.T) Options {
			addr, _ := rawPeer(t, func(n int, c net.Conn) { readRequest(c); c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")); c.Close() })
			return defaults("http://" + addr + "/primary")
		}, time.Second, outcome{BadResponse, 0, "", 1}},
		{"TLS with the test CA", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, serverTLS(p.server)) + "/primary")
			o.CACert = p.caFile
			return o
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"TLS with an unrelated CA", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, serverTLS(p.server)) + "/primary")
			o.CACert = p.otherCAFile
			return o
		}, time.Second, outcome{TLS, 0, "", 1}},
		{"TLS name mismatch", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, serverTLS(p.elsewhere)) + "/primary")
			o.CACert = p.caFile
			return o
		}, time.Second, outcome{TLS, 0, "", 1}},
		{"TLS name given by --servername", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, serverTLS(p.elsewhere)) + "/primary")
			o.CACert, o.ServerName = p.caFile, "elsewhere.test"
			return o
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"TLS unverified with --insecure", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, serverTLS(p.elsewhere)) + "/primary")
			o.Insecure = true
			return o
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"mTLS with a client certificate", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, mtls) + "/primary")
			o.CACert, o.Cert, o.Key = p.caFile, p.certFile, p.keyFile
			return o
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"mTLS without a client certificate", func(t *testing.T) Options {
			o := defaults(tlsPeer(t, primary, mtls) + "/primary")
			o.CACert = p.caFile
			return o
		}, time.Second, outcome{TLS, 0, "", 1}},
		{"https URL to a plain HTTP peer", func(t *testing.T) Options {
			o := defaults(strings.Replace(httpPeer(t, primary), "http:", "https:", 1) + "/primary")
			o.CACert = p.caFile
			return o
		}, time.Second, outcome{TLS, 0, "", 1}},
		{"basic auth", func(t *testing.T) Options {
			o := defaults(httpPeer(t, basicAuth("keepalived", "s3cret", primary)) + "/primary")
			o.User, o.PasswordFile = "keepalived", writeFile(t, "password", "s3cret\n")
			return o
		}, time.Second, outcome{Eligible, 200, "master", 1}},
		{"basic auth, wrong password", func(t *testing.T) Options {
			o := defaults(httpPeer(t, basicAuth("keepalived", "s3cret", primary)) + "/primary")
			o.User, o.PasswordFile = "keepalived", writeFile(t, "password", "guess\n")
			return o
		}, time.Second, outcome{Auth, 401, "", 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			start := time.Now()
			res := c.Check(ctx)
			took := time.Since(start)
			t.Logf("%s after %v: %v", res.Class, took.Round(time.Millisecond), res.Err)
			if res.Class != tc.want.class {
				t.Errorf("class %s (%v), want %s", res.Class, res.Err, tc.want.class)
			}
			if (res.Class == Eligible) != (res.Err == nil) {
				t.Errorf("class %s with error %v", res.Class, res.Err)
			}
			if res.Status != tc.want.status {
				t.Errorf("status %d, want %d", res.Status, tc.want.status)
			}
			if res.Patroni.Role != tc.want.role {
				t.Errorf("role %q, want %q", res.Patroni.Role, tc.want.role)
			}
			if tc.want.attempts != 0 && len(res.Attempts) != tc.want.attempts {
				t.Errorf("%d attempts, want %d: %+v", len(res.Attempts), tc.want.attempts, res.Attempts)
			}
			if took > tc.deadline+slack {
				t.Errorf("took %v, deadline %v", took, tc.deadline)
			}
			if res.Elapsed <= 0 || res.Elapsed > took {
				t.Errorf("Elapsed %v, measured %v", res.Elapsed, took)
			}
		})
	}
}

// TestBlackholedConnect fills a listener's accept queue so that the next
// connect hangs in SYN-SENT, as a firewalled port does: the connect
// timeout ends each attempt, the deadline ends the check.
func TestBlackholedConnect(t *testing.T) {
	ln := listen(t)
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	// With a backlog never accepted, Linux drops further SYNs once
	// somaxconn-many connections wait. Fill it until a dial hangs, and a
	// patient one too: on a loaded machine a quick dial may time out first.
	for i := 0; i < 8192; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 50*time.Millisecond)
		if err != nil {
			if c, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second); err != nil {
				break
			}
		}
		held = append(held, c)
	}
	o := defaults("http://" + ln.Addr().String() + "/primary")
	o.ConnectTimeout = 100 * time.Millisecond
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := c.Check(ctx)
	took := time.Since(start)
	if res.Class != Timeout {
		t.Fatalf("class %s (%v), want timeout", res.Class, res.Err)
	}
	if took > 400*time.Millisecond+slack {
		t.Errorf("took %v, deadline 400ms", took)
	}
	// 100ms per connect, 25ms pause: the deadline leaves room for retries,
	// and each is bounded by the connect timeout.
	if len(res.Attempts) != 2 {
		t.Errorf("%d attempts, want 2 (retries 1): %+v", len(res.Attempts), res.Attempts)
	}
	if !strings.Contains(res.Err.Error(), "no connection within 100ms") {
		t.Errorf("error %q does not name the connect timeout", res.Err)
	}
}

// TestOversizedBody: 50 MB of "JSON" is cut at 64 KiB, quickly, without
// reading the rest into memory.
func TestOversizedBody(t *testing.T) {
	chunk := []byte(strings.Repeat(" ", 32<<10))
	url := httpPeer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(50<<20))
		for i := 0; i < (50<<20)/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	c, err := New(defaults(url + "/primary"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := c.Check(ctx)
	runtime.ReadMemStats(&after)
	if res.Class != BadResponse || !strings.Contains(res.Err.Error(), "over 64 KiB") {
		t.Fatalf("class %s (%v), want bad-response over 64 KiB", res.Class, res.Err)
	}
	if res.Elapsed > time.Second {
		t.Errorf("took %v to refuse an oversized body", res.Elapsed)
	}
	// The server side shares this process; allow for it, but not for
	// anything near 50 MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d MiB checking a 50 MB body", alloc>>20)
	}
}

// TestInterrupted: cancelling the context (what SIGTERM does in main) ends
// a hung request at once, with its own class.
func TestInterrupted(t *testing.T) {
	addr, _ := rawPeer(t, func(n int, c net.Conn) { readRequest(c); select {} })
	c, err := New(defaults("http://" + addr + "/primary"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := c.Check(ctx)
	if res.Class != Interrupted {
		t.Fatalf("class %s (%v), want interrupted", res.Class, res.Err)
	}
	if took := time.Since(start); took > 100*time.Millisecond+slack {
		t.Errorf("took %v after a cancel at 100ms", took)
	}
}

// TestNoProxy: proxy variables are ignored. Go never proxies loopback
// anyway, so this also checks the transport itself; the CLI test in a
// network namespace covers a non-loopback address.
func TestNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://"+closedAddr(t))
	t.Setenv("HTTPS_PROXY", "http://"+closedAddr(t))
	c, err := New(defaults(httpPeer(t, answer(200, patroniBody("running", "master", 4))) + "/primary"))
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := c.client.HTTPClient.Transport.(recorder).next.(*http.Transport); !ok || tr.Proxy != nil {
		t.Error("the transport may take a proxy from the environment")
	}
	if res := c.Check(context.Background()); res.Class != Eligible {
		t.Errorf("class %s (%v), want eligible", res.Class, res.Err)
	}
}

func TestNewRejects(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writeFile(t, "not.pem", "hello")
	empty := writeFile(t, "empty", "\n")
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"bad scheme", Options{URL: "ftp://127.0.0.1/primary"}, "scheme must be http or https"},
		{"no host", Options{URL: "http:///primary"}, "no host"},
		{"not a URL", Options{URL: "http://[::1/primary"}, "invalid URL"},
		{"credentials in URL", Options{URL: "http://u:p@127.0.0.1:8008/primary"}, "credentials belong in --user"},
		{"TLS flag on http", Options{URL: "http://127.0.0.1:8008/primary", CACert: p.caFile}, "--cacert needs an https URL"},
		{"missing CA file", Options{URL: "https://127.0.0.1:8008/primary", CACert: missing}, "reading --cacert: " + missing + ": no such file"},
		{"CA file without PEM", Options{URL: "https://127.0.0.1:8008/primary", CACert: notPEM}, "no PEM certificate"},
		{"cert without key", Options{URL: "https://127.0.0.1:8008/primary", Cert: p.certFile}, "--cert needs --key"},
		{"key without cert", Options{URL: "https://127.0.0.1:8008/primary", Key: p.keyFile}, "--key needs --cert"},
		{"missing key file", Options{URL: "https://127.0.0.1:8008/primary", Cert: p.certFile, Key: missing}, "reading --key: " + missing},
		{"key that does not match", Options{URL: "https://127.0.0.1:8008/primary", Cert: p.certFile, Key: notPEM}, "--cert"},
		{"insecure with CA", Options{URL: "https://127.0.0.1:8008/primary", CACert: p.caFile, Insecure: true}, "contradict"},
		{"user without password", Options{URL: "http://127.0.0.1:8008/primary", User: "u"}, "--user needs --password-file"},
		{"password without user", Options{URL: "http://127.0.0.1:8008/primary", PasswordFile: empty}, "--password-file needs --user"},
		{"missing password file", Options{URL: "http://127.0.0.1:8008/primary", User: "u", PasswordFile: missing}, "reading --password-file"},
		{"empty password", Options{URL: "http://127.0.0.1:8008/primary", User: "u", PasswordFile: empty}, "empty password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Class != Config {
				t.Errorf("error %v is not of class config", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func basicAuth(user, pass string, next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrokenAnswers: a peer that answers with a broken HTTP header has
// answered. It is a bad response, asked once, never retried as if nobody
// had answered.
func TestBrokenAnswers(t *testing.T) {
	body := patroniBody("running", "master", 4)
	cases := []struct {
		name, answer string
	}{
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n" + body},
		{"two different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n" + body},
		{"a header line without a colon", "HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n" + body},
		{"an unknown Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: rot13\r\n\r\n" + body},
		{"a status line that is not HTTP", "HTTP/1.1 two hundred OK\r\n\r\n" + body},
		{"a header cut short", "HTTP/1.1 200 OK\r\nContent-Type: appl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, conns := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				io.WriteString(c, tc.answer)
				c.Close()
			})
			c, err := New(defaults("http://" + addr + "/primary"))
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(context.Background())
			if res.Class != BadResponse {
				t.Errorf("class %s (%v), want bad-response", res.Class, res.Err)
			}
			if n := conns.Load(); n != 1 || len(res.Attempts) != 1 {
				t.Errorf("%d connections, %d attempts: an answer was retried", n, len(res.Attempts))
			}
		})
	}
}

// TestSmallBodyInTinyChunks: a Patroni body sent one byte per chunk is
// 6 times its size on the wire, still an answer well under the bounds.
func TestSmallBodyInTinyChunks(t *testing.T) {
	body := patroniBody("running", "master", 4) + strings.Repeat(" ", 20<<10)
	addr, _ := rawPeer(t, func(n int, c net.Conn) {
		readRequest(c)
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := 0; i < len(body); i++ {
			fmt.Fprintf(&b, "1\r\n%c\r\n", body[i])
		}
		b.WriteString("0\r\n\r\n")
		io.WriteString(c, b.String())
		c.Close()
	})
	c, err := New(defaults("http://" + addr + "/primary"))
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Check(context.Background()); res.Class != Eligible {
		t.Errorf("class %s (%v), want eligible", res.Class, res.Err)
	}
}

// TestStalledHandshake: a peer that takes the connection and never answers
// the TLS hello is timed out by --connect-timeout, and the message says
// the handshake was where it stalled.
func TestStalledHandshake(t *testing.T) {
	addr, conns := rawPeer(t, func(n int, c net.Conn) { select {} })
	o := defaults("https://" + addr + "/primary")
	o.Insecure = true
	o.ConnectTimeout = 100 * time.Millisecond
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res := c.Check(ctx)
	if res.Class != Timeout || !strings.Contains(res.Err.Error(), "TLS handshake with "+addr+": no answer within 100ms") {
		t.Errorf("class %s (%v), want a timeout in the TLS handshake", res.Class, res.Err)
	}
	// A handshake that timed out is like a connect that did: one retry.
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (retries 1)", n)
	}
}

// TestFlagFilesBounded: a file named by a flag is read only if it is a
// regular file, and only up to a bound: /dev/zero, a FIFO nobody writes to
// and a file far larger than any real one are refused at once.
func TestFlagFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := writeFile(t, "big", strings.Repeat("x", 2<<20))
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"password from /dev/zero", Options{User: "u", PasswordFile: "/dev/zero"}, "--password-file /dev/zero: not a regular file"},
		{"password from a FIFO", Options{User: "u", PasswordFile: fifo}, "not a regular file"},
		{"a 2 MiB password file", Options{User: "u", PasswordFile: big}, "larger than 4 KiB"},
		{"CA from /dev/zero", Options{CACert: "/dev/zero"}, "--cacert /dev/zero: not a regular file"},
		{"a 2 MiB CA file", Options{CACert: big}, "larger than 1024 KiB"},
		{"cert from /dev/zero", Options{Cert: "/dev/zero", Key: "/dev/zero"}, "--cert /dev/zero: not a regular file"},
		{"key from a FIFO", Options{Cert: writeFile(t, "c.pem", "x"), Key: fifo}, "--key " + fifo + ": not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.URL = "http://127.0.0.1:8008/primary"
			if o.User == "" {
				o.URL = "https://127.0.0.1:8008/primary"
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := New(o)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Guards, not measures: a read that waits on a FIFO or
			// reads /dev/zero would take for ever and all the memory.
			if took > 5*time.Second {
				t.Errorf("took %v to refuse it", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("allocated %d KiB to refuse it", alloc>>10)
			}
		})
	}
}

// TestURLErrorsHidePasswords: whatever is wrong with a URL that holds a
// password, the error names the URL without it.
func TestURLErrorsHidePasswords(t *testing.T) {
	for _, url := range []string{
		"http://u:SECRET@127.0.0.1:8008/primary",
		"http://u:SECRET@127.0.0.1:99999/primary",
		"http://u:SE/CRET@127.0.0.1:8008/primary",
		"http://u:SECRET@127.0.0.1:8008/primary#x",
		"http://u:SEC%zzRET@127.0.0.1:8008/primary",
		"ftp://u:SECRET@127.0.0.1/primary",
		"u:SECRET@127.0.0.1:8008/primary",
	} {
		_, err := New(Options{URL: url})
		if err == nil {
			t.Errorf("%s: accepted", url)
			continue
		}
		for _, part := range []string{"SECRET", "SEC", "CRET"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q shows the password", url, err)
			}
		}
	}
}

func TestPortOutOfRange(t *testing.T) {
	for _, port := range []string{"0", "65536", "99999"} {
		_, err := New(Options{URL: "http://127.0.0.1:" + port + "/primary"})
		if err == nil || !strings.Contains(err.Error(), "port "+port+" is not a number from 1 to 65535") {
			t.Errorf("port %s: error %v", port, err)
		}
	}
}

func TestUserWithColon(t *testing.T) {
	_, err := New(Options{URL: "http://127.0.0.1:8008/primary", User: "a:b", PasswordFile: writeFile(t, "p", "x\n")})
	if err == nil || !strings.Contains(err.Error(), "cannot hold a colon") {
		t.Errorf("error %v", err)
	}
}

// TestRedactText: every URL of a text loses its password, quoted or not;
// the rest of the text is kept byte for byte.
func TestRedactText(t *testing.T) {
	for in, want := range map[string]string{
		"no URL here: user@host":                                 "no URL here: user@host",
		`--url "http://u:SECRET@198.51.100.11:8008/x": bad`:      `--url "http://u:xxxxx@198.51.100.11:8008/x": bad`,
		"runs  /usr/bin/c  and drops http://u:SECRET@h:1/p  --v": "runs  /usr/bin/c  and drops http://u:xxxxx@h:1/p  --v",
	} {
		if got := RedactText(in); got != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8008/primary":               "http://127.0.0.1:8008/primary",
		"http://u:SECRET@127.0.0.1:8008/primary":      "http://u:xxxxx@127.0.0.1:8008/primary",
		"http://u@127.0.0.1:8008/primary":             "http://u@127.0.0.1:8008/primary",
		"http://u:SE/CR@ET@127.0.0.1:8008/primary":    "http://u:xxxxx@127.0.0.1:8008/primary",
		"u:SECRET@127.0.0.1:8008/primary":             "u:xxxxx@127.0.0.1:8008/primary",
		"http://127.0.0.1:8008/replica?tag=a@b":       "http://127.0.0.1:8008/replica?tag=a@b",
		"https://u:p%40ss@[::1]:8008/primary?lag=1MB": "https://u:xxxxx@[::1]:8008/primary?lag=1MB",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
