// Package sink delivers the check's log events where operators read them:
// the systemd journal (native protocol, with structured fields), syslog
// (/dev/log), or stderr. Each sink is a zerolog.LevelWriter: zerolog
// renders an event as one JSON object, and the sink re-renders it in its
// own format. Sockets are opened on the first event, so a run that logs
// nothing costs nothing, and every write is bounded by a deadline.
package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// event is a zerolog event taken apart.
type event struct {
	level   zerolog.Level
	message string
	fields  []field // sorted by key, without level and message
}

type field struct{ key, value string }

// decode parses one zerolog JSON event. Numbers keep their text.
func decode(level zerolog.Level, p []byte) (event, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return event{}, fmt.Errorf("log event is not JSON: %w", err)
	}
	ev := event{level: level}
	for k, v := range m {
		switch k {
		case zerolog.LevelFieldName:
			continue
		case zerolog.MessageFieldName:
			ev.message, _ = v.(string)
			continue
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case nil:
			continue
		default:
			b, _ := json.Marshal(v)
			s = string(b)
		}
		ev.fields = append(ev.fields, field{k, s})
	}
	sort.Slice(ev.fields, func(i, j int) bool { return ev.fields[i].key < ev.fields[j].key })
	return ev, nil
}

// Stderr writes "patroni-vip-check: message" lines for a person at a
// terminal, with "warning:" or "error:" where it applies.
type Stderr struct{ W io.Writer }

func (s Stderr) Write(p []byte) (int, error) { return s.WriteLevel(zerolog.NoLevel, p) }

func (s Stderr) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	ev, err := decode(l, p)
	if err != nil {
		return 0, err
	}
	prefix := ""
	switch {
	case l == zerolog.WarnLevel:
		prefix = "warning: "
	case l >= zerolog.ErrorLevel && l <= zerolog.PanicLevel:
		prefix = "error: "
	}
	if _, err := fmt.Fprintf(s.W, "%s: %s%s\n", Ident, prefix, ev.message); err != nil {
		return 0, err
	}
	return len(p), nil
}

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
