package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Journal writes to systemd-journald's native socket, one datagram per
// event, each field of the event as a journal field (REASON=, URL=, ...),
// so that `journalctl -t patroni-vip-check REASON=timeout` works.
// Protocol: https://systemd.io/JOURNAL_NATIVE_PROTOCOL/
type Journal struct {
	Path     string    // JournalSocket unless testing or redirected
	Deadline time.Time // no write blocks past it
	conn     *net.UnixConn
}

func (j *Journal) Write(p []byte) (int, error) { return j.WriteLevel(zerolog.NoLevel, p) }

func (j *Journal) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	ev, err := decode(l, p)
	if err != nil {
		return 0, err
	}
	if err := send(&j.conn, j.Path, j.Deadline, journalDatagram(ev)); err != nil {
		return 0, fmt.Errorf("journal %s: %w", j.Path, err)
	}
	return len(p), nil
}

// Close closes the socket, if it was opened.
func (j *Journal) Close() error { return closeConn(j.conn) }

func journalDatagram(ev event) []byte {
	var b []byte
	b = appendJournalField(b, "MESSAGE", ev.message)
	b = appendJournalField(b, "PRIORITY", strconv.Itoa(severity(ev.level)))
	b = appendJournalField(b, "SYSLOG_IDENTIFIER", Ident)
	for _, f := range ev.fields {
		if name := journalName(f.key); name != "" {
			b = appendJournalField(b, name, f.value)
		}
	}
	return b
}

// appendJournalField writes KEY=value\n, or, for a value holding a newline,
// KEY\n, its length as a little-endian uint64, the value and \n.
func appendJournalField(b []byte, key, value string) []byte {
	if !strings.ContainsRune(value, '\n') {
		b = append(b, key...)
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, key...)
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

// journalName turns a zerolog key into a journal field name: upper case,
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
	Path     string // SyslogSocket unless testing or redirected
	Deadline time.Time
	conn     *net.UnixConn
	now      func() time.Time
}

const facilityDaemon = 3

func (s *Syslog) Write(p []byte) (int, error) { return s.WriteLevel(zerolog.NoLevel, p) }

func (s *Syslog) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	ev, err := decode(l, p)
	if err != nil {
		return 0, err
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	line := fmt.Appendf(nil, "<%d>%s %s[%d]: %s", facilityDaemon*8+severity(l),
		now().Format(time.Stamp), Ident, os.Getpid(), strings.ReplaceAll(ev.message, "\n", " "))
	if err := send(&s.conn, s.Path, s.Deadline, line); err != nil {
		return 0, fmt.Errorf("syslog %s: %w", s.Path, err)
	}
	return len(p), nil
}

// Close closes the socket, if it was opened.
func (s *Syslog) Close() error { return closeConn(s.conn) }

// send delivers one datagram, connecting on first use. The deadline
// matters: a datagram socket whose reader has stalled blocks the sender.
func send(conn **net.UnixConn, path string, deadline time.Time, msg []byte) error {
	if *conn == nil {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			return err
		}
		*conn = c
	}
	if !deadline.IsZero() {
		// A run that is already late (it was stopped, or starved of CPU)
		// still gets a few milliseconds for its line: that is when the
		// line matters. The caller's watchdog bounds the process anyway.
		(*conn).SetWriteDeadline(later(deadline, time.Now().Add(minWrite)))
	}
	_, err := (*conn).Write(msg)
	return err
}

// minWrite is the least time a write is given.
const minWrite = 5 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func closeConn(c *net.UnixConn) error {
	if c == nil {
		return nil
	}
	return c.Close()
}

// Auto picks the sink at the first event, as the design says: stderr when
// it is a terminal, else the journal's socket if it is there, else
// /dev/log, else stderr. A socket that is there but refuses the event
// passes it to the next. Nothing is looked at before the first event, so a
// run that logs nothing pays nothing.
type Auto struct {
	Terminal    func() bool // whether stderr is a terminal
	Stderr      io.Writer
	JournalPath string
	SyslogPath  string
	Deadline    time.Time
	// NoStderr drops events that would fall back to stderr, for callers
	// that have already said the same thing there.
	NoStderr bool
	chosen   zerolog.LevelWriter
	closer   io.Closer
}

func (a *Auto) Write(p []byte) (int, error) { return a.WriteLevel(zerolog.NoLevel, p) }

func (a *Auto) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if a.chosen != nil {
		return a.chosen.WriteLevel(l, p)
	}
	var errs []error
	if a.Terminal == nil || !a.Terminal() {
		j := &Journal{Path: a.JournalPath, Deadline: a.Deadline}
		s := &Syslog{Path: a.SyslogPath, Deadline: a.Deadline}
		for _, w := range []interface {
			zerolog.LevelWriter
			io.Closer
		}{j, s} {
			n, err := w.WriteLevel(l, p)
			if err == nil {
				a.chosen, a.closer = w, w
				return n, nil
			}
			w.Close()
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if a.NoStderr {
		a.chosen = zerolog.MultiLevelWriter()
	} else {
		a.chosen = Stderr{W: a.Stderr}
	}
	n, err := a.chosen.WriteLevel(l, p)
	return n, errors.Join(append(errs, err)...)
}

// Close closes the socket the sink chose, if any.
func (a *Auto) Close() error {
	if a.closer == nil {
		return nil
	}
	return a.closer.Close()
}

// Fallback passes events to W and, when W fails, says why on Stderr and
// writes the event there instead: an explicit --log journal that cannot
// reach the journal should not lose the line silently.
type Fallback struct {
	W      zerolog.LevelWriter
	Stderr io.Writer
}

func (f Fallback) Write(p []byte) (int, error) { return f.WriteLevel(zerolog.NoLevel, p) }

func (f Fallback) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	_, err := f.W.WriteLevel(l, p)
	if err == nil {
		return len(p), nil
	}
	fmt.Fprintf(f.Stderr, "%s: warning: %v\n", Ident, err)
	return Stderr{W: f.Stderr}.WriteLevel(l, p)
}
