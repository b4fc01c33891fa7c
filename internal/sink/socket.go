package sink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Bound says how long one write may block: until Deadline if set (a run's
// own), and at most Timeout from the write (a resident watcher's), but
// never less than minWrite: a run that is already late (it was stopped, or
// starved of CPU) still gets a few milliseconds for its line, which is
// when the line matters. The caller's watchdog bounds the process anyway.
type Bound struct {
	Deadline time.Time
	Timeout  time.Duration
}

const minWrite = 5 * time.Millisecond

func (b Bound) at(now time.Time) time.Time {
	t := b.Deadline
	if b.Timeout > 0 && (t.IsZero() || now.Add(b.Timeout).Before(t)) {
		t = now.Add(b.Timeout)
	}
	if t.IsZero() {
		return t
	}
	if floor := now.Add(minWrite); t.Before(floor) {
		t = floor
	}
	return t
}

// Journal writes to systemd-journald's native socket, one datagram per
// line, each field as a journal field (REASON=, URL=, ...), so that
// `journalctl -t patroni-vip-check REASON=timeout` works.
// Protocol: https://systemd.io/JOURNAL_NATIVE_PROTOCOL/
type Journal struct {
	Path  string // JournalSocket unless testing or redirected
	Bound Bound
	conn  *net.UnixConn
}

func (j *Journal) Send(l Line) error {
	if err := send(&j.conn, j.Path, j.Bound, journalDatagram(l)); err != nil {
		return fmt.Errorf("journal %s: %w", j.Path, err)
	}
	return nil
}

// Close closes the socket, if it was opened.
func (j *Journal) Close() error { return closeConn(&j.conn) }

func journalDatagram(l Line) []byte {
	var b []byte
	b = appendJournalField(b, "MESSAGE", l.Message)
	b = appendJournalField(b, "PRIORITY", strconv.Itoa(severity(l.Level)))
	b = appendJournalField(b, "SYSLOG_IDENTIFIER", Ident)
	for _, f := range l.Fields {
		if name := journalName(f.Key); name != "" {
			b = appendJournalField(b, name, f.Value)
		}
	}
	return b
}

// appendJournalField writes KEY=value\n. A clean value holds no newline,
// so the protocol's binary form is never needed.
func appendJournalField(b []byte, key, value string) []byte {
	b = append(b, key...)
	b = append(b, '=')
	b = append(b, value...)
	return append(b, '\n')
}

// journalName turns a key into a journal field name: upper case,
// letters, digits and underscores, not starting with an underscore or a
// digit (those are the journal's own), at most 64 characters.
func journalName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), "_0123456789")
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// Syslog writes RFC 3164 lines to a local syslog socket, as glibc's
// syslog(3) does: "<PRI>Mmm dd hh:mm:ss patroni-vip-check[PID]: message",
// facility daemon (keepalived's own).
type Syslog struct {
	Path  string // SyslogSocket unless testing or redirected
	Bound Bound
	conn  *net.UnixConn
	now   func() time.Time
}

const facilityDaemon = 3

func (s *Syslog) Send(l Line) error {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	line := fmt.Appendf(nil, "<%d>%s %s[%d]: %s", facilityDaemon*8+severity(l.Level),
		now().Format(time.Stamp), Ident, os.Getpid(), l.Message)
	if err := send(&s.conn, s.Path, s.Bound, line); err != nil {
		return fmt.Errorf("syslog %s: %w", s.Path, err)
	}
	return nil
}

// Close closes the socket, if it was opened.
func (s *Syslog) Close() error { return closeConn(&s.conn) }

// send delivers one datagram, connecting on first use, within the bound:
// a datagram socket whose reader has stalled blocks the sender. After a
// failed write the socket is closed, so that a restarted daemon's new
// socket is found by the next line.
func send(conn **net.UnixConn, path string, b Bound, msg []byte) error {
	if *conn == nil {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			return err
		}
		*conn = c
	}
	(*conn).SetWriteDeadline(b.at(time.Now()))
	if _, err := (*conn).Write(msg); err != nil {
		closeConn(conn)
		return err
	}
	return nil
}

func closeConn(c **net.UnixConn) error {
	if *c == nil {
		return nil
	}
	err := (*c).Close()
	*c = nil
	return err
}

// absent reports whether err says that no daemon listens at the socket's
// path: no such file, or a file nobody is bound to.
func absent(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}

// Stderr writes "patroni-vip-check: message" lines for a person at a
// terminal, with "warning:" or "error:" where it applies.
type Stderr struct{ W io.Writer }

func (s Stderr) Send(l Line) error {
	prefix := ""
	switch {
	case l.Level == zerolog.WarnLevel:
		prefix = "warning: "
	case l.Level >= zerolog.ErrorLevel && l.Level <= zerolog.PanicLevel:
		prefix = "error: "
	}
	_, err := fmt.Fprintf(s.W, "%s: %s%s\n", Ident, prefix, l.Message)
	return err
}

func (Stderr) Close() error { return nil }

// Auto picks the destination at the first line, as the design says:
// stderr when it is a terminal, else the journal's socket if a journal
// listens there, else /dev/log, else stderr. A socket that is there but
// refuses the line (stalled, full) passes it to the next; if none takes
// it, it goes to stderr and Send reports ErrNotTaken, since under
// keepalived stderr is /dev/null. Nothing is looked at before the first
// line, so a run that logs nothing pays nothing.
type Auto struct {
	Terminal    func() bool // whether stderr is a terminal
	Stderr      io.Writer
	JournalPath string
	SyslogPath  string
	Bound       Bound
	// NoStderr drops lines that would go to stderr, for callers that
	// have already said the same thing there.
	NoStderr bool
	chosen   Destination
}

func (a *Auto) Send(l Line) error {
	if a.chosen != nil {
		err := a.chosen.Send(l)
		if err == nil {
			return nil
		}
		a.chosen.Close()
		a.chosen = nil // try them all again: the daemon may have moved
		return a.pick(l, err)
	}
	return a.pick(l, nil)
}

func (a *Auto) pick(l Line, earlier error) error {
	errs := []error{earlier}
	if a.Terminal == nil || !a.Terminal() {
		for _, d := range []Destination{
			&Journal{Path: a.JournalPath, Bound: a.Bound},
			&Syslog{Path: a.SyslogPath, Bound: a.Bound},
		} {
			err := d.Send(l)
			if err == nil {
				a.chosen = d
				return nil
			}
			d.Close()
			if !absent(err) {
				errs = append(errs, err)
			}
		}
	}
	// stderr is where this line goes: the terminal, or the last resort of
	// a host with no log daemon at all. It counts as taken unless a
	// daemon that is there refused it.
	var last Destination = Stderr{W: a.Stderr}
	if a.NoStderr {
		last = Discard{}
	}
	if err := errors.Join(errs...); err != nil {
		last.Send(l)
		return fmt.Errorf("%w: %w", ErrNotTaken, err)
	}
	a.chosen = last
	return last.Send(l)
}

// Close closes the socket the sink chose, if any.
func (a *Auto) Close() error {
	if a.chosen == nil {
		return nil
	}
	return a.chosen.Close()
}

// Fallback passes lines to Dest and, when Dest fails, says why on Stderr
// and writes the line there instead: an explicit --log journal that cannot
// reach the journal should not lose the line silently. The line still
// counts as not taken.
type Fallback struct {
	Dest   Destination
	Stderr io.Writer
}

func (f Fallback) Send(l Line) error {
	err := f.Dest.Send(l)
	if err == nil {
		return nil
	}
	fmt.Fprintf(f.Stderr, "%s: warning: %s\n", Ident, Clean(err.Error(), MaxMessage))
	Stderr{W: f.Stderr}.Send(l)
	return fmt.Errorf("%w: %w", ErrNotTaken, err)
}

func (f Fallback) Close() error { return f.Dest.Close() }
