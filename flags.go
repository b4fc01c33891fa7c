package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const defaultURL = "http://127.0.0.1:8008/primary"

// config is the command line, parsed and checked for consistency. Files it
// names are read later, by check.New.
type config struct {
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

	stateDir    string
	stateDirSet bool
	remind      time.Duration
	logTarget   string
	logSocket   string
	verbose     bool
	noState     bool

	help, version bool
}

const usage = `usage: patroni-vip-check [flags] [URL]

Asks the local Patroni REST API whether this node may hold the virtual IP,
for keepalived's vrrp_script. Exit status 0: eligible; 1: not eligible or
could not tell. URL is a Patroni health endpoint; default ` + defaultURL + `.

  --timeout D          whole-run deadline, state and logging included; keep it
                       below keepalived's script timeout (default 800ms)
  --connect-timeout D  TCP connect and TLS handshake, per attempt (default 300ms)
  --retries N          extra attempts after transport errors, inside the
                       deadline; an HTTP answer is never retried (default 1)
  --status-only        accept any 200 without reading the body
  --cacert FILE        CA certificates (PEM) to verify Patroni's certificate
  --cert FILE          client certificate (PEM), for Patroni's verify_client
  --key FILE           the client certificate's key (PEM)
  --servername NAME    TLS name to verify when the URL holds an IP address
  --insecure           do not verify Patroni's certificate (every log line says so)
  --user USER          basic auth user
  --password-file FILE basic auth password: the file's first line
  --state-dir DIR      where de-duplication state is kept (default
                       /run/patroni-vip-check, or /tmp/patroni-vip-check-UID
                       when not run as root)
  --remind D           while a non-eligible state lasts, log a reminder once per
                       D; 0 never (default 1h)
  --log TARGET         auto, journal, syslog, stderr or none (default auto:
                       stderr if a terminal, else the journal, else /dev/log)
  --log-socket PATH    socket for --log journal or syslog (defaults
                       /run/systemd/journal/socket, /dev/log)
  --no-state           neither read nor write state: log every result
  -v, --verbose        print the request, attempts, timings, Patroni's answer
                       and the verdict to stderr
  --version            print the version and exit
  -h, --help           print this help and exit

Durations are Go durations: 800ms, 1.5s, 2m. See patroni-vip-check(1).
`

// parseArgs parses the command line. Flags and the URL may come in any
// order, as keepalived users write them.
func parseArgs(args []string) (config, error) {
	c := config{
		url:            defaultURL,
		timeout:        800 * time.Millisecond,
		connectTimeout: 300 * time.Millisecond,
		retries:        1,
		remind:         time.Hour,
		logTarget:      "auto",
	}
	fs := flag.NewFlagSet("patroni-vip-check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Func("timeout", "", duration(&c.timeout))
	fs.Func("connect-timeout", "", duration(&c.connectTimeout))
	fs.Func("retries", "", count(&c.retries))
	fs.BoolVar(&c.statusOnly, "status-only", false, "")
	fs.Func("cacert", "", path(&c.cacert))
	fs.Func("cert", "", path(&c.cert))
	fs.Func("key", "", path(&c.key))
	fs.Func("servername", "", word(&c.servername))
	fs.BoolVar(&c.insecure, "insecure", false, "")
	fs.Func("user", "", word(&c.user))
	fs.Func("password-file", "", path(&c.passwordFile))
	fs.Func("state-dir", "", path(&c.stateDir))
	fs.Func("remind", "", duration(&c.remind))
	fs.Func("log", "", oneOf(&c.logTarget, logTargets...))
	fs.Func("log-socket", "", path(&c.logSocket))
	fs.BoolVar(&c.verbose, "v", false, "")
	fs.BoolVar(&c.verbose, "verbose", false, "")
	fs.BoolVar(&c.noState, "no-state", false, "")
	fs.BoolVar(&c.version, "version", false, "")
	fs.BoolVar(&c.help, "h", false, "")
	fs.BoolVar(&c.help, "help", false, "")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help = true
				return c, nil
			}
			return c, flagError(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" && len(fs.Args()) > 0 {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if c.help || c.version {
		return c, nil
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "state-dir" {
			c.stateDirSet = true
		}
	})
	switch len(positional) {
	case 0:
	case 1:
		c.url = positional[0]
	default:
		return c, fmt.Errorf("one URL expected, got %d: %q", len(positional), positional)
	}
	switch {
	case c.timeout < 10*time.Millisecond:
		return c, fmt.Errorf("--timeout %v is too short (at least 10ms)", c.timeout)
	case c.connectTimeout <= 0:
		return c, errors.New("--connect-timeout must be positive")
	case c.remind < 0:
		return c, errors.New("--remind must not be negative")
	case c.logSocket != "" && c.logTarget != "journal" && c.logTarget != "syslog":
		return c, errors.New("--log-socket needs --log journal or --log syslog")
	case c.noState && c.stateDirSet:
		return c, errors.New("--no-state and --state-dir contradict each other")
	}
	return c, nil
}

// salvage picks the logging and state flags out of a command line that
// does not parse, so that its error is logged where the user asked.
func salvage(args []string) config {
	c := config{remind: time.Hour}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || args[i] == "--" {
			continue
		}
		takesValue := name == "log" || name == "log-socket" || name == "state-dir" || name == "remind"
		if takesValue && !hasValue && i+1 < len(args) {
			value, hasValue = args[i+1], true
			i++
		}
		switch name {
		case "log":
			oneOf(&c.logTarget, logTargets...)(value)
		case "log-socket":
			path(&c.logSocket)(value)
		case "state-dir":
			path(&c.stateDir)(value)
		case "remind":
			duration(&c.remind)(value)
		case "no-state":
			c.noState = !hasValue || value == "true" || value == "1"
		}
	}
	if c.logSocket != "" && c.logTarget != "journal" && c.logTarget != "syslog" {
		c.logSocket = ""
	}
	return c
}

// flagError rewords the flag package's errors to name flags as users
// write them (--timeout, not -timeout).
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag %s", display(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("%s needs a value", display(name))
	}
	// invalid value "x" for flag -timeout: reason
	// invalid boolean value "x" for -insecure: reason
	for _, f := range []struct{ head, mid string }{
		{"invalid value ", " for flag "},
		{"invalid boolean value ", " for "},
	} {
		rest, ok := strings.CutPrefix(msg, f.head)
		if !ok {
			continue
		}
		value, rest, ok := strings.Cut(rest, f.mid)
		if !ok {
			continue
		}
		name, reason, _ := strings.Cut(rest, ": ")
		if f.head == "invalid boolean value " {
			reason = "takes no value (or =true, =false)"
		}
		return fmt.Errorf("%s %s: %s", display(name), value, reason)
	}
	return err
}

// display writes a flag name as --name, or -v for one letter; quoted if
// it holds anything unprintable, so an error stays one line.
func display(name string) string {
	name = strings.TrimLeft(name, "-")
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

// Flag values: each setter stores a checked value, or says what was
// expected.

var logTargets = []string{"auto", "journal", "syslog", "stderr", "none"}

func duration(p *time.Duration) func(string) error {
	return func(s string) error {
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
}

func count(p *int) func(string) error {
	return func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 10 {
			return errors.New("not a count from 0 to 10")
		}
		*p = v
		return nil
	}
}

func path(p *string) func(string) error {
	return func(s string) error {
		if s == "" {
			return errors.New("empty path")
		}
		if strings.ContainsRune(s, 0) {
			return errors.New("path holds a NUL byte")
		}
		*p = s
		return nil
	}
}

func word(p *string) func(string) error {
	return func(s string) error {
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
}

func oneOf(p *string, opts ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(opts, s) {
			return fmt.Errorf("want one of %s", strings.Join(opts, ", "))
		}
		*p = s
		return nil
	}
}

// defaultStateDir is root's /run/patroni-vip-check, or, for keepalived's
// script_user and other users, a private directory of their own: /run is
// root's, and the directory is refused unless its owner runs the check.
func defaultStateDir() string {
	if uid := os.Geteuid(); uid != 0 {
		return "/tmp/patroni-vip-check-" + strconv.Itoa(uid)
	}
	return "/run/patroni-vip-check"
}
