package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/patroni-vip-check/patroni-vip-check/vipconf"
)

// Where things are on a node, as the packages lay them out and the
// generator writes them into keepalived.conf (package vipconf).
const (
	defaultURL       = "http://127.0.0.1:8008/primary"
	defaultTimeout   = vipconf.CheckTimeout
	defaultInterval  = 200 * time.Millisecond
	defaultTrackFile = vipconf.DefaultTrackFile
	// rootStateDir is root's state directory, and the parent of every
	// other user's: root-owned and not writable by anyone else, so that
	// no user can create another's directory first.
	rootStateDir = vipconf.StateDir
)

// mode is which lifecycle a command line is for.
type mode int

const (
	once  mode = 1 << iota // a single check, for keepalived's vrrp_script
	watch                  // patroni-vip-check watch: resident, keeps a track file
)

// config is the command line, parsed and checked for consistency. Files it
// names are read later, by check.New.
type config struct {
	mode           mode
	url            string
	timeout        time.Duration
	connectTimeout time.Duration
	retries        int
	statusOnly     bool

	cacert, cert, key string
	servername        string
	insecure          bool
	user              string
	passwordFile      string

	stateDir string // "" until defaulted: see stateDirFor
	remind   time.Duration
	logTgt   string
	logSock  string
	verbose  bool
	noState  bool

	interval    time.Duration // watch: how often to poll; once: keepalived's, if set
	intervalSet bool
	trackFile   string // watch
	textfile    string // watch

	help, version bool
}

func defaults(m mode) config {
	return config{
		mode:           m,
		url:            defaultURL,
		timeout:        defaultTimeout,
		connectTimeout: 300 * time.Millisecond,
		retries:        1,
		remind:         time.Hour,
		logTgt:         "auto",
		interval:       defaultInterval,
		trackFile:      defaultTrackFile,
	}
}

// flagDef is one flag: its names, the placeholder of its value ("" for a
// switch), its help, the lifecycles it belongs to, and how it is set.
// Salvaged flags are the ones a bad command line still needs: where its
// error is logged, and the track file a watcher that cannot start sets
// to 0.
type flagDef struct {
	names    []string
	value    string
	help     string
	watch    string // the help in watch mode, if it differs
	modes    mode
	salvaged bool
	set      func(c *config, v string) error
}

var logTargets = []string{"auto", "journal", "syslog", "stderr", "none"}

// flagDefs is every flag, in the order --help lists them.
var flagDefs = []flagDef{
	{names: []string{"timeout"}, value: "D", modes: once | watch,
		help:  "whole-run deadline, state and logging included; keep it below keepalived's script timeout (default 800ms)",
		watch: "deadline of each poll; a poll that cannot finish by then is not eligible (default 800ms)",
		set:   func(c *config, v string) error { return setDuration(&c.timeout, v) }},
	{names: []string{"connect-timeout"}, value: "D", modes: once | watch,
		help: "TCP connect and TLS handshake, per attempt (default 300ms)",
		set:  func(c *config, v string) error { return setDuration(&c.connectTimeout, v) }},
	{names: []string{"retries"}, value: "N", modes: once | watch,
		help: "extra attempts after transport errors, inside the deadline; an HTTP answer is never retried (default 1)",
		set:  func(c *config, v string) error { return setCount(&c.retries, v) }},
	{names: []string{"status-only"}, modes: once | watch,
		help: "accept any 200 without reading the body",
		set:  func(c *config, v string) error { return setBool(&c.statusOnly, v) }},
	{names: []string{"cacert"}, value: "FILE", modes: once | watch,
		help: "CA certificates (PEM) to verify Patroni's certificate",
		set:  func(c *config, v string) error { return setPath(&c.cacert, v) }},
	{names: []string{"cert"}, value: "FILE", modes: once | watch,
		help: "client certificate (PEM), for Patroni's verify_client",
		set:  func(c *config, v string) error { return setPath(&c.cert, v) }},
	{names: []string{"key"}, value: "FILE", modes: once | watch,
		help: "the client certificate's key (PEM)",
		set:  func(c *config, v string) error { return setPath(&c.key, v) }},
	{names: []string{"servername"}, value: "NAME", modes: once | watch,
		help: "TLS name to verify when the URL holds an IP address",
		set:  func(c *config, v string) error { return setWord(&c.servername, v) }},
	{names: []string{"insecure"}, modes: once | watch,
		help: "do not verify Patroni's certificate (every log line says so)",
		set:  func(c *config, v string) error { return setBool(&c.insecure, v) }},
	{names: []string{"user"}, value: "USER", modes: once | watch,
		help: "basic auth user",
		set:  func(c *config, v string) error { return setWord(&c.user, v) }},
	{names: []string{"password-file"}, value: "FILE", modes: once | watch,
		help: "basic auth password: the file's first line",
		set:  func(c *config, v string) error { return setPath(&c.passwordFile, v) }},
	{names: []string{"state-dir"}, value: "DIR", modes: once, salvaged: true,
		help: "where de-duplication state is kept (default " + rootStateDir + " for root, " + rootStateDir + "/USER for another user)",
		set:  func(c *config, v string) error { return setPath(&c.stateDir, v) }},
	{names: []string{"remind"}, value: "D", modes: once | watch, salvaged: true,
		help: "while a non-eligible state lasts, log a reminder once per D; 0 never (default 1h)",
		set:  func(c *config, v string) error { return setDuration(&c.remind, v) }},
	{names: []string{"log"}, value: "TARGET", modes: once | watch, salvaged: true,
		help: "auto, journal, syslog, stderr or none (default auto: stderr if a terminal, else the journal, else /dev/log)",
		set:  func(c *config, v string) error { return setOneOf(&c.logTgt, v, logTargets) }},
	{names: []string{"log-socket"}, value: "PATH", modes: once | watch, salvaged: true,
		help: "socket for --log journal or syslog (defaults /run/systemd/journal/socket, /dev/log)",
		set:  func(c *config, v string) error { return setPath(&c.logSock, v) }},
	{names: []string{"no-state"}, modes: once, salvaged: true,
		help: "neither read nor write state: log every result",
		set:  func(c *config, v string) error { return setBool(&c.noState, v) }},
	{names: []string{"interval"}, value: "D", modes: once | watch,
		help:  "the vrrp_script's interval, when it is a fraction of a second: the check warns when keepalived runs it far less often (keepalived before 2.3.2 ignores a fractional interval)",
		watch: "how often to ask Patroni (default 200ms)",
		set:   func(c *config, v string) error { c.intervalSet = true; return setDuration(&c.interval, v) }},
	{names: []string{"track-file"}, value: "FILE", modes: watch, salvaged: true,
		help: "the file keepalived's track_file reads: 1 while eligible, else 0 (default " + defaultTrackFile + ")",
		set:  func(c *config, v string) error { return setPath(&c.trackFile, v) }},
	{names: []string{"textfile"}, value: "FILE", modes: watch,
		help: "also keep a node_exporter textfile with the verdict, its reason, transitions and poll latency",
		set:  func(c *config, v string) error { return setPath(&c.textfile, v) }},
	{names: []string{"v", "verbose"}, modes: once | watch,
		help: "print the request, attempts, timings, Patroni's answer and the verdict to stderr",
		set:  func(c *config, v string) error { return setBool(&c.verbose, v) }},
	{names: []string{"version"}, modes: once | watch,
		help: "print the version and exit",
		set:  func(c *config, v string) error { return setBool(&c.version, v) }},
	{names: []string{"h", "help"}, modes: once | watch,
		help: "print this help and exit",
		set:  func(c *config, v string) error { return setBool(&c.help, v) }},
}

func lookupFlag(name string) *flagDef {
	for i := range flagDefs {
		if slices.Contains(flagDefs[i].names, name) {
			return &flagDefs[i]
		}
	}
	return nil
}

// parseArgs parses a command line for mode m. Flags and the URL may come
// in any order, as keepalived users write them; "--" ends the flags. Help
// anywhere among the flags wins over any error.
func parseArgs(m mode, args []string) (config, error) {
	c := defaults(m)
	positional, err := scan(&c, args, false)
	if c.help || c.version {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	switch len(positional) {
	case 0:
	case 1:
		c.url = positional[0]
	default:
		return c, fmt.Errorf("one URL expected, got %d: %s", len(positional), quoteList(positional))
	}
	switch {
	case c.timeout < 10*time.Millisecond:
		return c, fmt.Errorf("--timeout %v is too short (at least 10ms)", c.timeout)
	case c.connectTimeout <= 0:
		return c, errors.New("--connect-timeout must be positive")
	case c.logSock != "" && c.logTgt != "journal" && c.logTgt != "syslog":
		return c, errors.New("--log-socket needs --log journal or --log syslog")
	case c.noState && c.stateDir != "":
		return c, errors.New("--no-state and --state-dir contradict each other")
	case (m == watch || c.intervalSet) && (c.interval < 10*time.Millisecond || c.interval > time.Hour):
		return c, fmt.Errorf("--interval %v is out of range (10ms to 1h)", c.interval)
	}
	return c, nil
}

// salvage picks the logging and state flags out of a command line that
// does not parse, so that its error is logged where the user asked. It
// reads the line exactly as parseArgs does, and keeps what it can.
func salvage(m mode, args []string) config {
	c := defaults(m)
	scan(&c, args, true)
	if c.logSock != "" && c.logTgt != "journal" && c.logTgt != "syslog" {
		c.logSock = ""
	}
	if c.noState {
		c.stateDir = ""
	}
	return c
}

// scan reads args into c and returns the positional arguments. It stops at
// the first error, unless lenient, which sets only the salvaged flags and
// skips whatever does not parse.
func scan(c *config, args []string, lenient bool) ([]string, error) {
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
		case f.modes&c.mode == 0 && c.mode == once:
			fail(fmt.Errorf("%s is a flag of patroni-vip-check watch", display(name)))
		case f.modes&c.mode == 0:
			fail(fmt.Errorf("%s means nothing to patroni-vip-check watch, which keeps its state in memory", display(name)))
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
		if f.modes&c.mode == 0 || lenient && !f.salvaged {
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

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// Flag setters: each stores a checked value, or says what was expected.

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

// usage is the help of mode m, made from flagDefs.
func usage(m mode) string {
	var b strings.Builder
	if m == watch {
		b.WriteString(`usage: patroni-vip-check watch [flags] [URL]

Stays running and asks the local Patroni REST API every --interval whether
this node may hold the virtual IP, keeping keepalived's track_file at 1
(eligible) or 0; with "weight 0 reverse" in keepalived.conf a missing or
damaged file means FAULT. Run by patroni-vip-check.service. URL is a
Patroni health endpoint; default:
` + defaultURL + `

`)
	} else {
		b.WriteString(`usage: patroni-vip-check [flags] [URL]
       patroni-vip-check watch [flags] [URL]
       patroni-vip-check keepalived-conf --vip ADDR/PREFIX [flags]
       patroni-vip-check doctor [--keepalived-conf FILE] [flags]

Asks the local Patroni REST API whether this node may hold the virtual IP,
for keepalived's vrrp_script. Exit status 0: eligible; 1: not eligible or
could not tell. URL is a Patroni health endpoint; default:
` + defaultURL + `

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
		if m == watch && f.watch != "" {
			help = f.watch
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

// stateDirFor is the state directory of a run: --state-dir, or root's
// /run/patroni-vip-check, or for keepalived's script_user and every other
// user /run/patroni-vip-check/NAME. That directory cannot be made by its
// user (the parent is root's), so it cannot be made first by another user
// either; a tmpfiles.d entry or the administrator creates it.
func stateDirFor(c config) string {
	if c.stateDir != "" {
		return c.stateDir
	}
	if os.Geteuid() == 0 {
		return rootStateDir
	}
	name, _ := stateUser()
	return rootStateDir + "/" + name
}

// stateUser names the directory of a user other than root: the user name,
// or uid-N if there is none usable; owner is what a tmpfiles.d line calls
// the user.
func stateUser() (name, owner string) {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil && u.Username != "" &&
		!strings.ContainsAny(u.Username, "/\x00") && u.Username[0] != '.' {
		return u.Username, u.Username
	}
	return "uid-" + uid, uid
}
