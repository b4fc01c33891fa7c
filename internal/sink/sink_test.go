package sink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// collector is a unix datagram socket that keeps what it receives.
type collector struct {
	path string
	conn *net.UnixConn
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &collector{path: path, conn: conn}
}

func (c *collector) next(t *testing.T) []byte {
	t.Helper()
	buf := make([]byte, 1<<16)
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing received: %v", err)
	}
	return buf[:n]
}

// parseNative reads the journal's native protocol
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): KEY=value lines, or KEY,
// newline, a little-endian uint64 length, the value, newline.
func parseNative(b []byte) (map[string]string, error) {
	fields := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("field without newline")
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			fields[string(line[:eq])] = string(line[eq+1:])
			b = b[nl+1:]
			continue
		}
		key := string(line)
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("%s: no length", key)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("%s: bad length %d", key, n)
		}
		fields[key] = string(b[:n])
		b = b[n+1:]
	}
	for k := range fields {
		if k == "" || k[0] == '_' || strings.ToUpper(k) != k {
			return nil, fmt.Errorf("bad field name %q", k)
		}
	}
	return fields, nil
}

func TestJournalNativeProtocol(t *testing.T) {
	c := newCollector(t)
	j := &Journal{Path: c.path, Bound: Bound{Deadline: time.Now().Add(time.Second)}}
	defer j.Close()
	log := zerolog.New(&Writer{Dest: j})
	log.Warn().Str("reason", "timeout").Int("http_status", 0).Str("url", "http://127.0.0.1:8008/primary").
		Str("detail", "two\nlines").Str("previous-for", "3h12m").Msg("timeout: no answer")
	f, err := parseNative(c.next(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"MESSAGE":           "timeout: no answer",
		"PRIORITY":          "4",
		"SYSLOG_IDENTIFIER": "patroni-vip-check",
		"REASON":            "timeout",
		"HTTP_STATUS":       "0",
		"URL":               "http://127.0.0.1:8008/primary",
		"DETAIL":            `two\nlines`, // spelled out: one line, always
		"PREVIOUS_FOR":      "3h12m",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s=%q, want %q", k, f[k], v)
		}
	}
	if _, ok := f["LEVEL"]; ok {
		t.Error("level sent as a field besides PRIORITY")
	}
}

func TestJournalName(t *testing.T) {
	for in, want := range map[string]string{
		"reason": "REASON", "http_status": "HTTP_STATUS", "previous-for": "PREVIOUS_FOR",
		"_pid": "PID", "9lives": "LIVES", "é": "", strings.Repeat("a", 70): strings.Repeat("A", 64),
	} {
		if got := journalName(in); got != want {
			t.Errorf("journalName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSyslogLine(t *testing.T) {
	c := newCollector(t)
	s := &Syslog{Path: c.path, now: func() time.Time { return time.Date(2026, 11, 5, 9, 4, 5, 0, time.UTC) }}
	defer s.Close()
	log := zerolog.New(&Writer{Dest: s})
	log.Info().Str("reason", "not-eligible").Msg("not primary: 503 from http://127.0.0.1:8008/primary")
	want := fmt.Sprintf("<30>Nov  5 09:04:05 patroni-vip-check[%d]: not primary: 503 from http://127.0.0.1:8008/primary", os.Getpid())
	if got := string(c.next(t)); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSyslogThroughRsyslog hands a line to a real rsyslogd listening on a
// socket of our own, and reads what it wrote to its file.
func TestSyslogThroughRsyslog(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		if os.Getenv("PVC_REQUIRE_RSYSLOG") != "" {
			t.Fatal("rsyslogd not installed (apt-get install rsyslog)")
		}
		t.Skip("rsyslogd not installed")
	}
	dir := t.TempDir()
	sock, out := filepath.Join(dir, "log.sock"), filepath.Join(dir, "messages")
	conf := filepath.Join(dir, "rsyslog.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on")
template(name="plain" type="string" string="%%syslogfacility-text%%.%%syslogseverity-text%% %%programname%% %%procid%%%%msg%%\n")
*.* action(type="omfile" file=%q template="plain")
`, dir, sock, out)), 0o600)
	cmd := exec.Command(rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "pid"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 {
			t.Fatalf("rsyslogd made no socket: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := &Syslog{Path: sock, Bound: Bound{Deadline: time.Now().Add(time.Second)}}
	defer s.Close()
	log := zerolog.New(&Writer{Dest: s})
	log.Info().Msg("not primary: 503 from http://127.0.0.1:8008/primary (role=replica, timeline=4)")
	log.Warn().Msg("timeout: no answer within 750ms")
	want := fmt.Sprintf("daemon.info patroni-vip-check %d not primary: 503 from http://127.0.0.1:8008/primary (role=replica, timeline=4)\n"+
		"daemon.warning patroni-vip-check %d timeout: no answer within 750ms\n", os.Getpid(), os.Getpid())
	var got []byte
	for i := 0; i < 300; i++ {
		got, _ = os.ReadFile(out)
		if len(got) >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if string(got) != want {
		t.Errorf("rsyslog wrote\n%s\nwant\n%s", got, want)
	}
}

func TestStderrLine(t *testing.T) {
	var b bytes.Buffer
	log := zerolog.New(&Writer{Dest: Stderr{W: &b}})
	log.Info().Str("reason", "eligible").Msg("primary: 200 from http://127.0.0.1:8008/primary")
	log.Warn().Msg("timeout: no answer")
	log.Error().Msg("configuration error: --cert needs --key")
	want := "patroni-vip-check: primary: 200 from http://127.0.0.1:8008/primary\n" +
		"patroni-vip-check: warning: timeout: no answer\n" +
		"patroni-vip-check: error: configuration error: --cert needs --key\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestAutoPicks(t *testing.T) {
	journal, syslog := newCollector(t), newCollector(t)
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		name            string
		terminal        bool
		journalPath     string
		syslogPath      string
		journal, syslog bool
		stderr          bool
	}{
		{"terminal wins", true, journal.path, syslog.path, false, false, true},
		{"journal first", false, journal.path, syslog.path, true, false, false},
		{"then syslog", false, missing, syslog.path, false, true, false},
		{"then stderr", false, missing, missing, false, false, true},
	}
	for _, tc := range cases {
		var b bytes.Buffer
		a := &Auto{Terminal: func() bool { return tc.terminal }, Stderr: &b, JournalPath: tc.journalPath, SyslogPath: tc.syslogPath, Bound: Bound{Deadline: time.Now().Add(time.Second)}}
		w := &Writer{Dest: a}
		log := zerolog.New(w)
		log.Info().Msg("hello")
		log.Info().Msg("again")
		if w.Err() != nil {
			t.Errorf("%s: the line was not taken: %v", tc.name, w.Err())
		}
		a.Close()
		if got := received(journal); (got == 2) != tc.journal || got%2 != 0 {
			t.Errorf("%s: journal received %d", tc.name, got)
		}
		if got := received(syslog); (got == 2) != tc.syslog || got%2 != 0 {
			t.Errorf("%s: syslog received %d", tc.name, got)
		}
		if got := strings.Count(b.String(), "\n"); (got == 2) != tc.stderr {
			t.Errorf("%s: stderr got %q", tc.name, b.String())
		}
	}
}

// received counts datagrams waiting on c.
func received(c *collector) int {
	n := 0
	buf := make([]byte, 1<<16)
	for {
		c.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.conn.Read(buf); err != nil {
			return n
		}
		n++
	}
}

// TestStalledReaderDoesNotBlock: a syslog socket whose reader has stopped
// reading fills up; a write then fails at the deadline rather than block.
func TestStalledReaderDoesNotBlock(t *testing.T) {
	c := newCollector(t)
	s := &Syslog{Path: c.path, Bound: Bound{Deadline: time.Now().Add(200 * time.Millisecond)}}
	defer s.Close()
	start := time.Now()
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = s.Send(Line{Level: zerolog.InfoLevel, Message: strconv.Itoa(i) + strings.Repeat("x", 1000)})
	}
	if err == nil {
		t.Fatal("100000 writes to a socket nobody reads all succeeded")
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("blocked for %v with a 200ms deadline", took)
	}
}

func TestFallbackToStderr(t *testing.T) {
	var b bytes.Buffer
	f := Fallback{Dest: &Journal{Path: filepath.Join(t.TempDir(), "none")}, Stderr: &b}
	w := &Writer{Dest: f}
	log := zerolog.New(w)
	log.Info().Msg("primary: 200")
	if !errors.Is(w.Err(), ErrNotTaken) {
		t.Errorf("a line that reached only stderr counted as taken: %v", w.Err())
	}
	out := b.String()
	if !strings.Contains(out, "patroni-vip-check: warning: journal ") || !strings.HasSuffix(out, "patroni-vip-check: primary: 200\n") {
		t.Errorf("stderr got %q", out)
	}
}

// TestAutoLooksAtNothingBeforeTheFirstEvent: most runs log nothing, and
// must not pay for finding out where they would have logged.
func TestAutoLooksAtNothingBeforeTheFirstEvent(t *testing.T) {
	calls := 0
	var b bytes.Buffer
	a := &Auto{Terminal: func() bool { calls++; return true }, Stderr: &b}
	log := zerolog.New(&Writer{Dest: a})
	if calls != 0 {
		t.Fatalf("Terminal called %d times before any event", calls)
	}
	log.Info().Msg("one")
	log.Info().Msg("two")
	if calls != 1 {
		t.Errorf("Terminal called %d times for two events, want 1", calls)
	}
}
