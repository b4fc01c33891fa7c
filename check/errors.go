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
		if as := r.snapshot(); len(as) > 0 {
			switch a := as[len(as)-1]; {
			case a.FirstByte > 0:
				phase = "reading the answer"
			case a.Connected > 0:
				phase = "connected, waiting for the answer"
			}
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return Interrupted, fmt.Errorf("interrupted after %v (%s to %s)", round(r.since()), phase, host)
		}
		return Timeout, fmt.Errorf("no answer from %s within %v (%s)", host, round(r.since()), phase)
	}
	cl, msg := classifyTransport(err)
	if cl == Timeout && isDial(err) {
		return cl, fmt.Errorf("connecting to %s: no connection within %v", host, c.opts.ConnectTimeout)
	}
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
	case errors.Is(err, errHeaderTooLarge):
		return BadResponse, err
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
		return Unreachable, fmt.Errorf("connecting to %s: %w", opErr.Addr, inner)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Unreachable, errors.New("connection closed without an answer")
	case errors.Is(err, syscall.ECONNRESET):
		return Unreachable, errors.New("connection reset without an answer")
	case strings.Contains(err.Error(), "malformed HTTP"):
		// net/http has no typed error for a peer that is not speaking HTTP.
		return BadResponse, err
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// http.Client replaces the tls.RecordHeaderError with this text.
		return TLS, err
	}
	return Unreachable, err
}

func isDial(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
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
