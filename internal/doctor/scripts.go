package doctor

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	neturl "net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// runAs is the user keepalived runs a script as.
type runAs struct {
	name     string
	uid, gid uint32
}

// processGrace is how long past its --timeout the check may live, as
// keepalived counts: from its fork, before the check's clock starts. On a
// loaded node 85 ms went between the two.
const processGrace = 100 * time.Millisecond

// script checks one vrrp_script that an instance tracks.
func (d *doctor) script(sc *keepalived.Script) {
	args, extra, err := sc.Args(d.version)
	if errors.Is(err, keepalived.ErrNoScript) {
		d.fail(sc.Stmt.Pos, "add a script line", "vrrp_script %s has no script: keepalived removes it (\"No script set\") and the instance runs without it", show(sc.Name))
		return
	}
	if err != nil {
		d.fail(sc.Script.Pos, "quote the command as script \"/usr/bin/patroni-vip-check URL\"", "vrrp_script %s: the script line does not parse: %s", show(sc.Name), show(err.Error()))
		return
	}
	if len(extra) > 0 {
		d.fail(sc.Script.Pos, "put the whole command in one pair of double quotes",
			"vrrp_script %s: keepalived runs only %s and drops %s: the words after the first are ignored",
			show(sc.Name), show(args[0]), show(strings.Join(extra, " ")))
	}
	// From the configuration alone, whatever this machine holds: what
	// runs, what it asks, and when keepalived counts it.
	c := readCommand(args)
	for _, p := range c.problems {
		d.fail(sc.Script.Pos, "run a shell explicitly (script \"/bin/sh -c '...'\"), or use "+cmdline.Binary,
			"vrrp_script %s: %s", show(sc.Name), show(p))
	}
	cfg, isPVC := d.checkConfig(sc, c.argv)
	d.timers(sc, cfg, isPVC)
	if keepalived.Count(sc.Fall) > 1 {
		d.warn(sc.Fall.Pos, "use fall 1", "vrrp_script %s: fall %d keeps the VIP on a node that stopped being primary for %d more runs", show(sc.Name), keepalived.Count(sc.Fall), keepalived.Count(sc.Fall)-1)
	}
	d.asks(sc, c, cfg, isPVC)
	if d.model.Global.EnableScriptSecurity == nil {
		d.warn(sc.Stmt.Pos, "add enable_script_security to global_defs",
			"no enable_script_security: keepalived runs vrrp_script %s even from a path others could replace", show(sc.Name))
	}

	// On this machine.
	user, ok := d.scriptUser(sc)
	if !ok {
		return
	}
	if c.system {
		d.systemShell(sc, c)
		return
	}
	exe, ok := d.scriptFile(sc, args[0], user)
	if !ok {
		return
	}
	if len(c.via) > 0 {
		if exe, ok = d.wrapped(sc, c, user); !ok {
			return
		}
	}
	if !isCheck(c.argv) {
		if !c.readByShell() {
			d.runsAtAll(sc, exe)
		}
		d.scriptAsks(sc, exe)
		return
	}
	if !isPVC || !d.runsVersion(sc, exe, user) {
		return
	}
	d.installed(sc.Script.Pos, exe, user)
	d.stateDir(sc, cfg, user)
	d.selinuxExec(sc.Script.Pos, exe)
	d.selinuxPort(sc.Script.Pos, cfg.URL)
	d.patroniAnswer(sc.Script.Pos, "vrrp_script "+sc.Name, exe, cfg, user)
}

// wrapped checks the program a wrapper runs (the one that does the
// check) and returns its file. keepalived checks only the wrapper.
func (d *doctor) wrapped(sc *keepalived.Script, c command, u runAs) (string, bool) {
	pos := sc.Script.Pos
	if len(c.argv) == 0 {
		return "", false
	}
	via := strings.Join(c.via, ", then ")
	written := c.argv[0]
	never := "it fails at every run, and this node never holds the VIP"
	if !strings.Contains(written, "/") {
		found, ok := lookPath(d.sys, written, u.uid, u.gid)
		if !ok {
			d.fail(pos, "write the program's full path", "vrrp_script %s: %s runs %s, which is not found in PATH: %s", show(sc.Name), via, show(written), never)
			return "", false
		}
		d.warn(pos, "write the full path "+found, "vrrp_script %s: %s runs %s, found only by a PATH search (%s)", show(sc.Name), via, show(written), found)
		written = found
	}
	if !path.IsAbs(written) {
		d.warn(pos, "write an absolute path", "vrrp_script %s: %s runs %s, relative to keepalived's working directory", show(sc.Name), via, show(written))
		return "", false
	}
	real, err := realpath(d.sys, written)
	if err != nil {
		d.fail(pos, "install it, or point the script at the right file", "vrrp_script %s: %s runs %s, which cannot be accessed (%s): %s", show(sc.Name), via, show(written), errText(err), never)
		return "", false
	}
	fi, err := d.sys.Stat(real)
	switch {
	case err != nil || !fi.Mode.IsRegular():
		d.fail(pos, "point the script at a program", "vrrp_script %s: %s runs %s, which is not a regular file: %s", show(sc.Name), via, show(real), never)
		return "", false
	case !c.readByShell() && !executable(fi, u.uid, u.gid):
		d.fail(pos, "chmod 0755 "+real, "vrrp_script %s: %s runs %s, which is not executable for %s (mode %s): %s", show(sc.Name), via, show(real), u.name, modeText(fi), never)
		return "", false
	}
	for _, p := range securityPaths(d.sys, d.version, written, real) {
		if bad := checkSecurity(d.sys, p); bad != nil && !bad.notFound {
			d.warn(pos, "make every directory of the path and the file root-owned and not writable by group or others",
				"vrrp_script %s: %s runs %s, and %s is %s: keepalived checks only what it runs itself (%s), so anyone who can write there runs code as %s",
				show(sc.Name), via, show(real), show(bad.component), bad.why, show(c.args[0]), u.name)
			return real, true
		}
	}
	d.ok(pos, "vrrp_script %s: %s runs %s, root's all along its path", show(sc.Name), via, show(real))
	return real, true
}

// readByShell reports whether the program is a script file that a shell
// reads ("sh FILE"): it needs no execute bit.
func (c command) readByShell() bool {
	return len(c.via) > 0 && !strings.HasSuffix(c.via[len(c.via)-1], " -c") && contains([]string{"sh", "bash", "dash", "ksh", "zsh"}, c.via[len(c.via)-1])
}

// systemShell: keepalived runs a "</" line with /bin/sh, without checking
// any path. "/dev/tcp/HOST/PORT" is bash's: dash opens a file of that
// name, which does not exist.
func (d *doctor) systemShell(sc *keepalived.Script, c command) {
	pos := sc.Script.Pos
	target := strings.TrimLeft(c.args[0][1:], " \t")
	sh, err := realpath(d.sys, "/bin/sh")
	if err != nil {
		d.warn(pos, "", "vrrp_script %s: keepalived runs it with /bin/sh, which cannot be read here: %s", show(sc.Name), errText(err))
		return
	}
	special := strings.HasPrefix(target, "/dev/tcp/") || strings.HasPrefix(target, "/dev/udp/")
	switch name := path.Base(sh); {
	case special && strings.Contains(name, "bash"):
		d.ok(pos, "vrrp_script %s: keepalived runs it with /bin/sh, which is bash here: %s opens a connection", show(sc.Name), show(target))
	case special:
		d.fail(pos, "use patroni-vip-check http://NODE:8008/primary (or script \"/bin/bash -c '...'\")",
			"vrrp_script %s: keepalived runs it with /bin/sh, which is %s here and has no %s: it opens a file of that name, which does not exist, and fails at every run: this node never holds the VIP",
			show(sc.Name), show(name), show(target[:9]))
	default:
		d.ok(pos, "vrrp_script %s: keepalived runs it with /bin/sh (%s), to see whether %s opens", show(sc.Name), show(name), show(target))
	}
}

// checkLine reads a patroni-vip-check command line (argv, the program
// first) as the check reads it, with the check's own grammar: its
// subcommand ("" for a single run) and its flags.
func checkLine(argv []string) (sub string, cfg cmdline.Config, err error) {
	sub, rest := cmdline.Split(argv[1:])
	mode := cmdline.Once
	if sub == cmdline.SubWatch {
		mode = cmdline.Watch
	}
	cfg, err = cmdline.Parse(mode, rest)
	return sub, cfg, err
}

// checkConfig is what a vrrp_script running patroni-vip-check asks (args
// is the check's command line, after any wrapper); false when the script
// is not a single run of the check that can start.
func (d *doctor) checkConfig(sc *keepalived.Script, args []string) (cmdline.Config, bool) {
	if !isCheck(args) {
		return cmdline.Config{}, false
	}
	sub, cfg, err := checkLine(args)
	switch {
	case err != nil:
		d.fail(sc.Script.Pos, "fix the check's flags", "vrrp_script %s: %s: the check exits 1 at every run", show(sc.Name), show(err.Error()))
		return cfg, false
	case sub == cmdline.SubWatch:
		d.fail(sc.Script.Pos, "run the watch as patroni-vip-check.service and track its file with track_file, or drop \"watch\"",
			"vrrp_script %s runs patroni-vip-check watch, which never exits: keepalived kills it at every timeout and counts a failure", show(sc.Name))
		return cfg, false
	case sub != "":
		d.fail(sc.Script.Pos, "run the check itself", "vrrp_script %s runs patroni-vip-check %s, which is no check", show(sc.Name), sub)
		return cfg, false
	case cfg.Help || cfg.Version:
		d.fail(sc.Script.Pos, "drop --help and --version", "vrrp_script %s: the check only prints its help or version and exits 0: this node always counts as eligible", show(sc.Name))
		return cfg, false
	}
	return cfg, true
}

// lookupUser is LookupUser, asked once per name and run: a lookup may
// run getent, and a configuration may hold thousands of scripts.
func (d *doctor) lookupUser(name string) (system.User, error) {
	if r, ok := d.users[name]; ok {
		return r.user, r.err
	}
	u, err := d.sys.LookupUser(name)
	if d.users == nil {
		d.users = map[string]userLookup{}
	}
	d.users[name] = userLookup{u, err}
	return u, err
}

// lookupGroup is LookupGroup, asked once per name and run.
func (d *doctor) lookupGroup(name string) (uint32, error) {
	if r, ok := d.groups[name]; ok {
		return r.gid, r.err
	}
	gid, err := d.sys.LookupGroup(name)
	if d.groups == nil {
		d.groups = map[string]groupLookup{}
	}
	d.groups[name] = groupLookup{gid, err}
	return gid, err
}

type userLookup struct {
	user system.User
	err  error
}

type groupLookup struct {
	gid uint32
	err error
}

// scriptUser is the user keepalived runs the script as; false when
// keepalived would remove the script for want of one.
func (d *doctor) scriptUser(sc *keepalived.Script) (runAs, bool) {
	lookup := func(st *keepalived.Statement, removes string) (runAs, bool) {
		name, group := keepalived.SplitUser(st)
		u, err := d.lookupUser(name)
		if err != nil {
			d.fail(st.Pos, "create the user or name an existing one",
				"user %s does not exist: keepalived %s and the instance runs without it", show(name), removes)
			return runAs{}, false
		}
		r := runAs{name: u.Name, uid: u.UID, gid: u.GID}
		if group != "" {
			gid, err := d.lookupGroup(group)
			if err != nil {
				d.fail(st.Pos, "create the group or name an existing one",
					"group %s does not exist: keepalived %s and the instance runs without it", show(group), removes)
				return runAs{}, false
			}
			r.gid = gid
		}
		return r, true
	}
	switch {
	case sc.User != nil:
		return lookup(sc.User, "removes vrrp_script "+sc.Name)
	case d.model.Global.ScriptUser != nil:
		return lookup(d.model.Global.ScriptUser, "removes every vrrp_script without a user of its own")
	}
	if u, err := d.lookupUser("keepalived_script"); err == nil {
		d.ok(sc.Stmt.Pos, "vrrp_script %s runs as keepalived_script: the user exists and no script_user is set", show(sc.Name))
		return runAs{name: u.Name, uid: u.UID, gid: u.GID}, true
	}
	if d.model.Global.EnableScriptSecurity != nil {
		d.fail(sc.Stmt.Pos, "add script_user root to global_defs",
			"vrrp_script %s: no script_user and no user keepalived_script: with enable_script_security keepalived removes the script (\"Unable to set default user\") and the instance runs without it", show(sc.Name))
		return runAs{}, false
	}
	return runAs{name: "root"}, true
}

// scriptFile checks the script's file as check_script_secure does and
// returns the file keepalived executes.
func (d *doctor) scriptFile(sc *keepalived.Script, written string, u runAs) (string, bool) {
	pos := sc.Script.Pos
	disabled := "keepalived disables the track script and the instance takes the VIP without it"
	if !strings.Contains(written, "/") {
		found, ok := lookPath(d.sys, written, u.uid, u.gid)
		if !ok {
			d.fail(pos, "write the check's full path", "vrrp_script %s: %s is not found in PATH: %s", show(sc.Name), show(written), disabled)
			return "", false
		}
		d.warn(pos, "write the full path "+found, "vrrp_script %s: %s is found only by a PATH search (%s)", show(sc.Name), show(written), found)
		written = found
	}
	if !path.IsAbs(written) {
		d.warn(pos, "write an absolute path", "vrrp_script %s: %s is relative to keepalived's working directory", show(sc.Name), show(written))
		return "", false
	}
	real, err := realpath(d.sys, written)
	if err != nil {
		d.fail(pos, "install the check (the packages put it in "+cmdline.Binary+")",
			"vrrp_script %s: %s cannot be accessed (%s): %s", show(sc.Name), show(written), errText(err), disabled)
		return "", false
	}
	fi, err := d.sys.Stat(real)
	if err != nil || !fi.Mode.IsRegular() {
		d.fail(pos, "point the script at the check's executable", "vrrp_script %s: %s is not a regular file: %s", show(sc.Name), show(real), disabled)
		return "", false
	}
	if !executable(fi, u.uid, u.gid) {
		d.fail(pos, "chmod 0755 "+real, "vrrp_script %s: %s is not executable for %s (mode %s): %s", show(sc.Name), show(real), u.name, modeText(fi), disabled)
		return "", false
	}
	if !needsProtection(fi, u.uid, u.gid) {
		d.ok(pos, "vrrp_script %s runs %s as %s, who can run it (keepalived checks the path's owners only for root)", show(sc.Name), show(real), u.name)
		return real, true
	}
	for _, p := range securityPaths(d.sys, d.version, written, real) {
		bad := checkSecurity(d.sys, p)
		switch {
		case bad == nil:
			continue
		case bad.notFound:
			d.fail(pos, "install the check in a root-owned directory", "vrrp_script %s: %s: %s (\"check_script_secure could not find script\"): %s", show(sc.Name), show(bad.component), bad.why, disabled)
			return "", false
		case d.model.Global.EnableScriptSecurity != nil:
			d.fail(pos, "make every directory of the path and the file root-owned and not writable by group or others, or use "+cmdline.Binary,
				"vrrp_script %s: %s is %s (\"Unsafe permissions found for script\"): %s", show(sc.Name), show(bad.component), bad.why, disabled)
			return "", false
		default:
			d.warn(pos, "make every directory of the path and the file root-owned and not writable by group or others",
				"vrrp_script %s: %s is %s: anyone who can write there can run code as %s", show(sc.Name), show(bad.component), bad.why, u.name)
			return real, true
		}
	}
	d.ok(pos, "vrrp_script %s runs %s as %s; keepalived %s accepts its path", show(sc.Name), show(real), u.name, d.version)
	return real, true
}

// timers: what keepalived makes of interval and timeout, and whether the
// check always answers before keepalived kills it.
func (d *doctor) timers(sc *keepalived.Script, cfg cmdline.Config, isPVC bool) {
	interval, inote := sc.IntervalFor(d.version)
	if inote != "" {
		d.fail(sc.Interval.Pos, "use whole seconds (fractions need keepalived 2.3.2)",
			"vrrp_script %s: interval %s: %s; keepalived runs the check every %v", show(sc.Name), show(sc.Interval.Arg(1)), show(inote), interval)
	}
	timeout, tnote := sc.TimeoutFor(d.version)
	if tnote != "" {
		d.fail(sc.Timeout.Pos, "use whole seconds (fractions need keepalived 2.3.2)",
			"vrrp_script %s: timeout %s: %s; keepalived kills a run after %v", show(sc.Name), show(sc.Timeout.Arg(1)), show(tnote), timeout)
	}
	if !isPVC {
		return
	}
	own := cfg.Timeout
	pos, which := posOf(sc.Timeout), "timeout"
	if sc.Timeout == nil {
		pos, which = sc.Stmt.Pos, "timeout (the interval, as none is set)"
	}
	if timeout < own+processGrace {
		d.fail(pos, fmt.Sprintf("set timeout above %v, or give the check a shorter --timeout", own+processGrace),
			"vrrp_script %s: keepalived's %s %v is not above the check's --timeout %v: keepalived kills slow answers and counts them as failures", show(sc.Name), which, timeout, own)
		return
	}
	d.ok(pos, "vrrp_script %s: keepalived's timeout %v is above the check's --timeout %v; it runs every %v", show(sc.Name), timeout, own, interval)
	if said := cfg.Interval; cfg.IntervalSet && said != interval && inote == "" {
		d.warn(sc.Script.Pos, fmt.Sprintf("give the check --interval %v, keepalived's interval", interval),
			"vrrp_script %s: the check's --interval %v is not keepalived's interval %v: the check warns that keepalived runs it too slowly, or never notices", show(sc.Name), said, interval)
	}
}

// runsAtAll: a script keepalived cannot exec counts as a success, so an
// ordinary script must be an executable for this machine or start "#!".
func (d *doctor) runsAtAll(sc *keepalived.Script, exe string) {
	head, err := readHead(d.sys, exe, 64)
	if err != nil {
		d.warn(sc.Script.Pos, "", "vrrp_script %s: cannot read %s: %s", show(sc.Name), show(exe), errText(err))
		return
	}
	if why := execProblem(d.sys, head); why != "" {
		d.fail(sc.Script.Pos, "make it a working executable",
			"vrrp_script %s: %s %s: exec fails, and keepalived counts a script that does not start as a success", show(sc.Name), show(exe), why)
		return
	}
	d.ok(sc.Script.Pos, "vrrp_script %s: %s looks executable here", show(sc.Name), show(exe))
}

func readHead(sys system.System, name string, n int) ([]byte, error) {
	f, err := sys.FS().Open(strings.TrimPrefix(name, "/"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:k], nil
}

// elfMachine is the ELF e_machine of GOARCH's executables, 0 if unknown.
func elfMachine(goarch string) uint16 {
	switch goarch {
	case "amd64":
		return 62
	case "386":
		return 3
	case "arm64":
		return 183
	case "arm":
		return 40
	case "riscv64":
		return 243
	case "ppc64le", "ppc64":
		return 21
	case "s390x":
		return 22
	case "loong64":
		return 258
	}
	return 0
}

// execProblem is why the kernel would refuse to exec a file that starts
// with head, or "".
func execProblem(sys system.System, head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return "has an empty #! line"
		}
		if fi, err := sys.Stat(f[0]); err != nil || !fi.Mode.IsRegular() || fi.Mode&0o111 == 0 {
			return "names the interpreter " + show(f[0]) + ", which is not an executable here"
		}
		return ""
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		if len(head) < 20 {
			return "is a truncated ELF file"
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if head[5] == 2 {
			order = binary.BigEndian
		}
		if want := elfMachine(runtime.GOARCH); want != 0 && order.Uint16(head[18:20]) != want {
			return fmt.Sprintf("is built for another machine (ELF machine %d)", order.Uint16(head[18:20]))
		}
		return ""
	}
	return "is neither an executable nor a script starting with #!"
}

// runsVersion proves the file keepalived runs is a working
// patroni-vip-check: it runs SCRIPT --version as the script's user.
func (d *doctor) runsVersion(sc *keepalived.Script, exe string, u runAs) bool {
	r := d.runAs(exe, []string{"--version"}, u, d.opts.CheckTimeout)
	out := strings.TrimSpace(string(r.Stdout))
	switch {
	case r.Err != nil:
		d.fail(sc.Script.Pos, "install a patroni-vip-check built for this machine",
			"vrrp_script %s: %s does not run (%s): keepalived counts a script that fails to start as a success, so this node takes the VIP whatever Patroni says", show(sc.Name), show(exe), show(errText(r.Err)))
		return false
	case r.ExitCode != 0 || !strings.HasPrefix(out, "patroni-vip-check "):
		d.fail(sc.Script.Pos, "install patroni-vip-check there",
			"vrrp_script %s: %s --version exits %d and says %q: it is not patroni-vip-check", show(sc.Name), show(exe), r.ExitCode, show(firstLine(out)))
		return false
	}
	d.ok(sc.Script.Pos, "vrrp_script %s: %s runs: %s", show(sc.Name), show(exe), show(firstLine(out)))
	return true
}

// runAs runs a command as the script's user (when that is not who the
// doctor runs as).
func (d *doctor) runAs(exe string, args []string, u runAs, timeout time.Duration) system.Result {
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	cmd := system.Cmd{Path: exe, Args: args}
	if u.uid != 0 || u.gid != 0 {
		cmd.Credential, cmd.UID, cmd.GID = true, u.uid, u.gid
	}
	return d.sys.Run(ctx, cmd)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// installed: is the file keepalived runs the one the packages install?
func (d *doctor) installed(pos keepalived.Pos, exe string, u runAs) {
	inst := d.opts.InstalledBinary
	if exe == inst {
		return
	}
	ii, err := d.sys.Stat(inst)
	if err != nil {
		d.warn(pos, "install the package, or keep this build up to date by hand", "keepalived runs %s; %s is not installed", show(exe), inst)
		return
	}
	ei, err := d.sys.Stat(exe)
	if err == nil && ei.Dev == ii.Dev && ei.Ino == ii.Ino {
		d.ok(pos, "%s is the installed %s", show(exe), inst)
		return
	}
	a, errA := fs.ReadFile(d.sys.FS(), strings.TrimPrefix(exe, "/"))
	b, errB := fs.ReadFile(d.sys.FS(), strings.TrimPrefix(inst, "/"))
	if errA == nil && errB == nil && bytes.Equal(a, b) {
		d.ok(pos, "%s is a copy of the installed %s", show(exe), inst)
		return
	}
	mine := firstLine(string(d.runAs(exe, []string{"--version"}, u, d.opts.CheckTimeout).Stdout))
	theirs := firstLine(string(d.runAs(inst, []string{"--version"}, runAs{}, d.opts.CheckTimeout).Stdout))
	d.warn(pos, "point the script at "+inst,
		"keepalived runs %s (%s), not the installed %s (%s): an upgrade of the package does not change what keepalived runs", show(exe), show(mine), inst, show(theirs))
}

// stateDir: the check keeps its de-duplication state there; a directory
// it refuses costs a warning in the log at every run, not the answer.
func (d *doctor) stateDir(sc *keepalived.Script, cfg cmdline.Config, u runAs) {
	pos := sc.Script.Pos
	if cfg.NoState {
		d.warn(pos, "drop --no-state", "vrrp_script %s runs the check with --no-state: it logs every result, every run", show(sc.Name))
		return
	}
	ownDir := cfg.StateDir == "" && u.uid != 0 // the default of a user other than root, which only root can create
	dir := cfg.StateDirOf(int(u.uid), u.name)
	fi, err := d.sys.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && ownDir:
		d.warn(pos, fmt.Sprintf("add \"d %s 0700 %s %s -\" to a file in /etc/tmpfiles.d and run systemd-tmpfiles --create", dir, u.name, u.name),
			"the check's state directory %s does not exist, and %s cannot create it (the parent is root's, so that no other user can create it first): the check keeps no state and says so in the log at every run", show(dir), u.name)
		return
	case errors.Is(err, fs.ErrNotExist):
		d.ok(pos, "the check's state directory %s does not exist yet: its first run creates it", show(dir))
		return
	case err != nil:
		d.warn(pos, "", "the check's state directory %s: %s", show(dir), errText(err))
		return
	case !fi.Mode.IsDir():
		d.warn(pos, "remove it: the check creates the directory", "the check's state directory %s is not a directory: the check keeps no state and says so in the log at every run", show(dir))
		return
	case fi.UID != u.uid:
		d.warn(pos, fmt.Sprintf("chown %s %s", u.name, dir), "the check's state directory %s belongs to %s, not %s who runs the check: the check refuses it and says so in the log at every run", show(dir), owner(d.sys, fi.UID), u.name)
		return
	case fi.Mode.Perm()&0o066 != 0:
		d.warn(pos, "chmod 0700 "+dir, "the check's state directory %s has mode %s: the check refuses a directory others may write or read", show(dir), modeText(fi))
		return
	}
	d.ok(pos, "the check's state directory %s is %s's, mode %s", show(dir), u.name, modeText(fi))
	d.selinuxStateDir(pos, dir)
}

// patroniAnswer runs the check once as keepalived would, with what cfg
// asks, without state or log, and says what Patroni answers for this node,
// from the check's --json report.
func (d *doctor) patroniAnswer(pos keepalived.Pos, who, exe string, cfg cmdline.Config, u runAs) {
	args := append([]string{"--json", "--no-state", "--log", "none"}, cfg.CheckArgs()...)
	r := d.runAs(exe, args, u, cfg.Timeout+5*time.Second)
	url := check.Redact(cfg.URL)
	var rep check.Report
	parsed := json.Unmarshal(bytes.TrimSpace(r.Stdout), &rep) == nil && rep.Reason != ""
	facts := ""
	if parsed && rep.State != "" {
		f := []string{"state=" + rep.State, "role=" + rep.Role}
		if rep.PatroniVersion != "" {
			f = append(f, "version="+rep.PatroniVersion)
		}
		facts = " (" + strings.Join(f, ", ") + ")"
	}
	switch {
	case r.Err != nil:
		d.fail(pos, "", "%s: running the check failed: %s", show(who), show(errText(r.Err)))
	case !parsed:
		d.warn(pos, "install a patroni-vip-check as new as this doctor", "%s: the check exits %d without a report: %s", show(who), r.ExitCode, show(firstLine(lastLines(string(r.Stderr)))))
	case r.ExitCode == 0 && rep.Eligible:
		d.ok(pos, "%s: %s says this node may hold the VIP%s", show(who), show(url), show(facts))
	case r.ExitCode == 1 && rep.Reason == check.NotEligible:
		where := "the VIP stays with the primary"
		if u, err := neturl.Parse(cfg.URL); err == nil && slices.Equal(check.EndpointFor(u.Path).Roles, check.EndpointFor("/replica").Roles) {
			where = "the VIP goes to a replica that qualifies"
		}
		d.ok(pos, "%s: %s says this node may not hold the VIP now%s: %s", show(who), show(url), show(facts), where)
	case r.ExitCode == 1:
		d.fail(pos, "make Patroni's REST API answer the check (URL, TLS flags, firewall)",
			"%s: the check gets no usable answer from %s: %s: %s: this node can never hold the VIP", show(who), show(url), rep.Reason, show(rep.Detail))
	default:
		d.warn(pos, "", "%s: the check exits %d: %s", show(who), r.ExitCode, show(firstLine(lastLines(string(r.Stderr)))))
	}
}

func lastLines(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
