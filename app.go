package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/ratelimit"
	"github.com/patroni-vip-check/patroni-vip-check/sink"
)

// app is one run after the flags are parsed: its deadlines, its logger,
// and what it says.
type app struct {
	cfg    config
	stderr io.Writer
	log    zerolog.Logger
	closer io.Closer

	// One deadline for the whole run, split so that the request cannot
	// eat the time that recording its result needs.
	deadline      time.Time // the process is done by now (plus grace)
	httpDeadline  time.Time // the request, retries included
	stateDeadline time.Time // waiting for the state lock
}

// newApp prepares a run. quietStderr is for a caller that has already
// told stderr what will be logged: the log then never falls back to it.
func newApp(cfg config, start time.Time, stderr io.Writer, quietStderr bool) *app {
	if cfg.timeout <= 0 {
		cfg.timeout = 800 * time.Millisecond // bad flags: report them in the default time
	}
	if cfg.stateDir == "" {
		cfg.stateDir = defaultStateDir()
	}
	if cfg.logTarget == "" {
		cfg.logTarget = "auto"
	}

	// State and logging take well under a millisecond on tmpfs; keep a
	// tenth of the deadline (5ms to 50ms) for them and for exiting.
	reserve := min(max(cfg.timeout/10, 5*time.Millisecond), 50*time.Millisecond)
	a := &app{
		cfg:           cfg,
		stderr:        stderr,
		deadline:      start.Add(cfg.timeout),
		httpDeadline:  start.Add(cfg.timeout - reserve),
		stateDeadline: start.Add(cfg.timeout - reserve/2),
	}
	a.log = zerolog.New(a.writer(quietStderr))
	return a
}

func (a *app) writer(quietStderr bool) zerolog.LevelWriter {
	socket := func(def string) string {
		if a.cfg.logSocket != "" {
			return a.cfg.logSocket
		}
		return def
	}
	switch a.cfg.logTarget {
	case "stderr":
		if quietStderr {
			return zerolog.MultiLevelWriter()
		}
		return sink.Stderr{W: a.stderr}
	case "none":
		return zerolog.MultiLevelWriter() // writes nowhere
	case "journal":
		j := &sink.Journal{Path: socket(sink.JournalSocket), Deadline: a.deadline}
		a.closer = j
		return sink.Fallback{W: j, Stderr: a.stderr}
	case "syslog":
		s := &sink.Syslog{Path: socket(sink.SyslogSocket), Deadline: a.deadline}
		a.closer = s
		return sink.Fallback{W: s, Stderr: a.stderr}
	}
	f, _ := a.stderr.(*os.File)
	auto := &sink.Auto{
		Terminal:    f != nil && isTerminal(int(f.Fd())),
		Stderr:      a.stderr,
		JournalPath: sink.JournalSocket,
		SyslogPath:  sink.SyslogSocket,
		Deadline:    a.deadline,
		NoStderr:    quietStderr,
	}
	a.closer = auto
	return auto
}

// report records the result in the state file and logs what the policy
// says is worth a line. The exit status never depends on any of it.
func (a *app) report(c *check.Checker, res check.Result) {
	ev := event{res: res, insecure: a.cfg.insecure}
	if c != nil {
		ev.url, ev.endpoint = c.URL(), c.Endpoint()
	} else {
		ev.url, ev.endpoint = a.cfg.url, check.EndpointFor("")
	}
	a.record(stateName(a.cfg, ev.url), ev)
}

// reportBadArgs logs a command line that does not parse, once per distinct
// command line (and a reminder per --remind), like any other bad state.
func (a *app) reportBadArgs(args []string, err error) {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	name := "args-" + hex.EncodeToString(sum[:8]) + ".state"
	a.record(name, event{
		res:       check.Result{Class: check.Config, Err: fmt.Errorf("invalid command line: %w", err)},
		url:       a.cfg.url,
		endpoint:  check.EndpointFor(""),
		badArgs:   strings.Join(args, " "),
		noVerbose: true,
	})
}

func (a *app) record(name string, ev event) {
	defer a.close()
	class := string(ev.res.Class)
	bad := ev.res.Class != check.Eligible
	now := time.Now()
	policy := ratelimit.Policy{Remind: a.cfg.remind}
	if a.cfg.noState {
		_, d := policy.Next(nil, class, bad, now)
		a.emit(ev, d, nil)
		return
	}
	dir, err := ratelimit.OpenDir(a.cfg.stateDir)
	if err != nil {
		_, d := policy.Next(nil, class, bad, now)
		a.emit(ev, d, fmt.Errorf("%w; logging every check until it is fixed", err))
		return
	}
	defer dir.Close()
	tx, err := dir.Begin(name, a.stateDeadline)
	if err != nil {
		_, d := policy.Next(nil, class, bad, now)
		a.emit(ev, d, err)
		return
	}
	defer tx.Close()
	prev, loadErr := tx.Load()
	next, d := policy.Next(prev, class, bad, now)
	if loadErr != nil {
		loadErr = fmt.Errorf("%w; starting afresh", loadErr)
	}
	// Save before logging: a line logged for a state that was not saved
	// would be logged again by the next run.
	saveErr := tx.Save(next)
	problem := errors.Join(tx.Repaired, loadErr, saveErr)
	if a.cfg.verbose && !ev.noVerbose {
		fmt.Fprintf(a.stderr, "patroni-vip-check: state: %s (%s)\n", d.Kind, filepath.Join(dir.Path(), name))
	}
	if d.Kind == ratelimit.Quiet && problem == nil {
		return
	}
	a.emit(ev, d, problem)
}

func (a *app) close() {
	if a.closer != nil {
		a.closer.Close()
	}
}

// stateName is the state file of a check: the URL and every option that
// changes Patroni's answer or who asks, not timeouts. The readable part
// helps a person find the file; the hash keeps checks apart.
func stateName(cfg config, url string) string {
	key := strings.Join([]string{
		"url=" + url,
		"status-only=" + strconv.FormatBool(cfg.statusOnly),
		"cacert=" + cfg.cacert,
		"cert=" + cfg.cert,
		"servername=" + cfg.servername,
		"insecure=" + strconv.FormatBool(cfg.insecure),
		"user=" + cfg.user,
	}, "\n")
	sum := sha256.Sum256([]byte(key))
	return slug(url) + "-" + hex.EncodeToString(sum[:8]) + ".state"
}

// slug keeps letters, digits, dots and dashes of the URL after its scheme.
func slug(url string) string {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		rest = url
	}
	b := []byte(rest)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	s := strings.Trim(string(b), "_.")
	if len(s) > 48 {
		s = s[:48]
	}
	if s == "" || s[0] == '.' {
		s = "check" + s
	}
	return s
}
