// Package check asks one Patroni REST API health endpoint whether this node
// may hold the cluster's virtual IP, within the caller's deadline, and says
// why not. It never logs and never decides an exit code: it returns a Result.
//
// Text in a Result that came from the peer (the body's fields, errors that
// quote what it sent) is raw: whoever prints it must escape it.
package check

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Class is the reason class of a verdict: Eligible, or why not.
type Class string

const (
	Eligible    Class = "eligible"
	NotEligible Class = "not-eligible" // Patroni said no: 503, wrong role, not running
	Unreachable Class = "unreachable"  // refused, reset, closed without an answer, DNS
	Timeout     Class = "timeout"      // no answer within the deadline
	BadResponse Class = "bad-response" // other status, redirect, malformed or oversized answer
	TLS         Class = "tls"          // handshake or certificate failure
	Auth        Class = "auth"         // 401 or 403
	Config      Class = "config"       // bad flags or unreadable files
	Interrupted Class = "interrupted"  // the caller cancelled (a signal)
)

// MaxBody bounds what is read of an answer's body, and MaxHeader of its
// header: a Patroni health answer is about 1 KiB; anything past these is
// not Patroni.
const (
	MaxBody   = 64 << 10
	MaxHeader = 64 << 10
)

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
// or many times (the watch mode reuses one).
type Checker struct {
	opts     Options
	url      *url.URL
	shown    string // the URL for messages
	endpoint Endpoint
	tls      *tls.Config // nil for http
	password string
	client   *retryablehttp.Client
}

// New validates opts and loads the files they name. Every error it returns
// is an *Error of class Config that names the problem; none repeats a
// password the URL may hold.
func New(opts Options) (*Checker, error) {
	shown := Redact(opts.URL)
	u, err := url.Parse(opts.URL)
	if err != nil {
		if shown != opts.URL {
			// The parser's words may quote part of the password.
			return nil, configErr("invalid URL %q: credentials belong in --user and --password-file, not the URL", shown)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return nil, configErr("invalid URL %q: %v", shown, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, configErr("invalid URL %q: scheme must be http or https", shown)
	case u.Host == "" || u.Hostname() == "":
		return nil, configErr("invalid URL %q: no host", shown)
	case u.User != nil:
		return nil, configErr("invalid URL %q: credentials belong in --user and --password-file, not the URL", shown)
	case u.Fragment != "" || strings.Contains(opts.URL, "#"):
		return nil, configErr("invalid URL %q: a fragment means nothing to Patroni", shown)
	}
	if err := checkPort(u); err != nil {
		return nil, configErr("invalid URL %q: %v", shown, err)
	}
	c := &Checker{opts: opts, url: u, shown: shown, endpoint: EndpointFor(u.Path)}

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
	case strings.Contains(opts.User, ":"):
		return nil, configErr("--user %s: a basic auth user cannot hold a colon", quote(opts.User))
	case opts.PasswordFile != "":
		if c.password, err = readPassword(opts.PasswordFile); err != nil {
			return nil, err
		}
	}
	c.client = c.newClient()
	return c, nil
}

// checkPort refuses what url.Parse lets through: a port that is not a
// number from 1 to 65535 (the dialer would fail later with a message that
// names no address).
func checkPort(u *url.URL) error {
	p := u.Port()
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return errors.New("empty port")
		}
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %s is not a number from 1 to 65535", p)
	}
	return nil
}

// URL is the URL checked, for messages: any password replaced by xxxxx.
func (c *Checker) URL() string { return c.shown }

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
// hooks are called from net/http's goroutines, hence the lock.
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

// last is a copy of the latest attempt.
func (r *run) last() Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.attempts) == 0 {
		return Attempt{}
	}
	return r.attempts[len(r.attempts)-1]
}

func (r *run) snapshot() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// Check asks Patroni once (plus retries after transport errors) and judges
// the answer. ctx carries the only deadline: connect, TLS, headers, body and
// the pauses between retries all end with it. Cancelling ctx for any other
// reason (a signal) gives class Interrupted. Check may be called again,
// also concurrently.
func (c *Checker) Check(ctx context.Context) Result {
	r := &run{start: time.Now()}
	res := c.check(withRun(ctx, r), r)
	res.Elapsed = r.since()
	res.Attempts = r.snapshot()
	return res
}

func (c *Checker) check(ctx context.Context, r *run) Result {
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

	resp, err := c.client.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		cl, msg := c.explain(ctx, r, err)
		return Result{Class: cl, Err: msg}
	}
	defer resp.Body.Close()

	var b []byte
	if !(c.opts.StatusOnly && resp.StatusCode == http.StatusOK) {
		b, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		switch {
		case len(b) > MaxBody:
			return Result{Class: BadResponse, Status: resp.StatusCode,
				Err: fmt.Errorf("%d with a body over %d KiB: not Patroni", resp.StatusCode, MaxBody>>10)}
		case err != nil && resp.StatusCode == http.StatusOK:
			// A 200 whose body never arrived whole tells nothing.
			cl, msg := c.explainBody(ctx, r, err)
			return Result{Class: cl, Status: resp.StatusCode, Err: fmt.Errorf("reading the body of a %d: %w", resp.StatusCode, msg)}
		case err != nil:
			b = nil // any other status decides without its body
		}
	}
	res := Result{Status: resp.StatusCode}
	res.Class, res.Patroni, res.Err = Judge(c.endpoint, resp.StatusCode, b, c.opts.StatusOnly)
	res.HasBody = res.Patroni.State != ""
	return res
}
