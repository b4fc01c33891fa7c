// Package doctor diagnoses a node's keepalived set-up for patroni-vip-check:
// it reads keepalived's configuration as keepalived does, looks at the
// machine as keepalived will see it (owners and modes along a script's
// path, users, interfaces, SELinux labels, the running keepalived, the
// watch service), runs the check, and returns one finding per thing it
// judged. A failure is something that puts the VIP on a node that never
// passed a check, or makes the VIP useless; a warning is a risk.
package doctor

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/patroni"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

// Level is how bad a finding is.
type Level int

const (
	OK Level = iota
	Warning
	Failure
)

func (l Level) String() string {
	switch l {
	case Warning:
		return "warning"
	case Failure:
		return "failure"
	}
	return "ok"
}

// Finding is one thing the doctor judged.
type Finding struct {
	Level Level
	Pos   keepalived.Pos // where in the configuration, if anywhere
	Msg   string         // what is so, and why it matters
	Fix   string         // what to do; empty for OK
}

// String is the finding's one line: "failure: FILE:LINE: MSG; FIX".
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Level.String() + ": ")
	if f.Pos.File != "" {
		b.WriteString(show(f.Pos.String()) + ": ")
	}
	b.WriteString(f.Msg)
	if f.Fix != "" {
		b.WriteString("; " + f.Fix)
	}
	// Values are shown escaped already; this catches any a message or a
	// fix quotes as it is (a name, a path), and bounds the line.
	return sink.Clean(b.String(), maxLine)
}

// Options say what to diagnose.
type Options struct {
	KeepalivedConf string // default DefaultKeepalivedConf
	PatroniConfig  string // "" to look where the packages put it
	// KeepalivedVersion is the keepalived to judge by; zero to ask the
	// running one, else the installed one.
	KeepalivedVersion keepalived.Version
	// InstalledBinary is the check as the packages install it.
	InstalledBinary string // default cmdline.Binary
	// ConfigID selects keepalived's "@id" lines: keepalived's -i, by
	// default the host name up to its first dot.
	ConfigID string
	// CheckTimeout bounds each command the doctor runs.
	CheckTimeout time.Duration // default 10s
}

// DefaultKeepalivedConf is keepalived's default configuration file.
const DefaultKeepalivedConf = "/etc/keepalived/keepalived.conf"

// Failed reports whether any finding is a failure.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Failure {
			return true
		}
	}
	return false
}

// doctor is one diagnosis under way.
type doctor struct {
	ctx      context.Context
	sys      system.System
	opts     Options
	findings []Finding

	cfg     *keepalived.Config
	model   *keepalived.Model
	version keepalived.Version
	running []keepalivedProcess
	fresh   []keepalivedProcess // those that run the configuration checked, as it is
	procs   [][]int             // their processes, children included (current)
	users   map[string]userLookup
	groups  map[string]groupLookup
	patroni *patroni.Config
	selinux selinuxState
	ifaces  []system.Interface
}

func (d *doctor) add(level Level, pos keepalived.Pos, fix, format string, args ...any) {
	d.findings = append(d.findings, Finding{Level: level, Pos: pos, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

func (d *doctor) ok(pos keepalived.Pos, format string, args ...any) {
	d.add(OK, pos, "", format, args...)
}

func (d *doctor) warn(pos keepalived.Pos, fix, format string, args ...any) {
	d.add(Warning, pos, fix, format, args...)
}

func (d *doctor) fail(pos keepalived.Pos, fix, format string, args ...any) {
	d.add(Failure, pos, fix, format, args...)
}

// Run diagnoses the set-up. It never fails: what it cannot read or tell
// is a finding too.
func Run(ctx context.Context, sys system.System, opts Options) []Finding {
	if opts.KeepalivedConf == "" {
		opts.KeepalivedConf = DefaultKeepalivedConf
	}
	if opts.InstalledBinary == "" {
		opts.InstalledBinary = cmdline.Binary
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 10 * time.Second
	}
	d := &doctor{ctx: ctx, sys: sys, opts: opts}
	d.running = d.keepalivedProcesses()
	d.findVersion()
	var err error
	d.cfg, err = keepalived.Load(opts.KeepalivedConf, keepalived.Options{FS: sys.FS(), ConfigID: opts.ConfigID})
	if err != nil {
		d.fail(keepalived.Pos{}, "give the file keepalived reads with --keepalived-conf", "cannot read the keepalived configuration: %s", show(err.Error()))
		return d.findings
	}
	d.model = d.cfg.Model()
	d.ok(keepalived.Pos{File: d.cfg.Path}, "read, %s", plural(len(d.cfg.Files), "file"))
	for _, p := range d.cfg.Problems {
		d.warn(p.Pos, "correct the configuration (keepalived.conf(5))", "%s", show(p.Msg))
	}
	d.ifaces, err = sys.Interfaces()
	if err != nil {
		d.warn(keepalived.Pos{}, "", "cannot list the network interfaces: %s", show(err.Error()))
	}
	d.selinux = d.readSELinux()
	d.loadPatroni()

	d.runningConfig()
	d.globals()
	gates := d.instances()
	for _, sc := range d.model.Scripts {
		if gates.scripts[sc] {
			d.script(sc)
		}
	}
	for _, tf := range d.model.TrackFiles {
		if uses := gates.files[tf]; len(uses) > 0 {
			d.trackFile(tf, uses)
		}
	}
	var watchers []*watcher
	if gates.watch {
		watchers = d.watchServices(gates.files)
	}
	d.readVIPs(watchers)
	d.postgresListen()
	d.selinuxSummary()
	return d.findings
}

// findVersion settles which keepalived the configuration is judged by.
func (d *doctor) findVersion() {
	if !d.opts.KeepalivedVersion.IsZero() {
		d.version = d.opts.KeepalivedVersion
		d.ok(keepalived.Pos{}, "judging by keepalived %s (as told)", d.version)
		return
	}
	// The keepalived that reads this file first: a machine may run others.
	running := append([]keepalivedProcess(nil), d.running...)
	sort.SliceStable(running, func(i, j int) bool {
		return running[i].Config == d.opts.KeepalivedConf && running[j].Config != d.opts.KeepalivedConf
	})
	for _, p := range running {
		exe := strings.TrimSuffix(p.Exe, " (deleted)")
		if v, err := d.keepalivedVersion(exe); err == nil {
			d.version = v
			d.ok(keepalived.Pos{}, "keepalived %s runs (pid %d, %s)", v, p.PID, show(exe))
			return
		}
	}
	v, err := vipconf.InstalledKeepalived(d.ctx, d.sys)
	if err != nil {
		d.version = keepalived.Version{Major: 2, Minor: 2, Patch: 7}
		d.warn(keepalived.Pos{}, "give --keepalived-version", "cannot tell keepalived's version (%s): judging by %s", show(err.Error()), d.version)
		return
	}
	d.version = v
	d.ok(keepalived.Pos{}, "keepalived %s is installed", v)
}

func (d *doctor) keepalivedVersion(exe string) (keepalived.Version, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.CheckTimeout)
	defer cancel()
	r := d.sys.Run(ctx, system.Cmd{Path: exe, Args: []string{"--version"}})
	return keepalived.VersionFromOutput(append(r.Stderr, r.Stdout...))
}

// loadPatroni finds Patroni's configuration, for what PostgreSQL listens on.
func (d *doctor) loadPatroni() {
	var err error
	if d.opts.PatroniConfig != "" {
		d.patroni, err = patroni.Load(d.sys.FS(), d.opts.PatroniConfig)
	} else {
		d.patroni, err = patroni.Find(d.sys.FS())
	}
	if err != nil {
		d.warn(keepalived.Pos{}, "name it with --patroni-config", "cannot read Patroni's configuration: %s: where PostgreSQL listens is not checked", show(err.Error()))
	}
}

// maxShown bounds one value from outside in a finding.
const maxShown = 300

// maxLine bounds a finding's line.
const maxLine = 4096

// show makes a value from outside safe and short for a one-line finding:
// a password in a URL (a script line's, an error's) shows as xxxxx, as in
// the check's own lines, and every byte that is not printable UTF-8 is
// spelled out as the check's log lines spell it (sink.Clean: \n, \x9b,
// \u{202e}), the whole cut to 300 bytes.
func show(s string) string {
	return sink.Clean(check.RedactText(s), maxShown)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// posOf is where a statement is, zero for none.
func posOf(st *keepalived.Statement) keepalived.Pos {
	if st == nil {
		return keepalived.Pos{}
	}
	return st.Pos
}

// isCheck reports whether a script's command is patroni-vip-check.
func isCheck(args []string) bool {
	return len(args) > 0 && path.Base(args[0]) == "patroni-vip-check"
}
