package cluster

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LogLine is one datagram received on a node's /dev/log.
type LogLine struct {
	At       time.Time // when the collector received it
	Priority int       // facility*8 + severity, -1 if the line had no <PRI>
	Tag      string    // program name, e.g. "patroni-vip-check" or "Keepalived_vrrp"
	PID      int
	Message  string
	Raw      string
}

// Severity is the syslog severity (0 emerg … 7 debug), or -1 if unknown.
func (l LogLine) Severity() int {
	if l.Priority < 0 {
		return -1
	}
	return l.Priority % 8
}

func (l LogLine) String() string {
	return l.At.Format("15:04:05.000") + " " + l.Raw
}

// rfc3164 matches "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG"; a timestamp in RFC 3339 form and a
// missing [PID] are accepted too, the way syslog daemons do.
var rfc3164 = regexp.MustCompile(`^<(\d{1,3})>(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\dT\S+ )?(?:\S+ )??([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$`)

func parseSyslog(at time.Time, raw string) LogLine {
	l := LogLine{At: at, Priority: -1, Raw: raw}
	m := rfc3164.FindStringSubmatch(raw)
	if m == nil {
		l.Message = raw
		return l
	}
	l.Priority, _ = strconv.Atoi(m[1])
	l.Tag = m[2]
	l.PID, _ = strconv.Atoi(m[3])
	l.Message = m[4]
	return l
}

// collector listens on a unix datagram socket that a node's private mount namespace sees
// as /dev/log, keeps every line in memory and appends it to a file for people.
type collector struct {
	conn *net.UnixConn
	file *os.File
	mu   sync.Mutex
	logs []LogLine
	done chan struct{}
}

func newCollector(sock, file string) (*collector, error) {
	_ = os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	// Writable by every user, like /dev/log: a check run as a non-root script_user logs too.
	if err := os.Chmod(sock, 0o666); err != nil {
		conn.Close()
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &collector{conn: conn, file: f, done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *collector) run() {
	defer close(c.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return // closed
		}
		raw := string(buf[:n])
		for len(raw) > 0 && (raw[len(raw)-1] == '\n' || raw[len(raw)-1] == 0) {
			raw = raw[:len(raw)-1]
		}
		l := parseSyslog(time.Now(), raw)
		c.mu.Lock()
		c.logs = append(c.logs, l)
		fmt.Fprintln(c.file, l.String())
		c.mu.Unlock()
	}
}

// lines returns the lines received so far whose tag is tag ("" for all).
func (c *collector) lines(tag string) []LogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []LogLine
	for _, l := range c.logs {
		if tag == "" || l.Tag == tag {
			out = append(out, l)
		}
	}
	return out
}

func (c *collector) close() {
	c.conn.Close()
	<-c.done
	c.file.Close()
}

// CheckState reads a patroni-vip-check log line: its state headline ("primary",
// "not primary", "timeout", "unreachable", "bad response", …) and whether the line is a
// reminder ("still not primary since …"). Lines read "HEADLINE: detail".
func CheckState(l LogLine) (state string, reminder bool) {
	head, _, _ := strings.Cut(l.Message, ": ")
	if rest, ok := strings.CutPrefix(head, "still "); ok {
		state, _, _ = strings.Cut(rest, " since ")
		return state, true
	}
	return head, false
}

// CheckEligible reports whether a state read by CheckState is the eligible one: the
// endpoint's own name ("primary" for /primary), not "not primary" nor an error class.
func CheckEligible(state string) bool {
	switch state {
	case "", "timeout", "unreachable", "interrupted", "bad response", "TLS failure", "auth failure", "configuration error":
		return false
	}
	return !strings.HasPrefix(state, "not ")
}

// StallReport reports whether a line says only that its program was scheduled late — the
// machine stalled it — rather than anything about the cluster: keepalived's "A thread
// timer expired N seconds ago", and the check's watchdog line "the run overran its …
// deadline by …", which by design never touches the check's state. On a loaded
// two-core machine both happen; the suite reports them without counting them as changes
// of state.
func StallReport(l LogLine) bool {
	return strings.HasPrefix(l.Message, "A thread timer expired ") ||
		l.Tag == CheckTag && strings.Contains(l.Message, ": the run overran its ")
}

// WithoutStalls splits lines into those that are not StallReports and those that are.
func WithoutStalls(lines []LogLine) (rest, stalls []LogLine) {
	for _, l := range lines {
		if StallReport(l) {
			stalls = append(stalls, l)
		} else {
			rest = append(rest, l)
		}
	}
	return rest, stalls
}

// WatchFileLine reports whether a line of the watch is about one of its files — its data
// directory, track file or directory, textfile — and so says nothing of the verdict: "data
// directory DIR: cannot watch it (…)", "… : fine again", "still track file FILE: …".
func WatchFileLine(l LogLine) bool {
	if l.Tag != CheckTag {
		return false
	}
	msg := strings.TrimPrefix(l.Message, "still ")
	for _, subject := range []string{"data directory /", "track file /", "track directory /", "textfile /"} {
		if strings.HasPrefix(msg, subject) {
			return true
		}
	}
	return false
}
