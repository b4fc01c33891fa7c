// Package cmdline is the check's command-line grammar: the flags of a
// single run (keepalived's vrrp_script) and of patroni-vip-check watch,
// their defaults and limits, the help text, and the check options they
// give. The run and the doctor both read command lines with it, so that
// the doctor judges a vrrp_script line or a unit's ExecStart exactly as
// the check will read it.
package cmdline

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/patroni-vip-check/patroni-vip-check/check"
)

// Where things are on a node, as the packages lay them out, and the
// defaults that the generator writes into keepalived.conf.
const (
	// Binary is the check as the packages install it.
	Binary          = "/usr/bin/patroni-vip-check"
	DefaultURL      = "http://127.0.0.1:8008/primary"
	DefaultTimeout  = 800 * time.Millisecond
	DefaultInterval = 200 * time.Millisecond
	// PGDataInterval and PGDataTimeout are the watch's defaults with --pgdata.
	// PostgreSQL's files wake it on a promotion or a stop, so its polls are
	// left with what changes none of them: a Patroni that hangs or is killed.
	// A poll every second costs the node a fifth of one every 200ms, and with
	// a 400ms deadline still takes the VIP off a node whose Patroni hangs
	// within 1.4 s (the poll after the hang, timed out); a full CPU has kept
	// Patroni's answers within 400ms (BENCHMARKS.md).
	PGDataInterval = time.Second
	PGDataTimeout  = 400 * time.Millisecond
	// DefaultTrackFile is in a directory that tmpfiles.d makes at boot,
	// before keepalived starts, and whose name the SELinux policy lets
	// keepalived read (/run/keepalived.*).
	DefaultTrackFile = "/run/keepalived-patroni-vip-check/eligible"
	// RootStateDir is root's state directory, and the parent of every
	// other user's: root-owned and not writable by anyone else, so that
	// no user can create another's directory first.
	RootStateDir = "/run/patroni-vip-check"
	// MaxTimeout bounds --timeout and --connect-timeout: far beyond any
	// keepalived timeout, and small enough that no deadline overflows.
	MaxTimeout = 10 * time.Minute
	// MinInterval and MaxInterval bound --interval.
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
	// MaxRemind bounds --remind: a year.
	MaxRemind = 365 * 24 * time.Hour
	// RetryWait is the pause before a retry: long enough for a reset
	// listener to come back, short enough to fit twice in the default
	// deadline.
	RetryWait = 25 * time.Millisecond
)

// Mode is which lifecycle a command line is for.
type Mode int

const (
	Once  Mode = 1 << iota // a single check, for keepalived's vrrp_script
	Watch                  // patroni-vip-check watch: resident, keeps a track file
)

// Config is a command line, parsed and checked for consistency. Files it
// names are read later, by check.New.
type Config struct {
	Mode           Mode
	URL            string
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Retries        int
	StatusOnly     bool

	CACert, Cert, Key string
	ServerName        string
	Insecure          bool
	User              string
	PasswordFile      string

	StateDir  string // "" until defaulted: see StateDirOf
	Remind    time.Duration
	Log       string // --log: auto, journal, syslog, stderr, none
	LogSocket string
	Verbose   bool
	NoState   bool
	JSON      bool // once: the verdict as JSON on stdout

	Interval    time.Duration // watch: how often to ask; once: keepalived's, if set
	IntervalSet bool
	TrackFile   string // watch
	Textfile    string // watch
	PGData      string // watch: PostgreSQL's data directory, to wake on its files
	Print       bool   // watch: lines to stdout, no track file (by hand)
	Release     bool   // watch: the unit's ExecStopPost, see README

	Help, Version bool

	trackFileSet bool
	timeoutSet   bool
}

func defaults(m Mode) Config {
	return Config{
		Mode:           m,
		URL:            DefaultURL,
		Timeout:        DefaultTimeout,
		ConnectTimeout: 300 * time.Millisecond,
		Retries:        1,
		Remind:         time.Hour,
		Log:            "auto",
		Interval:       DefaultInterval,
		TrackFile:      DefaultTrackFile,
	}
}

// CheckOptions are the options of package check that the command line
// gives: the one way from flags to a check, for both lifecycles.
func (c Config) CheckOptions(userAgent string) check.Options {
	return check.Options{
		URL:            c.URL,
		ConnectTimeout: c.ConnectTimeout,
		Retries:        c.Retries,
		RetryWait:      RetryWait,
		StatusOnly:     c.StatusOnly,
		CACert:         c.CACert,
		Cert:           c.Cert,
		Key:            c.Key,
		ServerName:     c.ServerName,
		Insecure:       c.Insecure,
		User:           c.User,
		PasswordFile:   c.PasswordFile,
		UserAgent:      userAgent,
	}
}

// flagDef is one flag: its names, the placeholder of its value ("" for a
// switch), its help, the lifecycles it belongs to, and how it is set.
// Salvaged flags are the ones a bad command line still needs: where its
// error is logged, and the track file a watcher that cannot start sets
// to 0.
type flagDef struct {
	names     []string
	value     string
	help      string
	watchHelp string // the help in watch mode, if it differs
	modes     Mode
	salvaged  bool
	set       func(c *Config, v string) error
}

var logTargets = []string{"auto", "journal", "syslog", "stderr", "none"}

// flagDefs is every flag, in the order --help lists them.
var flagDefs = []flagDef{
	{names: []string{"timeout"}, value: "D", modes: Once | Watch,
		help:      "whole-run deadline, state and logging included; keep it below keepalived's script timeout (default 800ms)",
		watchHelp: "deadline of each poll; a poll that cannot finish by then is not eligible (default 800ms, 400ms with --pgdata)",
		set:       func(c *Config, v string) error { c.timeoutSet = true; return setDuration(&c.Timeout, v) }},
	{names: []string{"connect-timeout"}, value: "D", modes: Once | Watch,
		help: "TCP connect and TLS handshake, per attempt (default 300ms)",
		set:  func(c *Config, v string) error { return setDuration(&c.ConnectTimeout, v) }},
	{names: []string{"retries"}, value: "N", modes: Once | Watch,
		help: "extra attempts after transport errors, inside the deadline; an HTTP answer is never retried (default 1)",
		set:  func(c *Config, v string) error { return setCount(&c.Retries, v) }},
	{names: []string{"status-only"}, modes: Once | Watch,
		help: "accept any 200 without reading the body",
		set:  func(c *Config, v string) error { return setBool(&c.StatusOnly, v) }},
	{names: []string{"cacert"}, value: "FILE", modes: Once | Watch,
		help: "CA certificates (PEM) to verify Patroni's certificate",
		set:  func(c *Config, v string) error { return setPath(&c.CACert, v) }},
	{names: []string{"cert"}, value: "FILE", modes: Once | Watch,
		help: "client certificate (PEM), for Patroni's verify_client",
		set:  func(c *Config, v string) error { return setPath(&c.Cert, v) }},
	{names: []string{"key"}, value: "FILE", modes: Once | Watch,
		help: "the client certificate's key (PEM)",
		set:  func(c *Config, v string) error { return setPath(&c.Key, v) }},
	{names: []string{"servername"}, value: "NAME", modes: Once | Watch,
		help: "TLS name to verify when the URL holds an IP address",
		set:  func(c *Config, v string) error { return setWord(&c.ServerName, v) }},
	{names: []string{"insecure"}, modes: Once | Watch,
		help: "do not verify Patroni's certificate (every log line says so)",
		set:  func(c *Config, v string) error { return setBool(&c.Insecure, v) }},
	{names: []string{"user"}, value: "USER", modes: Once | Watch,
		help: "basic auth user",
		set:  func(c *Config, v string) error { return setWord(&c.User, v) }},
	{names: []string{"password-file"}, value: "FILE", modes: Once | Watch,
		help: "basic auth password: the file's first line",
		set:  func(c *Config, v string) error { return setPath(&c.PasswordFile, v) }},
	{names: []string{"state-dir"}, value: "DIR", modes: Once, salvaged: true,
		help: "where de-duplication state is kept (default " + RootStateDir + " for root, " + RootStateDir + "/USER for another user)",
		set:  func(c *Config, v string) error { return setPath(&c.StateDir, v) }},
	{names: []string{"remind"}, value: "D", modes: Once | Watch, salvaged: true,
		help: "while a non-eligible state lasts, log a reminder once per D; 0 never (default 1h)",
		set:  func(c *Config, v string) error { return setDuration(&c.Remind, v) }},
	{names: []string{"log"}, value: "TARGET", modes: Once | Watch, salvaged: true,
		help: "auto, journal, syslog, stderr or none (default auto: stderr if a terminal, else the journal, else /dev/log)",
		set:  func(c *Config, v string) error { return setOneOf(&c.Log, v, logTargets) }},
	{names: []string{"log-socket"}, value: "PATH", modes: Once | Watch, salvaged: true,
		help: "socket for --log journal or syslog (defaults /run/systemd/journal/socket, /dev/log)",
		set:  func(c *Config, v string) error { return setPath(&c.LogSocket, v) }},
	{names: []string{"no-state"}, modes: Once, salvaged: true,
		help: "neither read nor write state: log every result",
		set:  func(c *Config, v string) error { return setBool(&c.NoState, v) }},
	{names: []string{"interval"}, value: "D", modes: Once | Watch,
		help:      "the vrrp_script's interval, when it is a fraction of a second: the check warns when keepalived runs it far less often (keepalived before 2.3.2 ignores a fractional interval)",
		watchHelp: "how often to ask Patroni (default 200ms; 1s with --pgdata, whose files tell of promotions and stops at once)",
		set:       func(c *Config, v string) error { c.IntervalSet = true; return setDuration(&c.Interval, v) }},
	{names: []string{"track-file"}, value: "FILE", modes: Watch, salvaged: true,
		help: "the file keepalived's track_file reads: 1 while eligible, else 0 (default " + DefaultTrackFile + ")",
		set:  setTrackFile},
	{names: []string{"pgdata"}, value: "DIR", modes: Watch,
		help: "PostgreSQL's data directory (Patroni's postgresql.data_dir): ask Patroni at once when PostgreSQL's promote, standby.signal, recovery.signal or postmaster.pid change, then every 20ms for up to 1s, besides every --interval (then 1s) within --timeout (then 400ms)",
		set:  func(c *Config, v string) error { return setPath(&c.PGData, v) }},
	{names: []string{"print"}, modes: Watch,
		help: "watch by hand: print each change of verdict (what the service would log) to stdout, and never touch a track file",
		set:  func(c *Config, v string) error { return setBool(&c.Print, v) }},
	{names: []string{"release"}, modes: Watch, salvaged: true,
		help: "for the unit's ExecStopPost: if no watcher keeps the track file, remove it (no file is FAULT), then exit",
		set:  func(c *Config, v string) error { return setBool(&c.Release, v) }},
	{names: []string{"textfile"}, value: "FILE", modes: Watch,
		help: "also keep a node_exporter textfile with the verdict, its reason, transitions and poll latency",
		set:  func(c *Config, v string) error { return setPath(&c.Textfile, v) }},
	{names: []string{"json"}, modes: Once,
		help: "also print the verdict as one JSON object on stdout, for scripts (its fields are documented in patroni-vip-check(1))",
		set:  func(c *Config, v string) error { return setBool(&c.JSON, v) }},
	{names: []string{"v", "verbose"}, modes: Once | Watch,
		help: "print the request, attempts, timings, Patroni's answer and the verdict to stderr",
		set:  func(c *Config, v string) error { return setBool(&c.Verbose, v) }},
	{names: []string{"version"}, modes: Once | Watch,
		help: "print the version and exit",
		set:  func(c *Config, v string) error { return setBool(&c.Version, v) }},
	{names: []string{"h", "help"}, modes: Once | Watch,
		help: "print this help and exit",
		set:  func(c *Config, v string) error { return setBool(&c.Help, v) }},
}

func lookupFlag(name string) *flagDef {
	for i := range flagDefs {
		if slices.Contains(flagDefs[i].names, name) {
			return &flagDefs[i]
		}
	}
	return nil
}

// Parse parses a command line for mode m. Flags and the URL may come
// in any order, as keepalived users write them; "--" ends the flags. Help
// anywhere among the flags wins over any error.
func Parse(m Mode, args []string) (Config, error) {
	c := defaults(m)
	positional, err := scan(&c, args, false)
	if c.Help || c.Version {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if m == Watch && c.PGData != "" {
		if !c.IntervalSet {
			c.Interval = PGDataInterval
		}
		if !c.timeoutSet {
			c.Timeout = PGDataTimeout
		}
	}
	switch len(positional) {
	case 0:
	case 1:
		c.URL = positional[0]
	default:
		return c, fmt.Errorf("one URL expected, got %d: %s", len(positional), quoteList(positional))
	}
	switch {
	case c.Timeout < 10*time.Millisecond || c.Timeout > MaxTimeout:
		return c, fmt.Errorf("--timeout %v is out of range (10ms to %v)", c.Timeout, MaxTimeout)
	case c.ConnectTimeout <= 0 || c.ConnectTimeout > MaxTimeout:
		return c, fmt.Errorf("--connect-timeout %v is out of range (above 0, at most %v)", c.ConnectTimeout, MaxTimeout)
	case c.Remind > MaxRemind:
		return c, fmt.Errorf("--remind %v is out of range (0 to %v)", c.Remind, MaxRemind)
	case c.LogSocket != "" && c.Log != "journal" && c.Log != "syslog":
		return c, errors.New("--log-socket needs --log journal or --log syslog")
	case c.NoState && c.StateDir != "":
		return c, errors.New("--no-state and --state-dir contradict each other")
	case (m == Watch || c.IntervalSet) && (c.Interval < MinInterval || c.Interval > MaxInterval):
		return c, fmt.Errorf("--interval %v is out of range (%v to %v)", c.Interval, MinInterval, MaxInterval)
	case c.Print && (c.Release || c.Textfile != "" || c.trackFileSet):
		return c, errors.New("--print keeps no file: it cannot be combined with --track-file, --textfile or --release")
	}
	return c, nil
}

// Salvage picks the logging and state flags out of a command line that
// does not parse, so that its error is logged where the user asked. It
// reads the line exactly as Parse does, and keeps what it can.
func Salvage(m Mode, args []string) Config {
	c := defaults(m)
	scan(&c, args, true)
	if c.LogSocket != "" && c.Log != "journal" && c.Log != "syslog" {
		c.LogSocket = ""
	}
	if c.NoState {
		c.StateDir = ""
	}
	return c
}

// scan reads args into c and returns the positional arguments. It stops at
// the first error, unless lenient, which sets only the salvaged flags and
// skips whatever does not parse.
func scan(c *Config, args []string, lenient bool) ([]string, error) {
	var positional []string
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		body := strings.TrimPrefix(a[1:], "-")
		name, value, hasValue := strings.Cut(body, "=")
		if name == "" || name[0] == '-' || name[0] == '=' {
			fail(fmt.Errorf("bad flag syntax: %s", strconv.Quote(a)))
			continue
		}
		f := lookupFlag(name)
		switch {
		case f == nil:
			fail(fmt.Errorf("unknown flag %s", display(name)))
			continue
		case f.modes&c.Mode == 0 && c.Mode == Once:
			fail(fmt.Errorf("%s is a flag of patroni-vip-check watch", display(name)))
		case f.modes&c.Mode == 0 && f.salvaged:
			fail(fmt.Errorf("%s means nothing to patroni-vip-check watch, which keeps its state in memory", display(name)))
		case f.modes&c.Mode == 0:
			fail(fmt.Errorf("%s is a flag of a single run, not of patroni-vip-check watch", display(name)))
		}
		if f.value == "" {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				fail(fmt.Errorf("%s needs a value", display(name)))
				continue
			}
			i++
			value = args[i]
		}
		if f.modes&c.Mode == 0 || lenient && !f.salvaged {
			continue
		}
		// After an error the rest is still read, for a --help further on.
		if err := f.set(c, value); err != nil {
			if f.value == "" {
				fail(fmt.Errorf("%s %s: takes no value (or =true, =false)", display(name), strconv.Quote(value)))
			} else {
				fail(fmt.Errorf("%s %s: %v", display(name), strconv.Quote(value), err))
			}
		}
	}
	return positional, first
}

// display writes a flag name as --name, or -v for one letter; quoted if
// it holds anything unprintable, so an error stays one line.
func display(name string) string {
	if len(name) == 1 {
		name = "-" + name
	} else {
		name = "--" + name
	}
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

// quoteList quotes arguments for an error, each URL without its password.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(check.Redact(s))
	}
	return "[" + strings.Join(q, " ") + "]"
}

// Flag setters: each stores a checked value, or says what was expected.

// setTrackFile takes the one --track-file of a command line. A second
// one is refused, not taken over the first: the template unit names its
// instance's file before the arguments it reads, so that no argument can
// move an instance onto a file not its own (and Salvage, which skips what
// is refused, keeps the unit's). Names the watch gives its own files are
// refused too: a track file at a lock's path would have the lock's PID
// written into it, which keepalived reads as healthy.
func setTrackFile(c *Config, v string) error {
	if c.trackFileSet {
		return fmt.Errorf("a second --track-file, after %s: a watcher keeps one", strconv.Quote(c.TrackFile))
	}
	base := v[strings.LastIndexByte(v, '/')+1:]
	switch {
	case strings.HasSuffix(base, ".lock"):
		return errors.New("a name ending in .lock is a track file's lock")
	case strings.HasPrefix(base, "."):
		return errors.New("a name starting with . is a temporary file's")
	case base == "":
		return errors.New("not a file")
	}
	c.trackFileSet = true
	return setPath(&c.TrackFile, v)
}

func setDuration(p *time.Duration, s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (like 800ms, 1s or 1h)")
	}
	if v < 0 {
		return errors.New("negative duration")
	}
	*p = v
	return nil
}

func setCount(p *int, s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > 10 {
		return errors.New("not a count from 0 to 10")
	}
	*p = v
	return nil
}

func setBool(p *bool, s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

func setPath(p *string, s string) error {
	if s == "" {
		return errors.New("empty path")
	}
	if strings.ContainsRune(s, 0) {
		return errors.New("path holds a NUL byte")
	}
	*p = s
	return nil
}

func setWord(p *string, s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return errors.New("control character in value")
		}
	}
	*p = s
	return nil
}

func setOneOf(p *string, s string, opts []string) error {
	if !slices.Contains(opts, s) {
		return fmt.Errorf("want one of %s", strings.Join(opts, ", "))
	}
	*p = s
	return nil
}

// Usage is the help of mode m, made from flagDefs.
func Usage(m Mode) string {
	var b strings.Builder
	if m == Watch {
		b.WriteString(`usage: patroni-vip-check watch [flags] [URL]

Stays running and asks the local Patroni REST API every --interval whether
this node may hold the virtual IP, keeping keepalived's track_file at 1
(eligible) or 0; with "weight 0 reverse" in keepalived.conf a missing or
damaged file means FAULT. Run by patroni-vip-check.service. URL is a
Patroni health endpoint; default:
` + DefaultURL + `

`)
	} else {
		b.WriteString(`usage: patroni-vip-check [flags] [URL]
       patroni-vip-check watch [flags] [URL]
       patroni-vip-check keepalived-conf --vip ADDR/PREFIX [flags]
       patroni-vip-check doctor [--keepalived-conf FILE] [flags]

Asks the local Patroni REST API whether this node may hold the virtual IP,
for keepalived's vrrp_script. Exit status 0: eligible; 1: not eligible or
could not tell. URL is a Patroni health endpoint; default:
` + DefaultURL + `

`)
	}
	for _, f := range flagDefs {
		if f.modes&m == 0 {
			continue
		}
		var names []string
		for _, n := range f.names {
			names = append(names, display(n))
		}
		head := "  " + strings.Join(names, ", ")
		if f.value != "" {
			head += " " + f.value
		}
		help := f.help
		if m == Watch && f.watchHelp != "" {
			help = f.watchHelp
		}
		b.WriteString(wrapHelp(head, help))
	}
	b.WriteString("\nDurations are Go durations: 800ms, 1.5s, 2m. See patroni-vip-check(1).\n")
	return b.String()
}

// wrapHelp puts text in a column at 23, wrapped at 79.
func wrapHelp(head, text string) string {
	const col, width = 23, 79
	var b strings.Builder
	line := head
	if len(line) >= col-1 {
		b.WriteString(line + "\n")
		line = ""
	}
	for _, w := range strings.Fields(text) {
		if line != "" && len(line) >= col && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = ""
		}
		if len(line) < col {
			line += strings.Repeat(" ", col-len(line)) + w
		} else {
			line += " " + w
		}
	}
	b.WriteString(line + "\n")
	return b.String()
}

// StateDirOf is the state directory of a run by the user uid called
// name: --state-dir, or root's /run/patroni-vip-check, or for keepalived's
// script_user and every other user /run/patroni-vip-check/NAME. That
// directory cannot be made by its user (the parent is root's), so it cannot
// be made first by another user either; a tmpfiles.d entry or the
// administrator creates it.
func (c Config) StateDirOf(uid int, name string) string {
	switch {
	case c.StateDir != "":
		return c.StateDir
	case uid == 0:
		return RootStateDir
	}
	return RootStateDir + "/" + name
}

// Subcommands. A command line whose first argument names none of them is
// a single run's.
const (
	SubWatch          = "watch"
	SubKeepalivedConf = "keepalived-conf"
	SubDoctor         = "doctor"
)

// Split separates the subcommand that args[0] names, if any, from its
// arguments: the one dispatch of patroni-vip-check's command line.
func Split(args []string) (sub string, rest []string) {
	if len(args) > 0 {
		switch args[0] {
		case SubWatch, SubKeepalivedConf, SubDoctor:
			return args[0], args[1:]
		}
	}
	return "", args
}

// CheckArgs is a single run's command line that asks what c asks, the same
// way: the URL and every flag that changes the question or its timing,
// but none of the logging or state flags. Parse(Once, CheckArgs()) gives
// the same check options. The doctor runs the check with it.
func (c Config) CheckArgs() []string {
	args := []string{
		"--timeout=" + c.Timeout.String(),
		"--connect-timeout=" + c.ConnectTimeout.String(),
		"--retries=" + strconv.Itoa(c.Retries),
	}
	for _, f := range []struct {
		name, value string
	}{
		{"cacert", c.CACert}, {"cert", c.Cert}, {"key", c.Key}, {"servername", c.ServerName},
		{"user", c.User}, {"password-file", c.PasswordFile},
	} {
		if f.value != "" {
			args = append(args, "--"+f.name+"="+f.value)
		}
	}
	if c.StatusOnly {
		args = append(args, "--status-only")
	}
	if c.Insecure {
		args = append(args, "--insecure")
	}
	return append(args, "--", c.URL)
}
