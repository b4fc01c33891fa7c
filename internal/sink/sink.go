// Package sink delivers the check's log lines where operators read them:
// the systemd journal (native protocol, with structured fields), syslog
// (/dev/log), or stderr.
//
// The command builds each event with zerolog, which renders it as one JSON
// object; Writer decodes that object once (as zerolog's own journald
// writer does), escapes and bounds every piece of text in it, and hands
// the resulting Line to a Destination. So no destination ever sees text
// that could break a line: a role of "\nsshd[1]: Accepted password..." from
// a hostile peer arrives as one line with "\n" spelled out. Writer also
// remembers whether the destination took the line, which the caller needs
// to log each change of state at least once.
//
// Sockets are opened on the first line, so a run that logs nothing costs
// nothing, and every write is bounded in time.
package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/rs/zerolog"
)

// Ident is the name every line is logged under: journalctl -t, syslog tag.
const Ident = "patroni-vip-check"

// Default socket paths.
const (
	JournalSocket = "/run/systemd/journal/socket"
	SyslogSocket  = "/dev/log"
)

// Bounds of a line, after escaping: far above any line of the check's own,
// far below what the journal and syslog daemons refuse or cut (a datagram
// of a few KiB).
const (
	MaxValue   = 512  // bytes of one field
	MaxMessage = 2048 // bytes of the message
	MaxFields  = 32
)

// Line is one log line as every destination writes it: its level, the
// message for people and the fields for machines, all of it clean
// (printable UTF-8, no line breaks) and bounded.
type Line struct {
	Level   zerolog.Level
	Message string
	Fields  []Field // sorted by key; neither level nor message among them
}

// Field is one key and its value, both clean.
type Field struct{ Key, Value string }

// A Destination takes lines. Send reports whether the line was taken.
type Destination interface {
	Send(Line) error
	Close() error
}

// ErrNotTaken marks a line a destination did not take. Send's error wraps
// it when the line went no further than a fallback (stderr, which
// keepalived points at /dev/null), so that the caller logs it again later.
var ErrNotTaken = errors.New("line not taken by the log")

// Writer is the zerolog.LevelWriter in front of a Destination. It is not
// safe for concurrent use; each lifecycle gives it one goroutine.
type Writer struct {
	Dest Destination
	err  error
}

func (w *Writer) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

func (w *Writer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	line, err := Decode(l, p)
	if err == nil {
		err = w.Dest.Send(line)
	}
	// The outcome is kept for Err, not returned: zerolog would print a
	// failed write on the process's stderr, which may be a full pipe.
	w.err = err
	return len(p), nil
}

// Err is the outcome of the last line written: nil if the destination
// took it.
func (w *Writer) Err() error { return w.err }

// Close closes the destination.
func (w *Writer) Close() error { return w.Dest.Close() }

// Decode turns one zerolog JSON event into a clean Line. Numbers keep
// their text.
func Decode(level zerolog.Level, p []byte) (Line, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return Line{}, fmt.Errorf("log event is not JSON: %w", err)
	}
	line := Line{Level: level}
	for k, v := range m {
		switch k {
		case zerolog.LevelFieldName:
			continue
		case zerolog.MessageFieldName:
			s, _ := v.(string)
			line.Message = Clean(s, MaxMessage)
			continue
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = fmt.Sprint(v)
		case nil:
			continue
		default:
			b, _ := json.Marshal(v)
			s = string(b)
		}
		line.Fields = append(line.Fields, Field{Clean(k, 64), Clean(s, MaxValue)})
	}
	sort.Slice(line.Fields, func(i, j int) bool { return line.Fields[i].Key < line.Fields[j].Key })
	if len(line.Fields) > MaxFields {
		line.Fields = line.Fields[:MaxFields]
	}
	return line, nil
}

// Discard takes every line and writes it nowhere: --log none.
type Discard struct{}

func (Discard) Send(Line) error { return nil }
func (Discard) Close() error    { return nil }

// severity maps zerolog levels to syslog severities (RFC 5424 6.2.1).
func severity(l zerolog.Level) int {
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return 7
	case zerolog.InfoLevel, zerolog.NoLevel:
		return 6
	case zerolog.WarnLevel:
		return 4
	case zerolog.ErrorLevel:
		return 3
	default: // fatal, panic
		return 2
	}
}
