package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

const conf = "/etc/keepalived/keepalived.conf"

var (
	v227 = keepalived.Version{Major: 2, Minor: 2, Patch: 7}
	v233 = keepalived.Version{Major: 2, Minor: 3, Patch: 3}
	t0   = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

// elfHeader starts an executable for this machine.
func elfHeader() []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	m := elfMachine("amd64")
	if g := os.Getenv("GOARCH"); g != "" {
		m = elfMachine(g)
	}
	h[18], h[19] = byte(m), byte(m>>8)
	return h
}

// fakeCheck answers as patroni-vip-check does: --version, and a --json run
// whose report names the verdict's reason.
type fakeCheck struct {
	reason string // "eligible", "not-eligible", "unreachable"...
	broken bool   // exec fails
	args   []string
}

func (c *fakeCheck) run(cmd system.Cmd) system.Result {
	if c.broken {
		return system.Result{ExitCode: -1, Err: &fs.PathError{Op: "fork/exec", Path: cmd.Path, Err: errExecFormat{}}}
	}
	if len(cmd.Args) > 0 && cmd.Args[0] == "--version" {
		return system.Result{Stdout: []byte("patroni-vip-check 1.2.3\n")}
	}
	c.args = cmd.Args
	if !slices.Contains(cmd.Args, "--json") {
		return system.Result{ExitCode: 1, Stderr: []byte("patroni-vip-check: error: the doctor must ask for --json\n")}
	}
	rep := check.Report{Eligible: c.reason == "eligible", Reason: check.Class(c.reason), URL: "http://198.51.100.11:8008/primary",
		HTTPStatus: 200, Role: "master", State: "running", Timeline: 4, PatroniVersion: "3.0.2", ElapsedSeconds: 0.0012}
	code := 1
	if rep.Eligible {
		code = 0
	}
	out, _ := json.Marshal(rep)
	return system.Result{Stdout: append(out, '\n'), ExitCode: code}
}

type errExecFormat struct{}

func (errExecFormat) Error() string { return "exec format error" }

// node is a machine set up as the shipped examples assume: the package
// installed, keepalived running the file, Patroni answering, systemd
// running the watcher.
type node struct {
	sys   *systemtest.Fake
	check *fakeCheck
	opts  Options
	units map[string]*fakeUnit // what systemd has loaded
}

// fakeUnit is a unit as systemctl show says it, specifiers resolved.
type fakeUnit struct {
	load, active string
	pid          int
	exec         string // argv, as written: variables not expanded
	envFiles     []string
	user, caps   string
	protectHome  string
	privateTmp   string
}

// pgdata is the lab's PostgreSQL data directory, as Patroni's
// configuration and the examples' comments name it.
const pgdata = "/var/lib/postgresql/15/main"

// watchUnit is a watch unit as the packages install it, with its
// process at pid.
func watchUnit(instance string, pid int) *fakeUnit {
	u := &fakeUnit{load: "loaded", active: "active", pid: pid, caps: "cap_dac_read_search", protectHome: "yes", privateTmp: "yes",
		exec:     "/usr/bin/patroni-vip-check watch $PATRONI_VIP_CHECK_ARGS",
		envFiles: []string{"/etc/default/patroni-vip-check", "/etc/sysconfig/patroni-vip-check"}}
	if instance != "" {
		u.exec = "/usr/bin/patroni-vip-check watch --track-file=/run/keepalived-patroni-vip-check/" + instance + " $PATRONI_VIP_CHECK_ARGS"
		u.envFiles = []string{"/etc/default/patroni-vip-check@" + instance, "/etc/sysconfig/patroni-vip-check@" + instance}
	}
	return u
}

// addWatcher runs a template instance with these options: its unit, its
// options' file, its process, watching the data directory.
func (n *node) addWatcher(t *testing.T, instance, args string) {
	t.Helper()
	pid := 300 + len(n.units)
	n.units["patroni-vip-check@"+instance+".service"] = watchUnit(instance, pid)
	n.sys.Files["/etc/default/patroni-vip-check@"+instance] = &systemtest.File{Mode: 0o644, Data: []byte("PATRONI_VIP_CHECK_ARGS=\"" + args + "\"\n")}
	n.sys.Procs = append(n.sys.Procs, system.Process{PID: pid, Exe: "/usr/bin/patroni-vip-check",
		Args: []string{"/usr/bin/patroni-vip-check", "watch", "--track-file=/run/keepalived-patroni-vip-check/" + instance}, Start: t0})
	n.watchPGData(t, pid)
}

// watchPGData makes the process watch the data directory, as a watch
// with --pgdata does.
func (n *node) watchPGData(t *testing.T, pid int) {
	t.Helper()
	w, err := n.sys.WatchOf(pgdata)
	if err != nil {
		t.Fatal(err)
	}
	n.sys.Inotify[pid] = []system.Watch{w}
}

func newNode(t *testing.T, example string, v keepalived.Version) *node {
	t.Helper()
	data, err := os.ReadFile("../../packaging/" + example)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{check: &fakeCheck{reason: "eligible"}, units: map[string]*fakeUnit{"patroni-vip-check.service": watchUnit("", 200)}}
	dir := fs.ModeDir
	n.sys = &systemtest.Fake{
		Files: map[string]*systemtest.File{
			conf:                                {Mode: 0o644, Data: data, ModTime: t0},
			"/usr/bin/patroni-vip-check":        {Mode: 0o755, Data: elfHeader(), Label: "system_u:object_r:bin_t:s0"},
			"/usr/sbin/keepalived":              {Mode: 0o755, Data: elfHeader()},
			"/usr/bin/systemctl":                {Mode: 0o755, Data: elfHeader()},
			"/run/systemd/system":               {Mode: dir | 0o755},
			"/run/patroni-vip-check":            {Mode: dir | 0o711, Label: "system_u:object_r:var_run_t:s0"},
			"/run/patroni-vip-check/x.state":    {Mode: 0o600, Label: "system_u:object_r:keepalived_var_run_t:s0"},
			"/run/keepalived-patroni-vip-check": {Mode: dir | 0o755, Label: "system_u:object_r:keepalived_var_run_t:s0"},
			"/run/keepalived-patroni-vip-check/eligible": {Mode: 0o644, Data: []byte("1\n"),
				Label: "system_u:object_r:keepalived_var_run_t:s0"},
			"/usr/lib/tmpfiles.d/patroni-vip-check.conf": {Mode: 0o644, Data: []byte(
				"d /run/patroni-vip-check 0711 root root -\nd /run/keepalived-patroni-vip-check 0755 root root -\n")},
			"/etc/patroni/15-main.yml": {Mode: 0o640, Data: []byte(
				"name: node1\nrestapi:\n  listen: 0.0.0.0:8008\n  connect_address: 198.51.100.11:8008\n" +
					"postgresql:\n  listen: 0.0.0.0:5432\n  connect_address: 198.51.100.11:5432\n  data_dir: " + pgdata + "\n")},
			"/proc/sys/net/ipv4/ip_nonlocal_bind":     {Mode: 0o644, Data: []byte("0\n")},
			"/proc/sys/fs/inotify/max_user_instances": {Mode: 0o644, Data: []byte("128\n")},
			"/proc/sys/fs/inotify/max_user_watches":   {Mode: 0o644, Data: []byte("8192\n")},
			"/etc/default/patroni-vip-check": {Mode: 0o644, Data: []byte(
				"# the node's own REST API\nPATRONI_VIP_CHECK_ARGS=\"--pgdata " + pgdata + " http://198.51.100.11:8008/primary\"\n")},
			"/var/lib/postgresql":    {Mode: dir | 0o755, UID: 105, GID: 110},
			"/var/lib/postgresql/15": {Mode: dir | 0o755, UID: 105, GID: 110},
			pgdata:                   {Mode: dir | 0o700, UID: 105, GID: 110},
		},
		Users:  []system.User{{Name: "root", UID: 0, GID: 0, Home: "/root"}, {Name: "postgres", UID: 105, GID: 110}},
		Groups: map[string]uint32{"root": 0},
		Ifaces: []system.Interface{
			{Name: "lo", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}},
		},
		Procs: []system.Process{
			{PID: 100, Exe: "/usr/sbin/keepalived", Args: []string{"/usr/sbin/keepalived", "--dont-fork", "-D"}, Start: t0.Add(time.Hour)},
			{PID: 101, Exe: "/usr/sbin/keepalived", Args: []string{"/usr/sbin/keepalived", "--dont-fork", "-D"}, Start: t0.Add(time.Hour)},
			{PID: 200, Exe: "/usr/bin/patroni-vip-check", Args: []string{"/usr/bin/patroni-vip-check", "watch"}, Start: t0},
		},
	}
	n.sys.Commands = map[string]func(system.Cmd) system.Result{
		"/usr/sbin/keepalived": func(system.Cmd) system.Result {
			return system.Result{Stderr: []byte("Keepalived v" + v.String() + " (01/16,2022)\n")}
		},
		"/usr/bin/patroni-vip-check": func(c system.Cmd) system.Result { return n.check.run(c) },
		"/usr/bin/systemctl":         n.systemctl,
	}
	// keepalived's VRRP child watches the track file's directory, the
	// watch the data directory.
	w, err := n.sys.WatchOf("/run/keepalived-patroni-vip-check")
	if err != nil {
		t.Fatal(err)
	}
	n.sys.Inotify = map[int][]system.Watch{101: {{Dev: 1, Ino: 12345}, w}}
	n.watchPGData(t, 200)
	return n
}

// systemctl answers `systemctl show --property=A,B UNIT` as systemd does:
// KEY=VALUE lines, whatever the order asked; a unit systemd does not know
// is not-found.
func (n *node) systemctl(c system.Cmd) system.Result {
	if len(c.Args) != 3 || c.Args[0] != "show" || !strings.HasPrefix(c.Args[1], "--property=") {
		return system.Result{ExitCode: 1, Stderr: []byte("systemctl: not faked: " + strings.Join(c.Args, " "))}
	}
	u, ok := n.units[c.Args[2]]
	switch instance, isInstance := strings.CutPrefix(strings.TrimSuffix(c.Args[2], ".service"), "patroni-vip-check@"); {
	case ok:
	case isInstance:
		// The template is installed: any instance loads, and runs once
		// started.
		u = watchUnit(instance, 0)
		u.active = "inactive"
	default:
		u = &fakeUnit{load: "not-found", active: "inactive"}
	}
	var b strings.Builder
	for _, p := range strings.Split(strings.TrimPrefix(c.Args[1], "--property="), ",") {
		switch p {
		case "LoadState":
			fmt.Fprintf(&b, "LoadState=%s\n", u.load)
		case "ActiveState":
			fmt.Fprintf(&b, "ActiveState=%s\n", u.active)
		case "MainPID":
			fmt.Fprintf(&b, "MainPID=%d\n", u.pid)
		case "ExecStart":
			if u.exec != "" {
				fmt.Fprintf(&b, "ExecStart={ path=%s ; argv[]=%s ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n",
					strings.Fields(u.exec)[0], u.exec)
			}
		case "EnvironmentFiles":
			for _, f := range u.envFiles {
				fmt.Fprintf(&b, "EnvironmentFiles=%s (ignore_errors=yes)\n", f)
			}
		case "User":
			fmt.Fprintf(&b, "User=%s\n", u.user)
		case "CapabilityBoundingSet":
			fmt.Fprintf(&b, "CapabilityBoundingSet=%s\n", u.caps)
		case "ProtectHome":
			fmt.Fprintf(&b, "ProtectHome=%s\n", u.protectHome)
		case "PrivateTmp":
			fmt.Fprintf(&b, "PrivateTmp=%s\n", u.privateTmp)
		}
	}
	return system.Result{Stdout: []byte(b.String())}
}

func (n *node) run() []Finding {
	opts := n.opts
	opts.KeepalivedConf = conf
	return Run(context.Background(), n.sys, opts)
}

// line is the number of the configuration's first line that holds text.
func (n *node) line(t *testing.T, text string) int {
	t.Helper()
	data := string(n.sys.Files[conf].Data)
	i := strings.Index(data, text)
	if i < 0 {
		t.Fatalf("no %q in the configuration", text)
	}
	return 1 + strings.Count(data[:i], "\n")
}

// edit changes the configuration file.
func (n *node) edit(t *testing.T, old, new string) {
	t.Helper()
	f := n.sys.Files[conf]
	if !strings.Contains(string(f.Data), old) {
		t.Fatalf("no %q in the configuration", old)
	}
	f.Data = []byte(strings.Replace(string(f.Data), old, new, 1))
}

func lines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

// The shipped examples, on a machine set up as they assume, give no
// warning and no failure.
func TestShippedExamplesPass(t *testing.T) {
	for _, tc := range []struct {
		example string
		v       keepalived.Version
	}{
		{"keepalived.conf", v227},
		{"keepalived-2.3.conf", v233},
		{"keepalived-watch.conf", v227},
		{"keepalived-watch.conf", v233},
	} {
		for _, selinux := range []string{"", "1"} {
			n := newNode(t, tc.example, tc.v)
			if selinux != "" {
				n.sys.Files["/sys/fs/selinux/enforce"] = &systemtest.File{Mode: 0o644, Data: []byte(selinux)}
			}
			fs := n.run()
			for _, f := range fs {
				if f.Level != OK {
					t.Errorf("%s, keepalived %s, SELinux %q: not only ok:\n%s", tc.example, tc.v, selinux, lines(fs))
					break
				}
			}
			if len(fs) < 8 {
				t.Errorf("%s: only %d findings:\n%s", tc.example, len(fs), lines(fs))
			}
		}
	}
}

// want asserts a finding of level whose line holds every part.
func want(t *testing.T, fs []Finding, level Level, parts ...string) {
	t.Helper()
	for _, f := range fs {
		if f.Level != level {
			continue
		}
		line, all := f.String(), true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			if strings.Contains(line, "\n") {
				t.Errorf("finding on more than one line: %q", line)
			}
			return
		}
	}
	t.Errorf("no %s finding with %q in:\n%s", level, parts, lines(fs))
}

// none asserts that no finding is worse than ok.
func none(t *testing.T, fs []Finding, level Level) {
	t.Helper()
	for _, f := range fs {
		if f.Level >= level {
			t.Errorf("unexpected %s: %s\nall:\n%s", f.Level, f, lines(fs))
			return
		}
	}
}

// moveCheck installs the check elsewhere, with the given directories.
func (n *node) moveCheck(t *testing.T, bin string, dirs map[string]*systemtest.File) {
	n.sys.Files[bin] = &systemtest.File{Mode: 0o755, Data: elfHeader(), Label: "system_u:object_r:bin_t:s0"}
	for d, f := range dirs {
		n.sys.Files[d] = f
	}
	n.sys.Commands[bin] = n.check.run
	n.edit(t, `script "/usr/bin/patroni-vip-check`, `script "`+bin)
}

func TestUnsafeScriptPath(t *testing.T) {
	dir := fs.ModeDir
	cases := []struct {
		name  string
		dirs  map[string]*systemtest.File
		file  *systemtest.File
		bad   string // the component found unsafe, "" for none
		level Level
	}{
		{"other-writable directory", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o777}}, nil, "/opt/pvc is writable by others (0777)", Failure},
		{"group-writable by a non-root group", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o775, GID: 50}}, nil, "/opt/pvc is writable by group 50", Failure},
		{"not root's", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o755, UID: 105}}, nil, "/opt/pvc is owned by postgres, not root", Failure},
		{"file writable by group", nil, &systemtest.File{Mode: 0o775, GID: 50, Data: elfHeader()}, "/opt/pvc/patroni-vip-check is writable by group 50", Failure},
		{"sticky root directory", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | fs.ModeSticky | 0o777}}, nil, "", OK},
		{"writable by root's group", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o775}}, nil, "", OK},
	}
	for _, tc := range cases {
		n := newNode(t, "keepalived.conf", v227)
		n.moveCheck(t, "/opt/pvc/patroni-vip-check", tc.dirs)
		if tc.file != nil {
			n.sys.Files["/opt/pvc/patroni-vip-check"] = tc.file
		}
		fs := n.run()
		if tc.bad == "" {
			none(t, fs, Failure)
			continue
		}
		want(t, fs, tc.level, fmt.Sprintf("keepalived.conf:%d: vrrp_script patroni_primary: ", n.line(t, "    script "))+tc.bad, "Unsafe permissions found",
			"keepalived disables the track script and the instance takes the VIP without it")
	}
	// A link is checked where it leads (2.2.7) and where it is (2.3.3).
	n := newNode(t, "keepalived.conf", v227)
	n.moveCheck(t, "/opt/pvc/patroni-vip-check", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o777}})
	n.sys.Files["/usr/local/bin/pvc"] = &systemtest.File{Mode: fs.ModeSymlink | 0o777, Target: "/opt/pvc/patroni-vip-check"}
	n.edit(t, `script "/opt/pvc/patroni-vip-check`, `script "/usr/local/bin/pvc`)
	want(t, n.run(), Failure, "/opt/pvc is writable by others")
	// Without enable_script_security the same path runs: a warning.
	n = newNode(t, "keepalived.conf", v227)
	n.moveCheck(t, "/opt/pvc/patroni-vip-check", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o777}})
	n.edit(t, "    enable_script_security\n", "")
	fs := n.run()
	want(t, fs, Warning, "/opt/pvc is writable by others", "anyone who can write there can run code as root")
	want(t, fs, Warning, "no enable_script_security", "add enable_script_security to global_defs")
	none(t, fs, Failure)
	// keepalived checks the path only for root: keepalived_script may run it.
	n = newNode(t, "keepalived.conf", v227)
	n.moveCheck(t, "/opt/pvc/patroni-vip-check", map[string]*systemtest.File{"/opt/pvc": {Mode: dir | 0o777}})
	n.edit(t, "    script_user root\n", "")
	n.sys.Users = append(n.sys.Users, system.User{Name: "keepalived_script", UID: 998, GID: 998})
	fs = n.run()
	want(t, fs, OK, "runs as keepalived_script")
	want(t, fs, OK, "who can run it (keepalived checks the path's owners only for root)")
	want(t, fs, Warning, "the check's state directory /run/patroni-vip-check/keepalived_script does not exist, and keepalived_script cannot create it")
}

func TestMissingOrBrokenBinary(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	delete(n.sys.Files, "/usr/bin/patroni-vip-check")
	want(t, n.run(), Failure, fmt.Sprintf(":%d: vrrp_script patroni_primary: /usr/bin/patroni-vip-check cannot be accessed", n.line(t, "    script ")), "takes the VIP without it")

	n = newNode(t, "keepalived.conf", v227)
	n.sys.Files["/usr/bin/patroni-vip-check"].Mode = 0o644
	want(t, n.run(), Failure, "is not executable for root (mode 0644)")

	n = newNode(t, "keepalived.conf", v227)
	n.check.broken = true
	want(t, n.run(), Failure, "does not run (exec format error)", "counts a script that fails to start as a success")

	n = newNode(t, "keepalived.conf", v227)
	n.sys.Commands["/usr/bin/patroni-vip-check"] = func(system.Cmd) system.Result {
		return system.Result{Stdout: []byte("curl 7.88.1\n"), ExitCode: 0}
	}
	want(t, n.run(), Failure, "it is not patroni-vip-check")
}

func TestScriptUser(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "script_user root", "script_user pvc")
	want(t, n.run(), Failure, "user pvc does not exist", "removes every vrrp_script without a user of its own")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    script_user root\n", "")
	want(t, n.run(), Failure, "no script_user and no user keepalived_script", "Unable to set default user", "add script_user root")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    fall 1\n", "    fall 1\n    user nobody\n")
	want(t, n.run(), Failure, "user nobody does not exist", "removes vrrp_script patroni_primary")
}

func TestNoAccept(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "    accept\n", "    no_accept\n")
	want(t, n.run(), Failure, fmt.Sprintf(":%d: vrrp_instance patroni_vip: no_accept makes keepalived 2.2.7 drop every packet addressed to the VIP", n.line(t, "    no_accept")), "use accept")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    accept\n", "")
	n.edit(t, "global_defs {\n", "global_defs {\n    vrrp_strict\n")
	fs := n.run()
	want(t, fs, Warning, "vrrp_strict: keepalived drops all traffic to the VIP of any instance without an explicit accept")
	want(t, fs, Failure, "vrrp_strict (which forces no_accept) makes keepalived 2.2.7 drop every packet")
	// With accept and VRRP version 3, strict mode keeps accept.
	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "global_defs {\n", "global_defs {\n    vrrp_strict\n")
	fs = n.run()
	want(t, fs, Warning, "vrrp_strict")
	none(t, fs, Failure)
}

func TestWeights(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "        patroni_primary\n    }\n}", "        patroni_primary weight -20\n    }\n}")
	fs := n.run()
	want(t, fs, Failure, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip: track_script patroni_primary has weight -20: a failing check only changes the priority and the node may keep the VIP; remove the weight", n.line(t, "patroni_primary weight -20")))
	want(t, fs, Failure, "vrrp_instance patroni_vip has no check that can put it in FAULT")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    fall 1\n", "    fall 1\n    weight 10\n")
	want(t, n.run(), Failure, "track_script patroni_primary has weight 10", "remove the weight from vrrp_script patroni_primary")
}

func TestTimeouts(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "patroni-vip-check http://", "patroni-vip-check --timeout 2s http://")
	want(t, n.run(), Failure, fmt.Sprintf(":%d: vrrp_script patroni_primary: keepalived's timeout 1s is not above the check's --timeout 2s", n.line(t, "    timeout 1")), "kills slow answers")

	// No timeout: keepalived's is the interval.
	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    timeout 1\n", "")
	n.edit(t, "patroni-vip-check http://", "patroni-vip-check --timeout=1s http://")
	want(t, n.run(), Failure, "keepalived's timeout (the interval, as none is set) 1s is not above the check's --timeout 1s")

	// The 2.3 example's 0.5 s timeout against the check's 400ms is fine on 2.3.3...
	n = newNode(t, "keepalived-2.3.conf", v233)
	fs := n.run()
	want(t, fs, OK, "keepalived's timeout 500ms is above the check's --timeout 400ms; it runs every 200ms")
	none(t, fs, Warning)
	// ...and on 2.2.7 both fractions fail.
	n = newNode(t, "keepalived-2.3.conf", v227)
	fs = n.run()
	want(t, fs, Failure, "interval 0.2: invalid number '0.2': keepalived 2.2.7 reads whole seconds - raised to 1 s; keepalived runs the check every 1s", "fractions need keepalived 2.3.2")
	want(t, fs, Failure, "timeout 0.5: invalid number")
	for _, f := range fs { // the interval's failure says it all
		if f.Level == Warning && strings.Contains(f.String(), "--interval") {
			t.Errorf("a warning on --interval beside the interval's failure: %s", f)
		}
	}

	// keepalived's timeout 0.45 s leaves the check 50 ms, less than a busy
	// node takes between keepalived's fork and the check's clock.
	n = newNode(t, "keepalived-2.3.conf", v233)
	n.edit(t, "    timeout 0.5\n", "    timeout 0.45\n")
	want(t, n.run(), Failure, "keepalived's timeout 450ms is not above the check's --timeout 400ms", "set timeout above 500ms")

	// The check's --interval must be keepalived's, or its warning is wrong.
	n = newNode(t, "keepalived-2.3.conf", v233)
	n.edit(t, "--interval 200ms", "--interval 50ms")
	want(t, n.run(), Warning, "the check's --interval 50ms is not keepalived's interval 200ms", "give the check --interval 200ms")
	n = newNode(t, "keepalived-2.3.conf", v233)
	n.edit(t, "--interval 200ms", "--interval")
	want(t, n.run(), Failure, `--interval "--timeout": not a duration (like 800ms, 1s or 1h): the check exits 1 at every run`)
}

func TestTrackFile(t *testing.T) {
	n := newNode(t, "keepalived-watch.conf", v227)
	delete(n.sys.Files, "/run/keepalived-patroni-vip-check/eligible")
	delete(n.sys.Files, "/run/keepalived-patroni-vip-check")
	want(t, n.run(), Failure, "track_file patroni_primary: the directory /run/keepalived-patroni-vip-check does not exist",
		`"Track file directory for patroni_primary does not exist - removing"`, "takes the VIP without it")
	n = newNode(t, "keepalived-watch.conf", v233)
	delete(n.sys.Files, "/run/keepalived-patroni-vip-check/eligible")
	delete(n.sys.Files, "/run/keepalived-patroni-vip-check")
	want(t, n.run(), Failure, `"realpath() error 2 (No such file or directory) for patroni_primary"`)

	n = newNode(t, "keepalived-watch.conf", v227)
	delete(n.sys.Files, "/usr/lib/tmpfiles.d/patroni-vip-check.conf")
	want(t, n.run(), Warning, "nothing creates it at boot", "d /run/keepalived-patroni-vip-check 0755 root root -")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "weight 0 reverse", "weight 0")
	want(t, n.run(), Failure, "weight 0 without reverse: a missing, empty or garbage file counts as healthy (fails open)")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    weight 0 reverse\n", "")
	want(t, n.run(), Failure, "track_file patroni_primary has weight 1: the file's value only changes the priority")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    weight 0 reverse\n", "    weight 0 reverse\n    init_file 1 overwrite\n")
	want(t, n.run(), Failure, "init_file writes 1 when keepalived starts")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.sys.Files["/run/keepalived-patroni-vip-check/eligible"].Data = []byte("yes\n")
	want(t, n.run(), Warning, `holds "yes", which keepalived reads as 0`)
	n.sys.Files["/run/keepalived-patroni-vip-check/eligible"].Data = []byte("0\n")
	want(t, n.run(), OK, "says 0: this node may not hold the VIP now")
}

func TestWatchService(t *testing.T) {
	n := newNode(t, "keepalived-watch.conf", v227)
	n.units["patroni-vip-check.service"].active = "failed"
	want(t, n.run(), Failure, "patroni-vip-check.service is failed: nothing keeps /run/keepalived-patroni-vip-check/eligible up to date")

	n = newNode(t, "keepalived-watch.conf", v227)
	delete(n.sys.Files, "/run/systemd/system")
	want(t, n.run(), Warning, "cannot tell whether patroni-vip-check.service runs: systemd does not run here")

	n = newNode(t, "keepalived-watch.conf", v227)
	n.sys.Procs[2].Exe = "/usr/bin/patroni-vip-check (deleted)"
	want(t, n.run(), Warning, "still runs the binary that was replaced")

	// A file of the track directory is a template instance's...
	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    file /run/keepalived-patroni-vip-check/eligible\n", "    file /run/keepalived-patroni-vip-check/other\n")
	line := n.line(t, "    file /run/keepalived-patroni-vip-check/other")
	want(t, n.run(), Failure, fmt.Sprintf("keepalived.conf:%d: patroni-vip-check@other.service has no options (/etc/default/patroni-vip-check@other or /etc/sysconfig/patroni-vip-check@other): it does not start, nothing keeps /run/keepalived-patroni-vip-check/other", line),
		`echo 'PATRONI_VIP_CHECK_ARGS="--pgdata DIR http://NODE:8008/primary"' > /etc/default/patroni-vip-check@other, then systemctl enable --now patroni-vip-check@other.service`)
	n.sys.Files["/etc/default/patroni-vip-check@other"] = &systemtest.File{Mode: 0o644, Data: []byte("PATRONI_VIP_CHECK_ARGS=http://198.51.100.11:8008/primary\n")}
	want(t, n.run(), Failure, "patroni-vip-check@other.service is inactive: nothing keeps /run/keepalived-patroni-vip-check/other up to date", "systemctl enable --now patroni-vip-check@other.service")
	n.addWatcher(t, "other", "--pgdata "+pgdata+" http://198.51.100.11:8008/primary")
	found := n.run()
	none(t, found, Warning)
	want(t, found, OK, "track_file patroni_primary: patroni-vip-check@other.service keeps /run/keepalived-patroni-vip-check/other")
	want(t, found, OK, "patroni-vip-check@other.service: http://198.51.100.11:8008/primary says this node may hold the VIP")
	for _, f := range found {
		if strings.Contains(f.Msg, "patroni-vip-check.service") {
			t.Errorf("the plain unit, which keeps no file in use, is judged: %s", f)
		}
	}
	// ...unless the plain unit's options name it.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    file /run/keepalived-patroni-vip-check/eligible\n", "    file /run/keepalived-patroni-vip-check/other\n")
	n.sys.Files["/etc/default/patroni-vip-check"].Data = []byte("PATRONI_VIP_CHECK_ARGS=\"--track-file /run/keepalived-patroni-vip-check/other --pgdata " + pgdata + " http://198.51.100.11:8008/primary\"\n")
	found = n.run()
	none(t, found, Warning)
	want(t, found, OK, "track_file patroni_primary: patroni-vip-check.service keeps /run/keepalived-patroni-vip-check/other")

	// A file elsewhere is the plain unit's.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    file /run/keepalived-patroni-vip-check/eligible\n", "    file /run/pvc/eligible\n")
	n.sys.Files["/run/pvc"] = &systemtest.File{Mode: fs.ModeDir | 0o755}
	want(t, n.run(), Failure, "track_file patroni_primary reads /run/pvc/eligible, but patroni-vip-check.service keeps /run/keepalived-patroni-vip-check/eligible", "make both name the same file")
	delete(n.units, "patroni-vip-check.service")
	want(t, n.run(), Failure, "patroni-vip-check.service is not-found: nothing keeps /run/pvc/eligible, and the instance stays in FAULT")

	// No unit name holds some file names.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.edit(t, "    file /run/keepalived-patroni-vip-check/eligible\n", "    file \"/run/keepalived-patroni-vip-check/a b\"\n")
	want(t, n.run(), Failure, "track_file patroni_primary reads /run/keepalived-patroni-vip-check/a b, which no instance of patroni-vip-check@.service can keep")
}

func TestRunningKeepalived(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.sys.Procs = n.sys.Procs[2:]
	want(t, n.run(), Warning, "keepalived is not running")

	n = newNode(t, "keepalived.conf", v227)
	n.sys.Files[conf].ModTime = t0.Add(2 * time.Hour)
	want(t, n.run(), Warning, "changed after keepalived (pid 100) started", "systemctl reload keepalived")

	n = newNode(t, "keepalived.conf", v227)
	n.sys.Procs[0].Args = []string{"/usr/sbin/keepalived", "-f", "/etc/keepalived/other.conf"}
	n.sys.Files["/etc/keepalived/other.conf"] = &systemtest.File{Mode: 0o644}
	want(t, n.run(), Warning, "keepalived (pid 100) reads /etc/keepalived/other.conf, not the file checked")

	// Another build than the installed one.
	n = newNode(t, "keepalived.conf", v227)
	n.moveCheck(t, "/usr/local/bin/patroni-vip-check", nil)
	n.sys.Files["/usr/local/bin/patroni-vip-check"].Data = append(elfHeader(), 1)
	want(t, n.run(), Warning, "keepalived runs /usr/local/bin/patroni-vip-check (patroni-vip-check 1.2.3), not the installed /usr/bin/patroni-vip-check")
	n.sys.Files["/usr/local/bin/patroni-vip-check"].Data = elfHeader()
	want(t, n.run(), OK, "is a copy of the installed /usr/bin/patroni-vip-check")
}

func TestPatroniAnswer(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.check.reason = "unreachable"
	want(t, n.run(), Failure, "the check gets no usable answer from http://198.51.100.11:8008/primary", "this node can never hold the VIP")
	n.check.reason = "not-eligible"
	fs := n.run()
	want(t, fs, OK, "says this node may not hold the VIP now (state=running, role=master, version=3.0.2)")
	none(t, fs, Warning)
}

func TestPostgresListen(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	f := n.sys.Files["/etc/patroni/15-main.yml"]
	f.Data = []byte(strings.Replace(string(f.Data), "listen: 0.0.0.0:5432", "listen: 127.0.0.1,198.51.100.11:5432", 1))
	want(t, n.run(), Failure, "PostgreSQL listens on 127.0.0.1, 198.51.100.11 only", "connections to the VIP 198.51.100.100 are refused", "'*:5432'")
	f.Data = []byte(strings.Replace(string(f.Data), "127.0.0.1,198.51.100.11:5432", "198.51.100.100:5432", 1))
	want(t, n.run(), Warning, "by address: it fails to start where the VIP is not held")
}

func TestNetwork(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "dev eth0 label eth0:1", "dev eth1 label eth1:1")
	want(t, n.run(), Failure, "virtual_ipaddress 198.51.100.100/24: dev eth1 does not exist here")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "198.51.100.100/24 dev", "203.0.113.100/24 dev")
	want(t, n.run(), Warning, "the VIP 203.0.113.100/24 is in no subnet of eth0")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "198.51.100.100/24 dev", "198.51.100.100 dev")
	want(t, n.run(), Warning, "the VIP 198.51.100.100/32 has another prefix than eth0's 198.51.100.11/24")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "interface eth0", "interface eth9")
	want(t, n.run(), Failure, "interface eth9 does not exist here")
}

func TestGating(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "    track_script {\n        patroni_primary\n    }\n", "")
	want(t, n.run(), Failure, "vrrp_instance patroni_vip tracks no script and no file: it takes the VIP whatever Patroni says")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "        patroni_primary\n    }\n}", "        patroni_check\n    }\n}")
	want(t, n.run(), Failure, "track_script patroni_check: keepalived ignores this line ((patroni_vip) track script patroni_check not found, ignoring...): the check is not applied", "define vrrp_script patroni_check before the block that tracks it")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, `script "/usr/bin/patroni-vip-check http://198.51.100.11:8008/primary"`, `script /usr/bin/patroni-vip-check http://198.51.100.11:8008/primary`)
	want(t, n.run(), Failure, "keepalived runs only /usr/bin/patroni-vip-check and drops http://198.51.100.11:8008/primary")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "state BACKUP", "state MASTER")
	want(t, n.run(), Warning, "starts as MASTER")
}

func TestStateDir(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.sys.Files["/run/patroni-vip-check"].UID = 105
	want(t, n.run(), Warning, "the check's state directory /run/patroni-vip-check belongs to postgres, not root", "chown root")

	n = newNode(t, "keepalived.conf", v227)
	n.sys.Files["/run/patroni-vip-check"].Mode = fs.ModeDir | 0o777
	want(t, n.run(), Warning, "has mode 0777")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "patroni-vip-check http://", "patroni-vip-check --state-dir /var/lib/pvc http://")
	want(t, n.run(), OK, "the check's state directory /var/lib/pvc does not exist yet")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "patroni-vip-check http://", "patroni-vip-check --no-state http://")
	want(t, n.run(), Warning, "--no-state: it logs every result, every run")
}

func TestSELinux(t *testing.T) {
	enforce := func(n *node, mode string) {
		n.sys.Files["/sys/fs/selinux/enforce"] = &systemtest.File{Mode: 0o644, Data: []byte(mode)}
	}
	n := newNode(t, "keepalived.conf", v227)
	enforce(n, "1")
	n.sys.Files["/usr/bin/patroni-vip-check"].Label = "unconfined_u:object_r:admin_home_t:s0"
	want(t, n.run(), Failure, "/usr/bin/patroni-vip-check is labelled admin_home_t, which keepalived may not execute", "restorecon")
	enforce(n, "0")
	want(t, n.run(), Warning, "labelled admin_home_t", "(once SELinux enforces)")

	n = newNode(t, "keepalived.conf", v227)
	enforce(n, "1")
	n.edit(t, "198.51.100.11:8008/primary", "198.51.100.11:8010/primary")
	fs := n.run()
	want(t, fs, Failure, "Patroni's port 8010 is not an http_port_t port", "semanage port -a -t http_port_t -p tcp 8010")
	n.sys.Files["/sys/fs/selinux/booleans/keepalived_connect_any"] = &systemtest.File{Mode: 0o644, Data: []byte("1 1")}
	none(t, n.run(), Failure)

	n = newNode(t, "keepalived.conf", v227)
	enforce(n, "1")
	n.sys.Files["/run/patroni-vip-check/x.state"].Label = "unconfined_u:object_r:var_run_t:s0"
	want(t, n.run(), Failure, "state file /run/patroni-vip-check/x.state is labelled var_run_t")

	n = newNode(t, "keepalived-watch.conf", v227)
	enforce(n, "1")
	n.sys.Files["/run/keepalived-patroni-vip-check/eligible"].Label = "system_u:object_r:var_run_t:s0"
	want(t, n.run(), Failure, "eligible is labelled var_run_t: keepalived may not read it, reads 0")
	n.sys.Files["/run/keepalived-patroni-vip-check"].Label = "system_u:object_r:var_run_t:s0"
	want(t, n.run(), Failure, "/run/keepalived-patroni-vip-check is labelled var_run_t: keepalived may not watch it")
}

func TestUnreadableConfig(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	delete(n.sys.Files, conf)
	fs := n.run()
	want(t, fs, Failure, "cannot read the keepalived configuration: /etc/keepalived/keepalived.conf: file does not exist")
	if !Failed(fs) {
		t.Error("Failed is false")
	}
}

func TestConfigArg(t *testing.T) {
	for want, args := range map[string][]string{
		DefaultKeepalivedConf: {"keepalived", "-D"},
		"/a":                  {"keepalived", "-f", "/a"},
		"/b":                  {"keepalived", "-f/b"},
		"/c":                  {"keepalived", "--use-file=/c"},
		"/d":                  {"keepalived", "-l", "--use-file", "/d", "-D"},
	} {
		if got := ConfigArg(args); got != want {
			t.Errorf("ConfigArg(%q) = %q, want %q", args, got, want)
		}
	}
}

func TestStrtol(t *testing.T) {
	for in, want := range map[string]int64{"1\n": 1, " 0": 0, "0x10": 16, "010": 8, "-3": -3, "1abc": 1, "0x": 0} {
		if got, ok := strtol([]byte(in)); !ok || got != want {
			t.Errorf("strtol(%q) = %d %t, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "yes", "-", "99999999999999999999"} {
		if _, ok := strtol([]byte(in)); ok {
			t.Errorf("strtol(%q) ok", in)
		}
	}
}

// TestNoPasswordInFindings: a password in the check's URL shows as xxxxx in
// every finding, whether the URL is the one the check asks or words that
// keepalived drops from an unquoted script line.
func TestNoPasswordInFindings(t *testing.T) {
	const url = "http://198.51.100.11:8008/primary"
	const secret = "http://watch:S3CRET@198.51.100.11:8008/primary"
	for _, edit := range []struct{ from, to string }{
		{url, secret},
		{`script "/usr/bin/patroni-vip-check ` + url + `"`, `script /usr/bin/patroni-vip-check ` + secret},
	} {
		n := newNode(t, "keepalived.conf", v227)
		n.edit(t, edit.from, edit.to)
		fs := n.run()
		shown := false
		for _, f := range fs {
			line := f.String()
			if strings.Contains(line, "S3CRET") {
				t.Errorf("the password shows: %s", line)
			}
			shown = shown || strings.Contains(line, "watch:xxxxx@198.51.100.11")
		}
		if !shown {
			t.Errorf("no finding names the URL (%s):\n%v", edit.to, fs)
		}
	}
}

// TestInvertedGate: "weight 0 reverse" on a tracked script puts the
// instance in FAULT while the check passes: the primary never holds the
// VIP. Wherever it is written, and however the track_script line
// overrides it, it is read as keepalived reads it.
func TestInvertedGate(t *testing.T) {
	const inverted = "has weight 0 reverse: keepalived puts the instance in FAULT while the check passes and lets it take the VIP while it fails: the primary never holds the VIP, and every replica is a candidate"
	cases := []struct {
		name, script, ref string
		fix               string // "" when the gate is right
	}{
		{"in vrrp_script", "    weight 0 reverse\n", "patroni_primary", "remove reverse from vrrp_script patroni_primary (or track it as patroni_primary weight 0 noreverse)"},
		{"in track_script", "", "patroni_primary weight 0 reverse", "remove reverse"},
		{"a weight override keeps the script's reverse", "    weight 0 reverse\n", "patroni_primary weight 0", "remove reverse from vrrp_script"},
		{"noreverse undoes it", "    weight 0 reverse\n", "patroni_primary weight 0 noreverse", ""},
		{"the manual's no_reverse does not", "    weight 0 reverse\n", "patroni_primary weight 0 no_reverse", "remove reverse from vrrp_script"},
	}
	for _, tc := range cases {
		n := newNode(t, "keepalived.conf", v227)
		n.edit(t, "    fall 1\n", "    fall 1\n"+tc.script)
		n.edit(t, "        patroni_primary\n    }\n}", "        "+tc.ref+"\n    }\n}")
		fs := n.run()
		if tc.fix == "" {
			none(t, fs, Failure)
			want(t, fs, OK, "vrrp_instance patroni_vip is gated by vrrp_script patroni_primary, without weight")
			continue
		}
		line := n.line(t, "        "+tc.ref+"\n")
		if !strings.HasSuffix(tc.ref, " reverse") {
			line = n.line(t, tc.script)
		}
		want(t, fs, Failure, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip: track_script patroni_primary %s", line, inverted), tc.fix)
		want(t, fs, Failure, "vrrp_instance patroni_vip has no check that can put it in FAULT")
		for _, f := range fs {
			if f.Level == OK && strings.Contains(f.Msg, "is gated by") {
				t.Errorf("%s: %s", tc.name, f)
			}
		}
	}
}

// TestTrackingLines: lines keepalived drops are failures where they were
// meant to gate, warnings where they change nothing.
func TestTrackingLines(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "        patroni_primary\n    }\n}", "        patroni_primary reverse\n    }\n}")
	fs := n.run()
	want(t, fs, Failure, "track_script patroni_primary: keepalived ignores this line ((patroni_vip) unknown track script option reverse - ignoring): the check is not applied")
	want(t, fs, Failure, "vrrp_instance patroni_vip has no check that can put it in FAULT")

	// A vrrp_script after the instance is "not found" where keepalived
	// reads the track_script line.
	n = newNode(t, "keepalived.conf", v227)
	f := n.sys.Files[conf]
	text := string(f.Data)
	start, end := strings.Index(text, "vrrp_script patroni_primary {"), strings.Index(text, "vrrp_instance patroni_vip {")
	f.Data = []byte(text[:start] + text[end:] + "\n" + text[start:end])
	fs = n.run()
	want(t, fs, Failure, "track script patroni_primary not found, ignoring...: vrrp_script patroni_primary comes after this line")
	want(t, fs, Failure, "has no check that can put it in FAULT")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "        patroni_primary\n    }\n}", "        patroni_primary\n        patroni_primary\n    }\n}")
	fs = n.run()
	want(t, fs, Warning, "duplicate track_script patroni_primary - ignoring", "remove the line")
	none(t, fs, Failure)
}

// TestSyncGroup: a track_script on a vrrp_sync_group gates each of its
// instances; weighted checks on a member are dropped.
func TestSyncGroup(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "    track_script {\n        patroni_primary\n    }\n}", "}\nvrrp_sync_group pg {\n    group {\n        patroni_vip\n    }\n    track_script {\n        patroni_primary\n    }\n}")
	fs := n.run()
	none(t, fs, Failure)
	want(t, fs, OK, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip is gated by vrrp_script patroni_primary (from vrrp_sync_group pg), without weight", n.line(t, "        patroni_primary\n    }\n}")))
	want(t, fs, OK, "vrrp_script patroni_primary: http://198.51.100.11:8008/primary says this node may hold the VIP")

	// The instance's own weighted check is dropped; without the group's,
	// nothing gates.
	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "        patroni_primary\n    }\n}", "        patroni_primary weight -20\n    }\n}\nvrrp_sync_group pg {\n    group {\n        patroni_vip\n    }\n}")
	fs = n.run()
	want(t, fs, Warning, "(patroni_vip) ignoring tracked script patroni_primary with weights due to SYNC group")
	want(t, fs, Failure, "vrrp_instance patroni_vip has no check that can put it in FAULT")

	// A group whose group block names no instance gates nothing.
	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    track_script {\n        patroni_primary\n    }\n}", "}\nvrrp_sync_group pg {\n    group {\n        other\n    }\n    track_script {\n        patroni_primary\n    }\n}")
	want(t, n.run(), Failure, "vrrp_instance patroni_vip tracks no script and no file")
}

// TestRouterID: without a valid virtual_router_id keepalived's VRRP
// process stops: no VIP on any node.
func TestRouterID(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"", "vrrp_instance patroni_vip has no virtual_router_id: keepalived's VRRP process stops at start (\"the virtual router id must be set\") and no node holds the VIP"},
		{"    virtual_router_id 0\n", "virtual_router_id 0 is not a number from 1 to 255"},
		{"    virtual_router_id 256\n", "virtual_router_id 256 is not a number from 1 to 255"},
		{"    virtual_router_id 51a\n", "virtual_router_id 51a is not a number from 1 to 255"},
	} {
		n := newNode(t, "keepalived.conf", v227)
		n.edit(t, "    virtual_router_id 51\n", tc.edit)
		want(t, n.run(), Failure, tc.want, "set virtual_router_id to a number from 1 to 255")
	}
}

// TestVRRPVersion: accept under strict mode is judged by the version the
// instance speaks, the global vrrp_version included.
func TestVRRPVersion(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "    version 3\n", "")
	n.edit(t, "global_defs {\n", "global_defs {\n    vrrp_version 3\n    vrrp_strict\n")
	fs := n.run()
	want(t, fs, OK, "vrrp_instance patroni_vip accepts traffic to its VIPs")
	none(t, fs, Failure)
	n.edit(t, "    vrrp_version 3\n", "")
	want(t, n.run(), Failure, "vrrp_strict (which forces no_accept)")

	// Strict mode (and VRRP version 3) need a VIP.
	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    virtual_ipaddress {\n        198.51.100.100/24 dev eth0 label eth0:1\n    }\n", "")
	want(t, n.run(), Failure, "vrrp_instance patroni_vip has no virtual_ipaddress keepalived can use: keepalived's VRRP process stops at start (\"No VIP specified; at least one is required\")")
}

// TestAuthentication: what protects the adverts.
func TestAuthentication(t *testing.T) {
	const auth = "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n"
	n := newNode(t, "keepalived.conf", v227)
	n.edit(t, "    accept\n", "    accept\n"+fmt.Sprintf(auth, "s3cret"))
	fs := n.run()
	want(t, fs, Warning, `keepalived ignores authentication ("VRRP version 3 does not support authentication"): the adverts carry no password`, "remove the authentication block")
	want(t, fs, OK, "takes adverts from its unicast peers only (check_unicast_src)")

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    version 3\n", "    version 2\n")
	n.edit(t, "    accept\n", "    accept\n"+fmt.Sprintf(auth, "longer-than-8"))
	fs = n.run()
	want(t, fs, Warning, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip: auth_type PASS sends the password in clear text", n.line(t, "        auth_type")), "protect VRRP with unicast_peer and check_unicast_src")
	want(t, fs, Warning, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip: auth_pass is longer than 8 characters", n.line(t, "        auth_pass")), "use at most 8 characters")
	for _, f := range fs {
		if strings.Contains(f.String(), "longer-than") || strings.Contains(f.String(), "longer-t") {
			t.Errorf("the password shows: %s", f)
		}
	}

	n = newNode(t, "keepalived.conf", v227)
	n.edit(t, "    check_unicast_src\n", "")
	want(t, n.run(), Warning, "vrrp_instance patroni_vip takes adverts from any address", "add check_unicast_src")
	n.edit(t, "    unicast_src_ip 198.51.100.11\n    unicast_peer {\n        198.51.100.12\n        198.51.100.13\n    }\n", "")
	want(t, n.run(), Warning, "uses multicast and takes adverts from any host of its network")
}

// setScript replaces the shipped example's script line.
func (n *node) setScript(t *testing.T, line string) {
	t.Helper()
	n.edit(t, `script "/usr/bin/patroni-vip-check http://198.51.100.11:8008/primary"`, line)
}

// TestShellSyntaxWithoutShell: keepalived execs the program: a pipe or a
// redirection is an argument, and the line never does what it says.
func TestShellSyntaxWithoutShell(t *testing.T) {
	for _, tc := range []struct{ line, ops string }{
		{`script "/usr/bin/curl -s --fail http://198.51.100.11:8008/patroni | grep -q primary"`, "|"},
		{`script "/usr/bin/curl -s http://127.0.0.1:8008/leader -v 2>&1|grep '200 OK' >/dev/null"`, "> |"},
		{`script "/usr/bin/test -f /tmp/x && /usr/bin/curl -sf http://198.51.100.11:8008/primary"`, "&&"},
		{`script "/usr/bin/curl -sf http://$(hostname):8008/primary"`, "$(...)"},
		{`script "/usr/bin/curl -sf http://${NODE}:8008/primary"`, "$VARIABLE"},
	} {
		n := newNode(t, "keepalived.conf", v227)
		n.setScript(t, tc.line)
		fs := n.run()
		want(t, fs, Failure, fmt.Sprintf(":%d: vrrp_script patroni_primary: keepalived runs /usr/bin/", n.line(t, "    script ")), "directly, with no shell: "+tc.ops+" and the words around them are passed to", "run a shell explicitly")
	}
	// Inside sh -c they are the shell's.
	n := newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/bin/sh -c '/usr/bin/curl -s http://198.51.100.11:8008/primary | grep -q running'"`)
	n.sys.Files["/usr/bin/sh"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	n.sys.Files["/bin"] = &systemtest.File{Mode: fs.ModeSymlink | 0o777, Target: "usr/bin"}
	n.sys.Files["/usr/bin/curl"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	got := n.run()
	for _, f := range got {
		if strings.Contains(f.Msg, "no shell") {
			t.Errorf("sh -c: %s", f)
		}
	}
	want(t, got, OK, "vrrp_script patroni_primary: sh -c runs /usr/bin/curl, root's all along its path")
}

// TestSystemLine: a line that starts "</" is run by /bin/sh, with no path
// check; /dev/tcp is bash's.
func TestSystemLine(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "</dev/tcp/198.51.100.11/8008"`)
	n.sys.Files["/bin"] = &systemtest.File{Mode: fs.ModeSymlink | 0o777, Target: "usr/bin"}
	n.sys.Files["/usr/bin/sh"] = &systemtest.File{Mode: fs.ModeSymlink | 0o777, Target: "dash"}
	n.sys.Files["/usr/bin/dash"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	fs := n.run()
	for _, f := range fs {
		if strings.Contains(f.Msg, "relative") || strings.Contains(f.Msg, "cannot be accessed") {
			t.Errorf("a false alarm: %s", f)
		}
	}
	want(t, fs, Warning, "vrrp_script patroni_primary only checks that a TCP connection to 198.51.100.11 port 8008 opens: every node where it listens passes, replicas too")
	want(t, fs, Failure, "keepalived runs it with /bin/sh, which is dash here and has no /dev/tcp/", "fails at every run: this node never holds the VIP")

	n.sys.Files["/usr/bin/sh"].Target = "bash"
	n.sys.Files["/usr/bin/bash"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	fs = n.run()
	want(t, fs, OK, "keepalived runs it with /bin/sh, which is bash here: /dev/tcp/198.51.100.11/8008 opens a connection")
	none(t, fs, Failure)

	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "</dev/tcp/198.51.100.11/8008 && /usr/bin/curl -sf http://198.51.100.11:8008/primary"`)
	want(t, n.run(), Failure, "keepalived runs the line with /bin/sh but puts each word after the first in single quotes: '&&' '/usr/bin/curl' '-sf'", "the shell runs a command named '&&'")
}

// TestWrappers: the program a wrapper runs does the check: its path, its
// owners and what it asks are judged too.
func TestWrappers(t *testing.T) {
	dir := fs.ModeDir
	n := newNode(t, "keepalived.conf", v227)
	n.sys.Files["/usr/bin/timeout"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	n.sys.Files["/opt/pvc"] = &systemtest.File{Mode: dir | 0o777}
	n.sys.Files["/opt/pvc/patroni-vip-check"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	n.sys.Commands["/opt/pvc/patroni-vip-check"] = n.check.run
	n.setScript(t, `script "/usr/bin/timeout 3 /opt/pvc/patroni-vip-check --timeout 500ms http://198.51.100.11:8008/primary"`)
	fs := n.run()
	want(t, fs, Warning, "vrrp_script patroni_primary: timeout runs /opt/pvc/patroni-vip-check, and /opt/pvc is writable by others (0777): keepalived checks only what it runs itself (/usr/bin/timeout)")
	want(t, fs, OK, "vrrp_script patroni_primary: /opt/pvc/patroni-vip-check runs: patroni-vip-check 1.2.3")
	want(t, fs, OK, "keepalived's timeout 1s is above the check's --timeout 500ms")
	want(t, fs, OK, "http://198.51.100.11:8008/primary says this node may hold the VIP")
	if !slices.Contains(n.check.args, "--timeout=500ms") {
		t.Errorf("the wrapped check was not run with its flags: %q", n.check.args)
	}

	// A wrapped program that is missing fails at every run.
	n = newNode(t, "keepalived.conf", v227)
	n.sys.Files["/usr/bin/timeout"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	n.setScript(t, `script "/usr/bin/timeout 3 /opt/keepalived/scripts/chk_patroni_leader.sh"`)
	want(t, n.run(), Failure, "timeout runs /opt/keepalived/scripts/chk_patroni_leader.sh, which cannot be accessed", "this node never holds the VIP")

	// A wrapped script: what it asks.
	n.sys.Files["/opt/keepalived/scripts/chk_patroni_leader.sh"] = &systemtest.File{Mode: 0o755,
		Data: []byte("#!/bin/sh\nPATRONICTL_OUT=$(/usr/bin/patronictl -c /etc/patroni/config.yml list --format json)\n")}
	n.sys.Files["/bin/sh"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	fs = n.run()
	want(t, fs, OK, "chk_patroni_leader.sh asks patronictl")
	none(t, fs, Failure)
	n.sys.Files["/opt/keepalived/scripts/chk_patroni_leader.sh"].Data = []byte("#!/bin/sh\nROLE=$(curl -s http://$IP:8008/ | grep -o role)\n")
	want(t, n.run(), Warning, "asks http://$IP:8008/: Patroni answers / as it answers /primary")
	n.sys.Files["/opt/keepalived/scripts/chk_patroni_leader.sh"].Data = []byte("#!/bin/sh\nexec /usr/bin/pgrep haproxy\n")
	want(t, n.run(), Warning, "chk_patroni_leader.sh asks neither Patroni's REST API nor patronictl: the VIP follows what it checks, not the primary")

	// A check of a process is no Patroni check.
	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/usr/bin/killall -0 haproxy"`)
	want(t, n.run(), Warning, "vrrp_script patroni_primary checks that a process runs (/usr/bin/killall -0 haproxy): it does not ask Patroni")

	// env with no command, sh with nothing to run.
	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/usr/bin/env -i PATH=/bin"`)
	want(t, n.run(), Failure, "env is given no command to run")
}

// TestConfigFindingsWithoutTheScript: what the configuration says about
// timers and fall is said whatever the machine holds.
func TestConfigFindingsWithoutTheScript(t *testing.T) {
	n := newNode(t, "keepalived-2.3.conf", v227)
	delete(n.sys.Files, "/usr/bin/patroni-vip-check")
	n.edit(t, "    fall 1\n", "    fall 3\n")
	fs := n.run()
	want(t, fs, Failure, "cannot be accessed")
	want(t, fs, Failure, "interval 0.2: invalid number '0.2'")
	want(t, fs, Failure, "timeout 0.5: invalid number")
	want(t, fs, Warning, "fall 3 keeps the VIP on a node that stopped being primary for 2 more runs")
}

// TestWhatTheCheckAsks: a role endpoint, where Patroni listens.
func TestWhatTheCheckAsks(t *testing.T) {
	for endpoint, says := range map[string]string{
		"/health":  "Patroni answers /health 200 on every node where PostgreSQL runs, replicas too",
		"/patroni": "Patroni answers /patroni 200 whenever Patroni answers",
		"/leader":  "Patroni answers /leader 200 on the holder of the leader lock, also on a standby cluster's standby leader",
		"/":        "Patroni answers / as it answers /primary",
	} {
		n := newNode(t, "keepalived.conf", v227)
		n.edit(t, "198.51.100.11:8008/primary", "198.51.100.11:8008"+endpoint)
		want(t, n.run(), Warning, "vrrp_script patroni_primary asks http://198.51.100.11:8008"+endpoint+": "+says)
	}
	// The same from curl, which also needs --fail.
	n := newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/usr/bin/curl -s http://198.51.100.11:8008/health"`)
	fs := n.run()
	want(t, fs, Warning, "asks http://198.51.100.11:8008/health: Patroni answers /health 200 on every node")
	want(t, fs, Failure, "curl exits 0 on any answer, Patroni's 503 included, without --fail: every node whose Patroni answers passes")
	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/bin/sh -c '/usr/bin/curl -s http://198.51.100.11:8008/primary'"`)
	want(t, n.run(), Failure, "curl exits 0 on any answer")
	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/bin/sh -c '/usr/bin/curl -s http://198.51.100.11:8008/primary | grep -q running'"`)
	for _, f := range n.run() {
		if strings.Contains(f.Msg, "curl exits 0") {
			t.Errorf("curl in a pipeline: %s", f)
		}
	}
	n = newNode(t, "keepalived.conf", v227)
	n.setScript(t, `script "/usr/bin/curl -X GET -I --fail http://198.51.100.11:8008/primary"`)
	n.sys.Files["/usr/bin/curl"] = &systemtest.File{Mode: 0o755, Data: elfHeader()}
	none(t, n.run(), Warning)

	// The loopback address, where Patroni listens on the node's address.
	n = newNode(t, "keepalived.conf", v227)
	f := n.sys.Files["/etc/patroni/15-main.yml"]
	f.Data = []byte(strings.Replace(string(f.Data), "listen: 0.0.0.0:8008", "listen: 198.51.100.11:8008", 1))
	n.edit(t, "198.51.100.11:8008/primary", "127.0.0.1:8008/primary")
	want(t, n.run(), Warning, "vrrp_script patroni_primary asks 127.0.0.1, but Patroni's REST API listens on 198.51.100.11:8008 only (restapi.listen in /etc/patroni/15-main.yml): nothing answers there", "ask http://198.51.100.11:8008/primary")
	n.edit(t, "127.0.0.1:8008/primary", "localhost:8008/primary")
	want(t, n.run(), Warning, "asks localhost, but Patroni's REST API listens on 198.51.100.11:8008 only")
}

// TestOutputIsEscaped: whatever bytes a configuration holds, a finding's
// line holds only printable UTF-8, each other byte spelled out as the
// check's log lines spell it (sink.Clean), and every value is bounded.
func TestOutputIsEscaped(t *testing.T) {
	n := newNode(t, "keepalived.conf", v227)
	name := "pat\x9broni\xff\x1b[31m\u202e"
	n.edit(t, "vrrp_script patroni_primary {", "vrrp_script "+name+" {\n    weight -20")
	n.edit(t, "        patroni_primary\n    }\n}", "        "+name+"\n    }\n}")
	n.edit(t, "198.51.100.11:8008/primary", "198.51.100.11:8008/primary?"+strings.Repeat("a", 2000))
	fs := n.run()
	escaped := false
	for _, f := range fs {
		line := f.String()
		if !utf8.ValidString(line) {
			t.Errorf("not UTF-8: %q", line)
		}
		for _, r := range line {
			if r != ' ' && !unicode.IsPrint(r) {
				t.Errorf("unprintable %U in %q", r, line)
				break
			}
		}
		if strings.Contains(line, strings.Repeat("a", 400)) {
			t.Errorf("a value is not bounded: %d bytes", len(line))
		}
		escaped = escaped || strings.Contains(line, `pat\x9broni\xff\x1b[31m\u{202e}`)
	}
	if !escaped {
		t.Errorf("no finding names the script as sink.Clean spells it:\n%s", lines(fs))
	}
	// A fix quotes the name too.
	want(t, fs, Failure, `remove the weight from vrrp_script pat\x9broni\xff\x1b[31m\u{202e}`)
}

// TestTrackDirMadeAgain: keepalived's inotify watch stays on the
// directory it watched at start; one made again since is not watched.
func TestTrackDirMadeAgain(t *testing.T) {
	n := newNode(t, "keepalived-watch.conf", v227)
	want(t, n.run(), OK, "track_file patroni_primary: keepalived (pid 101) watches /run/keepalived-patroni-vip-check")

	n.sys.Inotify[101] = []system.Watch{{Dev: 1, Ino: 12345}}
	want(t, n.run(), Failure, fmt.Sprintf("keepalived.conf:%d: track_file patroni_primary: keepalived (pid 100) does not watch /run/keepalived-patroni-vip-check as it is now", n.line(t, "    file ")),
		"the directory was made, or made again, after keepalived started", "systemctl restart keepalived, and never remove /run/keepalived-patroni-vip-check while it runs")

	n.sys.Inotify = map[int][]system.Watch{100: nil, 101: nil}
	want(t, n.run(), Warning, "cannot read the inotify watches of keepalived (pid 100): permission denied")

	// A keepalived that runs an older configuration is not judged by it.
	n.sys.Inotify = nil
	n.sys.Files[conf].ModTime = t0.Add(2 * time.Hour)
	fs := n.run()
	for _, f := range fs {
		if strings.Contains(f.Msg, "watches of keepalived") || strings.Contains(f.Msg, "keepalived (pid") && strings.Contains(f.Msg, "watch") {
			t.Errorf("judged by a keepalived that runs an older configuration: %s", f)
		}
	}
}

// countingSystem counts the user look-ups the doctor asks for.
type countingSystem struct {
	*systemtest.Fake
	lookups map[string]int
}

func (c *countingSystem) LookupUser(name string) (system.User, error) {
	c.lookups[name]++
	return c.Fake.LookupUser(name)
}

// TestManyScriptsAreCheap: a user is looked up once however many scripts
// run as that user (a look-up may run getent: 30000 scripts took 57 s).
func TestManyScriptsAreCheap(t *testing.T) {
	var b strings.Builder
	const n = 3000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "vrrp_script s%d {\n    script \"/usr/bin/patroni-vip-check --version\"\n}\n", i)
	}
	b.WriteString("vrrp_instance vi {\n    virtual_router_id 1\n    track_script {\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "        s%d\n", i)
	}
	b.WriteString("    }\n}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "vrrp_instance v%d {\n}\nvrrp_sync_group g%d {\n    group {\n        vi v%d\n    }\n}\n", i, i, i)
	}
	n1 := newNode(t, "keepalived.conf", v227)
	n1.sys.Files[conf].Data = []byte(b.String())
	sys := &countingSystem{Fake: n1.sys, lookups: map[string]int{}}
	fs := Run(context.Background(), sys, Options{KeepalivedConf: conf})
	if sys.lookups["keepalived_script"] != 1 {
		t.Errorf("keepalived_script looked up %d times", sys.lookups["keepalived_script"])
	}
	want(t, fs, OK, fmt.Sprintf("vrrp_instance vi is gated by vrrp_script s%d, without weight", n-1))
	want(t, fs, Failure, "vrrp_script s0: the check only prints its help or version")
}
