package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

// The watch services. A track file in use is kept by a unit: the plain
// patroni-vip-check.service for .../eligible (or whatever file its options
// name), and the template's instance patroni-vip-check@NAME.service for
// /run/keepalived-patroni-vip-check/NAME, which the template names itself
// (packaging/patroni-vip-check@.service). Each unit must be installed and
// running, run the watch, keep that very file, and ask Patroni something
// that answers.

// WatchService is the plain unit, which keeps cmdline.DefaultTrackFile.
const WatchService = vipconf.UnitName + ".service"

// unitName is the unit of a template instance, the plain unit for "".
func unitName(instance string) string {
	if instance == "" {
		return WatchService
	}
	return vipconf.UnitName + "@" + instance + ".service"
}

// unitInstanceRe is what a unit's instance name may hold (systemd's
// VALID_CHARS for unit names, without "@").
var unitInstanceRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+$`) })

// watcher is a unit that should keep track files.
type watcher struct {
	instance string                  // "" for the plain unit
	unit     string                  // its full name
	files    []*keepalived.TrackFile // the track_file blocks whose file it should keep
	unitProps
	argv   []string
	cfg    cmdline.Config
	parsed bool // argv is the watch's command line, and it parses
}

// unitProps are the settings of a unit the doctor reads: from systemd
// when it runs, else from the unit's files.
type unitProps struct {
	loaded   bool
	running  bool     // systemd runs here: ActiveState and MainPID mean something
	state    string   // ActiveState
	pid      int      // MainPID, 0 if none
	exec     string   // ExecStart as written, specifiers resolved
	envFiles []string // EnvironmentFile=, "-" prefix dropped
	user     string   // User=, "" for root
	caps     string   // CapabilityBoundingSet=, "" for all
	home     string   // ProtectHome=
	tmp      string   // PrivateTmp=
	from     string   // where they were read: "systemd" or the unit's file
	// spec resolves the specifiers of exec, which systemd has resolved
	// already when it runs (nil then).
	spec *unitfile.Specifiers
}

// watchServices checks the unit that keeps each track file in use.
func (d *doctor) watchServices(files map[*keepalived.TrackFile][]keepalived.Tracker) []*watcher {
	var plain *watcher
	var ws []*watcher
	byUnit := map[string]*watcher{}
	get := func(instance string) *watcher {
		if w, ok := byUnit[instance]; ok {
			return w
		}
		w := &watcher{instance: instance, unit: unitName(instance)}
		if instance == "" && plain != nil {
			w = plain
		} else {
			d.readWatcher(w)
		}
		byUnit[instance] = w
		ws = append(ws, w)
		return w
	}
	for _, tf := range d.model.TrackFiles {
		file := tf.Path()
		if len(files[tf]) == 0 || !path.IsAbs(file) {
			continue
		}
		if plain == nil {
			plain = &watcher{unit: WatchService}
			d.readWatcher(plain)
		}
		base := path.Base(file)
		switch {
		case plain.parsed && plain.cfg.TrackFile == file:
			get("").files = append(get("").files, tf)
		case path.Dir(file) == vipconf.TrackDir && base != path.Base(cmdline.DefaultTrackFile):
			if !unitInstanceRe().MatchString(base) {
				d.fail(tf.File.Pos, fmt.Sprintf("name the file %s/NAME, NAME letters, digits, \"-\", \"_\", \".\" or \":\", and run patroni-vip-check@NAME", vipconf.TrackDir),
					"track_file %s reads %s, which no instance of patroni-vip-check@.service can keep: no unit name holds %s", show(tf.Name), show(file), show(base))
				continue
			}
			w := get(base)
			w.files = append(w.files, tf)
		default:
			get("").files = append(get("").files, tf)
		}
	}
	for _, w := range ws {
		d.judgeWatcher(w)
	}
	d.inotifyLimits(ws)
	return ws
}

// readWatcher reads a unit's settings and its watch command line.
func (d *doctor) readWatcher(w *watcher) {
	if sc := d.systemctl(); sc != "" {
		w.unitProps = d.systemdProps(sc, w.unit)
	} else {
		w.unitProps = d.diskProps(w.unit)
	}
	if !w.loaded || w.exec == "" {
		return
	}
	w.argv = d.expandEnv(w.exec, w.envFiles, w.spec)
	if len(w.argv) < 2 || !isCheck(w.argv) || w.argv[1] != cmdline.SubWatch {
		return
	}
	var err error
	if _, w.cfg, err = checkLine(w.argv); err == nil {
		w.parsed = true
	}
}

// judgeWatcher: the unit is installed and runs the watch, which keeps the
// files, sees PostgreSQL's directory, and gets answers from Patroni.
func (d *doctor) judgeWatcher(w *watcher) {
	pos := w.files[0].File.Pos
	keeps := show(w.files[0].Path())
	if !w.running {
		d.warn(keepalived.Pos{}, "make sure patroni-vip-check watch runs and keeps the file",
			"cannot tell whether %s runs: systemd does not run here", w.unit)
	}
	switch {
	case !w.loaded && w.running:
		d.fail(pos, "install the patroni-vip-check package, or the unit",
			"%s is %s: nothing keeps %s, and the instance stays in FAULT", w.unit, show(w.state), keeps)
		return
	case !w.loaded:
		d.warn(pos, "install the patroni-vip-check package, or the unit", "%s: no unit file found (%s)", w.unit, strings.Join(unitDirs(), ", "))
		return
	}
	if w.instance != "" && !d.anyExists(w.envFiles) {
		fix := fmt.Sprintf("echo 'PATRONI_VIP_CHECK_ARGS=\"--pgdata DIR http://NODE:8008/%s\"' > /etc/default/%s@%s, then systemctl enable --now %s",
			instanceEndpoint(w.instance), vipconf.UnitName, w.instance, w.unit)
		d.fail(pos, fix, "%s has no options (%s): it does not start, nothing keeps %s, and the instance stays in FAULT",
			w.unit, show(strings.Join(w.envFiles, " or ")), keeps)
		return
	}
	if w.running {
		if w.state != "active" {
			d.fail(pos, "systemctl enable --now "+w.unit, "%s is %s: nothing keeps %s up to date", w.unit, show(w.state), keeps)
		} else {
			d.ok(pos, "%s is active", w.unit)
		}
		d.replacedBinary(w)
	}
	if !isCheck(w.argv) || len(w.argv) < 2 || w.argv[1] != cmdline.SubWatch {
		d.warn(pos, "", "%s does not run patroni-vip-check watch (ExecStart %q)", w.unit, show(strings.Join(w.argv, " ")))
		return
	}
	if !w.parsed {
		_, _, err := checkLine(w.argv)
		d.fail(pos, "fix PATRONI_VIP_CHECK_ARGS in "+strings.Join(w.envFiles, " or "),
			"%s: %s: the watch does not start, and the instance stays in FAULT", w.unit, show(err.Error()))
		return
	}
	kept := true
	for _, tf := range w.files {
		if tf.Path() != w.cfg.TrackFile {
			kept = false
			d.fail(tf.File.Pos, "make both name the same file",
				"track_file %s reads %s, but %s keeps %s", show(tf.Name), show(tf.Path()), w.unit, show(w.cfg.TrackFile))
		} else {
			d.ok(tf.File.Pos, "track_file %s: %s keeps %s", show(tf.Name), w.unit, show(tf.Path()))
		}
	}
	if !kept {
		return
	}
	d.judgeURL(pos, w.unit, w.cfg.URL)
	d.pgdata(w, pos)
	d.patroniAnswer(pos, w.unit, w.argv[0], w.cfg, runAs{name: "root"})
}

// instanceEndpoint is what a template instance's name says it asks: a
// read VIP's watcher asks for a replica.
func instanceEndpoint(instance string) string {
	if instance == vipconf.ReadUnit || strings.HasSuffix(instance, "-"+vipconf.ReadUnit) {
		return "replica?lag=16MB"
	}
	return "primary"
}

// replacedBinary: a watcher that still runs a binary replaced since it
// started runs the old version.
func (d *doctor) replacedBinary(w *watcher) {
	if w.pid <= 0 {
		return
	}
	ps, err := d.sys.Processes()
	if err != nil {
		return
	}
	for _, p := range ps {
		if p.PID == w.pid && strings.HasSuffix(p.Exe, " (deleted)") {
			d.warn(keepalived.Pos{}, "systemctl restart "+w.unit, "%s still runs the binary that was replaced since it started", w.unit)
		}
	}
}

func (d *doctor) anyExists(files []string) bool {
	for _, f := range files {
		if _, err := d.sys.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// systemdProperties are the settings asked of systemctl show.
var systemdProperties = []string{"LoadState", "ActiveState", "MainPID", "ExecStart", "EnvironmentFiles",
	"User", "CapabilityBoundingSet", "ProtectHome", "PrivateTmp"}

// systemdProps asks systemd for a unit's settings: what it loaded, drop-ins
// included, specifiers resolved.
func (d *doctor) systemdProps(sc, unit string) unitProps {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.CheckTimeout)
	defer cancel()
	r := d.sys.Run(ctx, system.Cmd{Path: sc, Args: []string{"show", "--property=" + strings.Join(systemdProperties, ","), unit}})
	return parseShow(string(r.Stdout), unit)
}

// parseShow reads what `systemctl show --property=...` says of a unit:
// KEY=VALUE lines, EnvironmentFiles= once per file.
func parseShow(out, unit string) unitProps {
	p := unitProps{running: true, from: "systemd"}
	if len(out) > 1<<20 {
		out = out[:1<<20]
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "LoadState":
			p.loaded = v == "loaded"
			if !p.loaded {
				p.state = v
			}
		case "ActiveState":
			if p.loaded || p.state == "" {
				p.state = v
			}
		case "MainPID":
			p.pid, _ = strconv.Atoi(v)
		case "ExecStart":
			p.exec = strings.Join(ExecStartArgv(v), " ")
		case "EnvironmentFiles":
			// "/etc/default/x (ignore_errors=yes)", one a line.
			if f, _, _ := strings.Cut(v, " ("); f != "" {
				p.envFiles = append(p.envFiles, f)
			}
		case "User":
			p.user = v
		case "CapabilityBoundingSet":
			p.caps = v
		case "ProtectHome":
			p.home = v
		case "PrivateTmp":
			p.tmp = v
		}
	}
	if p.loaded && len(p.envFiles) == 0 {
		p.envFiles = defaultEnvFiles(unit)
	}
	if !p.loaded && p.state == "" {
		p.state = "not known to systemctl" // it said nothing of it
	}
	p.pid = max(p.pid, 0)
	return p
}

// defaultEnvFiles are where the packages' units read their options.
func defaultEnvFiles(unit string) []string {
	name := strings.TrimSuffix(unit, ".service")
	return []string{"/etc/default/" + name, "/etc/sysconfig/" + name}
}

// unitDirs are where systemd finds system units, earlier ones first.
func unitDirs() []string {
	return []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
}

// diskProps reads a unit's settings from its files where systemd does not
// run: the unit's file (an instance's, else its template's) in the first
// directory that has one, then its drop-ins (NAME.d/*.conf, and the
// template's), each name once, in the order of their names.
func (d *doctor) diskProps(unit string) unitProps {
	p := unitProps{state: "not-found"}
	template := ""
	if prefix, rest, ok := strings.Cut(unit, "@"); ok {
		template = prefix + "@" + rest[strings.LastIndexByte(rest, '.'):]
	}
	var u *unitfile.File
	for _, name := range []string{unit, template} {
		if name == "" || u != nil {
			continue
		}
		for _, dir := range unitDirs() {
			f := path.Join(dir, name)
			if data, err := readHead(d.sys, f, 1<<20); err == nil {
				u, p.from = unitfile.Parse(string(data)), f
				break
			}
		}
	}
	if u == nil {
		return p
	}
	dropins := map[string]string{}
	for _, name := range []string{template, unit} {
		if name == "" {
			continue
		}
		for _, dir := range unitDirs() {
			entries, err := fs.ReadDir(d.sys.FS(), strings.TrimPrefix(path.Join(dir, name+".d"), "/"))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if _, seen := dropins[e.Name()]; !seen && strings.HasSuffix(e.Name(), ".conf") {
					dropins[e.Name()] = path.Join(dir, name+".d", e.Name())
				}
			}
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if data, err := readHead(d.sys, dropins[n], 1<<20); err == nil {
			u.Add(string(data))
		}
	}
	sp := unitfile.Specifiers{Unit: unit, Fragment: p.from}
	p.loaded, p.state, p.spec = true, "unknown", &sp
	if execs := u.Values("Service", "ExecStart"); len(execs) > 0 {
		p.exec = execs[len(execs)-1]
	}
	for _, f := range u.Values("Service", "EnvironmentFile") {
		if x, err := sp.Expand(strings.TrimPrefix(f, "-")); err == nil {
			p.envFiles = append(p.envFiles, x)
		}
	}
	p.user = u.Value("Service", "User")
	p.caps = strings.Join(u.Values("Service", "CapabilityBoundingSet"), " ")
	p.home = u.Value("Service", "ProtectHome")
	p.tmp = u.Value("Service", "PrivateTmp")
	return p
}

// expandEnv expands the variables of a unit's command line as systemd
// does at start, with those of its environment files: systemctl shows the
// command as written, "$PATRONI_VIP_CHECK_ARGS" and all.
func (d *doctor) expandEnv(line string, files []string, spec *unitfile.Specifiers) []string {
	env := map[string]string{}
	for _, f := range files {
		if b, err := readHead(d.sys, f, 1<<20); err == nil {
			for k, v := range unitfile.ParseEnv(string(b)) {
				env[k] = v
			}
		}
	}
	command := unitfile.Command
	if spec != nil {
		command = spec.Command
	}
	if _, expanded, err := command(line, env); err == nil {
		return expanded
	}
	return strings.Fields(line)
}

// ExecStartArgv is the command of `systemctl show -p ExecStart --value`:
// "{ path=/usr/bin/x ; argv[]=/usr/bin/x watch URL ; ignore_errors=no ; ... }".
func ExecStartArgv(value string) []string {
	_, rest, ok := strings.Cut(value, "argv[]=")
	if !ok {
		return nil
	}
	argv, _, _ := strings.Cut(rest, " ; ")
	return strings.Fields(argv)
}
