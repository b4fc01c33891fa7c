package check

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// newClient builds the HTTP client of a Checker: net/http's Transport as a
// client of one local peer. No proxy from the environment (the check talks
// to its own node), no keep-alive (each check asks afresh: a connection
// kept from the last poll could hide a Patroni that no longer accepts), no
// HTTP/2, no compression (the body is bounded as sent), the header bounded.
func (c *Checker) newClient() *retryablehttp.Client {
	dialer := &net.Dialer{KeepAlive: -1}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
			defer cancel()
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &connectError{addr: addr, err: err, limit: c.opts.ConnectTimeout}
			}
			return conn, nil
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxHeader,
		ForceAttemptHTTP2:      false,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if c.tls != nil {
		// The handshake is dialled here rather than by the Transport so
		// that --connect-timeout bounds connect and handshake together.
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dialTLS(ctx, dialer, network, addr)
		}
	}
	hc := &http.Client{
		Transport: recorder{next: tr},
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

// retryable reports whether a failed attempt deserves another: only a peer
// that gave no answer at all (refused, reset, closed, a connect or
// handshake that timed out), never an HTTP answer (a 503 is Patroni's
// "no"; a malformed one is an answer too), never a certificate problem,
// and only while the deadline leaves room for a full connect after the
// pause.
func (c *Checker) retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	r := runOf(ctx)
	if r != nil && r.last().FirstByte > 0 {
		return false
	}
	if cl, _ := classifyTransport(err); cl != Unreachable && !(cl == Timeout && isConnect(err)) {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < c.opts.RetryWait+c.opts.ConnectTimeout {
		return false
	}
	return true
}

// dialTLS connects and completes the TLS handshake within one
// ConnectTimeout.
func (c *Checker) dialTLS(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &connectError{addr: addr, err: err, limit: c.opts.ConnectTimeout}
	}
	if r := runOf(ctx); r != nil {
		at := r.since()
		r.note(-1, func(a *Attempt) { a.Connected, a.Addr = at, addr })
	}
	cfg := c.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &connectError{addr: addr, err: err, limit: c.opts.ConnectTimeout, handshake: true}
	}
	if r := runOf(ctx); r != nil {
		at := r.since()
		r.note(-1, func(a *Attempt) { a.Secured = at })
	}
	return conn, nil
}

// connectError is a failure to connect or to finish the TLS handshake,
// before any request was sent.
type connectError struct {
	addr      string
	err       error
	limit     time.Duration // the connect timeout
	handshake bool
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// recorder is the transport as seen by retryablehttp: each RoundTrip is one
// attempt, recorded with its timings in the run carried by the context.
type recorder struct{ next http.RoundTripper }

func (t recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r := runOf(req.Context())
	if r == nil {
		return t.next.RoundTrip(req)
	}
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

type runKey struct{}

func withRun(ctx context.Context, r *run) context.Context { return context.WithValue(ctx, runKey{}, r) }

func runOf(ctx context.Context) *run {
	r, _ := ctx.Value(runKey{}).(*run)
	return r
}
