package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// explain classifies a failed request and words it for a person: what was
// being done, with whom, and what went wrong.
func (c *Checker) explain(ctx context.Context, r *run, err error) (Class, error) {
	host := c.url.Host
	if ctx.Err() != nil {
		phase := "connecting"
		switch a := r.last(); {
		case a.FirstByte > 0:
			phase = "reading the answer"
		case a.Secured > 0:
			phase = "connected, waiting for the answer"
		case a.Connected > 0 && c.tls != nil:
			phase = "in the TLS handshake"
		case a.Connected > 0:
			phase = "connected, waiting for the answer"
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return Interrupted, fmt.Errorf("interrupted after %v (%s to %s)", round(r.since()), phase, host)
		}
		return Timeout, fmt.Errorf("no answer from %s within %v (%s)", host, round(r.since()), phase)
	}
	var ce *connectError
	if errors.As(err, &ce) {
		return explainConnect(ce)
	}
	cl, msg := classifyTransport(err)
	// An answer whose header is broken is still an answer: the peer spoke,
	// and what it said is not Patroni's.
	if r.last().FirstByte > 0 && cl != Timeout {
		cl = BadResponse
		if !strings.HasPrefix(msg.Error(), "malformed") {
			msg = fmt.Errorf("malformed answer from %s: %w", host, msg)
		}
	}
	return cl, msg
}

// explainBody classifies a failure while reading a 200's body: a peer that
// timed out or was interrupted is that; anything else is a bad answer.
func (c *Checker) explainBody(ctx context.Context, r *run, err error) (Class, error) {
	cl, msg := c.explain(ctx, r, err)
	if cl != Timeout && cl != Interrupted {
		cl = BadResponse
	}
	return cl, msg
}

// explainConnect words a failure to connect or to finish the handshake.
func explainConnect(e *connectError) (Class, error) {
	var ne net.Error
	timedOut := errors.Is(e.err, context.DeadlineExceeded) || errors.As(e.err, &ne) && ne.Timeout()
	switch {
	case e.handshake && timedOut:
		return Timeout, fmt.Errorf("TLS handshake with %s: no answer within %v", e.addr, e.limit)
	case e.handshake:
		// Whatever ended it (a bad certificate, a peer that dropped the
		// connection on hello, one that does not speak TLS), the peer is
		// not the Patroni this check trusts.
		_, msg := classifyTransport(e.err)
		return TLS, fmt.Errorf("TLS handshake with %s: %w", e.addr, msg)
	case timedOut:
		return Timeout, fmt.Errorf("connecting to %s: no connection within %v", e.addr, e.limit)
	}
	cl, msg := classifyTransport(e.err)
	return cl, msg
}

// classifyTransport sorts an error from the HTTP client into a reason class
// and strips Go's "Get URL:" wrapping, which repeats what the log line says.
func classifyTransport(err error) (Class, error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		ne      net.Error
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		name    x509.HostnameError
		invalid x509.CertificateInvalidError
		header  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case errors.As(err, &dnsErr):
		return Unreachable, fmt.Errorf("looking up %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &name),
		errors.As(err, &invalid), errors.As(err, &header), errors.As(err, &alert):
		return TLS, err
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports the peer's alert (e.g. "certificate required"
		// when Patroni's verify_client wants a client certificate) this way.
		return TLS, err
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout, err
	case errors.As(err, &opErr) && opErr.Op == "dial":
		inner := opErr.Err
		var sys *os.SyscallError
		if errors.As(inner, &sys) {
			inner = sys.Err // "connection refused", not "connect: connection refused"
		}
		addr := "the peer"
		if opErr.Addr != nil {
			addr = opErr.Addr.String()
		}
		return Unreachable, fmt.Errorf("connecting to %s: %w", addr, inner)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Unreachable, errors.New("connection closed without an answer")
	case errors.Is(err, syscall.ECONNRESET):
		return Unreachable, errors.New("connection reset without an answer")
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// http.Client replaces the tls.RecordHeaderError with this text.
		return TLS, err
	}
	return Unreachable, err
}

// isConnect reports whether err ended an attempt before any request was
// sent: a failed connect or handshake.
func isConnect(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}

// round keeps durations in messages readable: 750ms, 1.2ms, 2.5s.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}
