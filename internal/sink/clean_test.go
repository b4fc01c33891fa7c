package sink

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"replica", "replica"},
		{"two words", "two words"},
		{"café ünïcode ✓", "café ünïcode ✓"},
		{"a\nb", `a\nb`},
		{"a\r\nb", `a\r\nb`},
		{"tab\there", `tab\there`},
		{"\x1b[2K", `\x1b[2K`},
		{"nul\x00", `nul\x00`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085next", `c1\u{85}next`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"line\u2028sep", `line\u{2028}sep`},
		{"rtl\u202eoverride", `rtl\u{202e}override`},
	} {
		if got := Clean(tc.in, 100); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanBounds(t *testing.T) {
	if got := Clean(strings.Repeat("a", 10), 10); got != strings.Repeat("a", 10) {
		t.Errorf("a value of exactly the bound was cut: %q", got)
	}
	if got := Clean(strings.Repeat("a", 11), 10); got != "aaaaaaa…" {
		t.Errorf("got %q, want 7 a and an ellipsis", got)
	}
	if got := Clean(strings.Repeat("é", 10), 10); got != "ééé…" || len(got) > 10 {
		t.Errorf("got %q: cut inside a character, or over the bound", got)
	}
	if got := Clean(strings.Repeat("\n", 10), 10); got != `\n\n\n…` {
		t.Errorf("got %q: the bound is on the escaped text", got)
	}
}

// FuzzClean: whatever the input, the output is printable UTF-8 on one
// line, within the bound, and clean text passes unchanged.
func FuzzClean(f *testing.F) {
	f.Add("replica", 64)
	f.Add("\n… sshd[1]: Accepted password for root from 198.51.100.9 port 22 ssh2\x1b[2K", 64)
	f.Add("\xff\xfe\x00", 8)
	f.Add(strings.Repeat("é", 40), 17)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 4 || max > 1<<16 {
			return
		}
		got := Clean(s, max)
		if len(got) > max {
			t.Fatalf("Clean(%q, %d) is %d bytes", s, max, len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Clean(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if r != ' ' && !unicode.IsPrint(r) {
				t.Fatalf("Clean(%q) = %q holds %U", s, got, r)
			}
		}
		if safe(s) && len(s) <= max && got != s {
			t.Fatalf("clean text %q changed to %q", s, got)
		}
	})
}

// The forged line of a hostile peer: a role that holds a newline, a fake
// sshd line and an ANSI erase.
const forged = "replica\n" + `Nov  5 09:04:05 db1 sshd[1]: Accepted password for root from 198.51.100.9 port 22 ssh2` + "\x1b[2K"

// TestNoForgedLines: whatever a peer put in a field or in the message,
// each destination writes one line with the control characters spelled
// out.
func TestNoForgedLines(t *testing.T) {
	emit := func(w *Writer) {
		log := zerolog.New(w)
		log.Info().Str("role", forged).Msg("not primary: 503 (role=" + forged + ")")
	}
	var b bytes.Buffer
	emit(&Writer{Dest: Stderr{W: &b}})
	if n := strings.Count(b.String(), "\n"); n != 1 || strings.ContainsRune(b.String(), 0x1b) {
		t.Errorf("stderr got %d lines: %q", n, b.String())
	}

	c := newCollector(t)
	s := &Syslog{Path: c.path}
	defer s.Close()
	emit(&Writer{Dest: s})
	if got := string(c.next(t)); strings.ContainsAny(got, "\n\r\x1b") {
		t.Errorf("syslog got %q", got)
	}

	j := &Journal{Path: c.path}
	defer j.Close()
	emit(&Writer{Dest: j})
	raw := c.next(t)
	fields, err := parseNative(raw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(fields["MESSAGE"], "\n\x1b") || strings.ContainsAny(fields["ROLE"], "\n\x1b") {
		t.Errorf("journal fields MESSAGE=%q ROLE=%q", fields["MESSAGE"], fields["ROLE"])
	}
	// Each field is one KEY=value line: no binary (length-prefixed) field.
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if !strings.Contains(line, "=") {
			t.Errorf("journal field without '=': %q", line)
		}
	}
}

// TestHugeValuesFitADatagram: a 60 KB role (or message) is cut, so that
// the journal never refuses the datagram as too long and the line never
// falls back to stderr.
func TestHugeValuesFitADatagram(t *testing.T) {
	c := newCollector(t)
	j := &Journal{Path: c.path}
	defer j.Close()
	w := &Writer{Dest: j}
	huge := strings.Repeat("x", 60<<10)
	log := zerolog.New(w)
	log.Info().Str("role", huge).Str("detail", huge).Msg("not primary: " + huge)
	if w.Err() != nil {
		t.Fatalf("not taken: %v", w.Err())
	}
	raw := c.next(t)
	if len(raw) > 8<<10 {
		t.Errorf("datagram of %d bytes", len(raw))
	}
	fields, _ := parseNative(raw)
	if len(fields["ROLE"]) > MaxValue || len(fields["MESSAGE"]) > MaxMessage || !strings.HasSuffix(fields["ROLE"], "…") {
		t.Errorf("ROLE %d bytes, MESSAGE %d bytes", len(fields["ROLE"]), len(fields["MESSAGE"]))
	}
}

// TestStalledDaemonNotTaken: a log socket that is there but has stopped
// reading does not take the line: Auto says so (the caller will log the
// change again later) after the bound, and the line also goes to stderr.
func TestStalledDaemonNotTaken(t *testing.T) {
	c := newCollector(t)
	fill(t, c.path)
	var b bytes.Buffer
	a := &Auto{Stderr: &b, JournalPath: filepath.Join(t.TempDir(), "none"), SyslogPath: c.path,
		Bound: Bound{Deadline: time.Now().Add(100 * time.Millisecond)}}
	defer a.Close()
	w := &Writer{Dest: a}
	start := time.Now()
	log := zerolog.New(w)
	log.Info().Msg("primary: 200")
	if !errors.Is(w.Err(), ErrNotTaken) {
		t.Errorf("a stalled syslog took the line: %v", w.Err())
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("took %v with a 100ms bound", took)
	}
	if !strings.Contains(b.String(), "primary: 200") {
		t.Errorf("stderr got %q", b.String())
	}
}

// fill sends datagrams to a socket nobody reads until it takes no more.
func fill(t *testing.T, path string) {
	t.Helper()
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 1000)
	for i := 0; i < 1e6; i++ {
		conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := conn.Write(msg); err != nil {
			return
		}
	}
	t.Fatal("the socket never filled")
}
