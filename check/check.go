// Package check asks one Patroni REST API health endpoint whether this node
// may hold the cluster's virtual IP, within the caller's deadline, and says
// why not. It never logs and never decides an exit code: it returns a Result.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/go-retryablehttp"
)

// Class is the reason class of a verdict: Eligible, or why not.
type Class string

const (
	Eligible    Class = "eligible"
	NotEligible Class = "not-eligible" // Patroni said no: 503, wrong role, not running
	Unreachable Class = "unreachable"  // refused, reset, closed without an answer, DNS
	Timeout     Class = "timeout"      // no answer within the deadline
	BadResponse Class = "bad-response" // other status, redirect, malformed or oversized body
	TLS         Class = "tls"          // handshake or certificate failure
	Auth        Class = "auth"         // 401 or 403
	Config      Class = "config"       // bad flags or unreadable files
	Interrupted Class = "interrupted"  // the caller cancelled (a signal)
)

// MaxBody bounds what is read of an answer: a Patroni health body is
// about 1 KiB; anything past this is not Patroni.
const MaxBody = 64 << 10

// Options configure a Checker. Zero values are not defaults: the caller
// (main) owns the defaults.
type Options struct {
	URL            string
	ConnectTimeout time.Duration // per attempt, TCP connect and TLS handshake together
	Retries        int           // extra attempts after transport errors only
	RetryWait      time.Duration // pause before a retry
	StatusOnly     bool          // any 200 is eligible; the body is not read

	CACert, Cert, Key string // PEM files
	ServerName        string // TLS name to verify instead of the URL's host
	Insecure          bool   // skip certificate verification

	User, PasswordFile string // basic auth
	UserAgent          string
}

// Error is an error with its reason class.
type Error struct {
	Class Class
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func configErr(format string, a ...any) error {
	return &Error{Class: Config, Err: fmt.Errorf(format, a...)}
}

// Checker is a validated check, with its files loaded, ready to run once
// or many times.
type Checker struct {
	opts     Options
	url      *url.URL
	endpoint Endpoint
	tls      *tls.Config // nil for http
	password string
}

// New validates opts and loads the files they name. Every error it returns
// is an *Error of class Config that names the problem.
func New(opts Options) (*Checker, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, configErr("invalid URL %q: %v", opts.URL, errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, configErr("invalid URL %q: scheme must be http or https", opts.URL)
	case u.Host == "" || u.Hostname() == "":
		return nil, configErr("invalid URL %q: no host", opts.URL)
	case u.User != nil:
		return nil, configErr("invalid URL %q: credentials belong in --user and --password-file, not the URL", u.Redacted())
	case u.Fragment != "":
		return nil, configErr("invalid URL %q: a fragment means nothing to Patroni", opts.URL)
	}
	if u.Port() == "" && strings.HasSuffix(u.Host, ":") {
		return nil, configErr("invalid URL %q: empty port", opts.URL)
	}
	c := &Checker{opts: opts, url: u, endpoint: EndpointFor(u.Path)}

	tlsFlag := ""
	switch {
	case opts.CACert != "":
		tlsFlag = "--cacert"
	case opts.Cert != "":
		tlsFlag = "--cert"
	case opts.Key != "":
		tlsFlag = "--key"
	case opts.ServerName != "":
		tlsFlag = "--servername"
	case opts.Insecure:
		tlsFlag = "--insecure"
	}
	if u.Scheme == "http" && tlsFlag != "" {
		return nil, configErr("%s needs an https URL", tlsFlag)
	}
	if u.Scheme == "https" {
		if c.tls, err = loadTLS(opts); err != nil {
			return nil, err
		}
	}

	switch {
	case opts.User != "" && opts.PasswordFile == "":
		return nil, configErr("--user needs --password-file")
	case opts.User == "" && opts.PasswordFile != "":
		return nil, configErr("--password-file needs --user")
	case opts.PasswordFile != "":
		pw, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, configErr("reading --password-file: %v", unwrapPath(err))
		}
		// The first line is the password, as a file written by echo holds it.
		c.password, _, _ = strings.Cut(string(pw), "\n")
		c.password = strings.TrimSuffix(c.password, "\r")
		if c.password == "" {
			return nil, configErr("--password-file %s: empty password", show(opts.PasswordFile))
		}
	}
	return c, nil
}

func loadTLS(opts Options) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         opts.ServerName,
		InsecureSkipVerify: opts.Insecure,
	}
	if opts.Insecure && opts.CACert != "" {
		return nil, configErr("--insecure and --cacert contradict each other")
	}
	if opts.CACert != "" {
		pem, err := os.ReadFile(opts.CACert)
		if err != nil {
			return nil, configErr("reading --cacert: %v", unwrapPath(err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, configErr("--cacert %s: no PEM certificate in it", show(opts.CACert))
		}
	}
	switch {
	case opts.Cert != "" && opts.Key == "":
		return nil, configErr("--cert needs --key")
	case opts.Cert == "" && opts.Key != "":
		return nil, configErr("--key needs --cert")
	case opts.Cert != "":
		for _, f := range []struct{ flag, path string }{{"--cert", opts.Cert}, {"--key", opts.Key}} {
			if _, err := os.Stat(f.path); err != nil {
				return nil, configErr("reading %s: %v", f.flag, unwrapPath(err))
			}
		}
		pair, err := tls.LoadX509KeyPair(opts.Cert, opts.Key)
		if err != nil {
			return nil, configErr("--cert %s / --key %s: %v", show(opts.Cert), show(opts.Key), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// unwrapPath turns "open /x: no such file or directory" into a message that
// keeps the path once.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", show(pe.Path), pe.Err)
	}
	return err
}

// show quotes a user-given string that would break a one-line message.
func show(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// URL is the URL checked, for messages.
func (c *Checker) URL() string { return c.url.String() }

// Endpoint is what the URL's path asks Patroni.
func (c *Checker) Endpoint() Endpoint { return c.endpoint }

// Result is what one check found.
type Result struct {
	Class    Class
	Err      error // why not eligible; nil when eligible
	Status   int   // HTTP status of the last answer, 0 if none
	Patroni  Patroni
	HasBody  bool // Patroni holds a parsed body
	Elapsed  time.Duration
	Attempts []Attempt
}

// Eligible reports whether this node may hold the VIP.
func (r Result) Eligible() bool { return r.Class == Eligible }

// Attempt records one try, with times measured from the start of the check.
type Attempt struct {
	Start     time.Duration
	Addr      string        // remote address connected to, if any
	Connected time.Duration // TCP connected, 0 if never
	Secured   time.Duration // TLS handshake done, 0 if never or plain HTTP
	FirstByte time.Duration // first byte of the answer, 0 if none
	Status    int
	Err       error
}

// run is the state of one Check: the attempts so far and the clock. Trace
// hooks may be called from the net package's goroutines, hence the lock.
type run struct {
	start    time.Time
	mu       sync.Mutex
	attempts []Attempt
}

func (r *run) since() time.Duration { return time.Since(r.start) }

// begin starts attempt number len(attempts) and returns its index.
func (r *run) begin() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, Attempt{Start: r.since()})
	return len(r.attempts) - 1
}

// note records something about attempt i (or the current one if i < 0).
func (r *run) note(i int, f func(*Attempt)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 0 {
		i = len(r.attempts) - 1
	}
	if i >= 0 && i < len(r.attempts) {
		f(&r.attempts[i])
	}
}

func (r *run) snapshot() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// Check asks Patroni once (plus retries after transport errors) and judges
// the answer. ctx carries the only deadline: connect, TLS, headers, body and
// the pauses between retries all end with it. Cancelling ctx for any other
// reason (a signal) gives class Interrupted.
func (c *Checker) Check(ctx context.Context) Result {
	r := &run{start: time.Now()}
	res := c.check(ctx, r)
	res.Elapsed = r.since()
	res.Attempts = r.snapshot()
	return res
}

func (c *Checker) check(ctx context.Context, r *run) Result {
	client := c.client(r)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.url.String(), nil)
	if err != nil {
		return Result{Class: Config, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	if c.opts.User != "" {
		req.SetBasicAuth(c.opts.User, c.password)
	}

	resp, err := client.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		cl, msg := c.explain(ctx, r, err)
		return Result{Class: cl, Err: msg}
	}
	defer resp.Body.Close()

	res := Result{Status: resp.StatusCode}
	var b []byte
	if !(c.opts.StatusOnly && resp.StatusCode == http.StatusOK) {
		b, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		switch {
		case len(b) > MaxBody:
			return Result{Class: BadResponse, Status: resp.StatusCode,
				Err: fmt.Errorf("%d with a body over %d KiB: not Patroni", resp.StatusCode, MaxBody>>10)}
		case err != nil && resp.StatusCode == http.StatusOK:
			// A 200 whose body never arrived whole tells nothing.
			cl, msg := c.explain(ctx, r, err)
			if cl != Timeout && cl != Interrupted {
				cl = BadResponse
			}
			return Result{Class: cl, Status: resp.StatusCode, Err: fmt.Errorf("reading the body of a %d: %w", resp.StatusCode, msg)}
		case err != nil:
			b = nil // any other status decides without its body
		}
	}
	res.Class, res.Patroni, res.Err = Judge(c.endpoint, resp.StatusCode, b, c.opts.StatusOnly)
	res.HasBody = res.Patroni.State != ""
	return res
}

// client builds a fresh client for one check. Nothing is pooled or reused:
// the process makes one request and exits.
func (c *Checker) client(r *run) *retryablehttp.Client {
	// No proxy is ever taken from the environment (oneShot dials the URL's
	// host itself): the check talks to the local node.
	dialer := &net.Dialer{Timeout: c.opts.ConnectTimeout, KeepAlive: -1}
	hc := &http.Client{
		Transport: &recorder{next: &oneShot{c: c, dialer: dialer, run: r}, run: r},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, and a wrong one
		},
	}
	wait := c.opts.RetryWait
	return &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil, // its default logs every request to stderr
		RetryMax:     c.opts.Retries,
		RetryWaitMin: wait,
		RetryWaitMax: wait,
		Backoff: func(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
			return wait
		},
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			return c.retryable(ctx, err), nil
		},
		// Give back the last answer or error as it was; the default drops
		// the response and wraps the error in "giving up after…".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// retryable reports whether a failed attempt deserves another: only
// transport errors, never an HTTP answer (a 503 is Patroni's "no"), never a
// certificate problem or a peer that is not speaking HTTP, and only while the deadline leaves room for a full
// connect after the pause.
func (c *Checker) retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	// A connect that timed out is worth one more SYN; a read that timed out
	// already used the whole deadline.
	if cl, _ := classifyTransport(err); cl != Unreachable && !(cl == Timeout && isDial(err)) {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < c.opts.RetryWait+c.opts.ConnectTimeout {
		return false
	}
	return true
}

// dialTLS connects and completes the TLS handshake within one
// ConnectTimeout, so that --connect-timeout bounds both together.
func (c *Checker) dialTLS(ctx context.Context, d *net.Dialer, r *run, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := c.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	r.note(-1, func(a *Attempt) { a.Secured = r.since() })
	return conn, nil
}

// recorder is the transport as seen by retryablehttp: each RoundTrip is one
// attempt, recorded with its timings.
type recorder struct {
	next http.RoundTripper
	run  *run
}

func (t *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r := t.run
	i := r.begin()
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, addr string, err error) {
			if err == nil {
				at := r.since()
				r.note(i, func(a *Attempt) { a.Connected, a.Addr = at, addr })
			}
		},
		GotFirstResponseByte: func() {
			at := r.since()
			r.note(i, func(a *Attempt) { a.FirstByte = at })
		},
	}
	resp, err := t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	r.note(i, func(a *Attempt) {
		if err != nil {
			a.Err = err
		} else {
			a.Status = resp.StatusCode
		}
	})
	return resp, err
}
