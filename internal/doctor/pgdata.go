package doctor

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/patroni"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// What the watch sees of PostgreSQL's data directory. With --pgdata the
// watch asks Patroni at once when PostgreSQL's promote, standby.signal,
// recovery.signal or postmaster.pid change (inotify); without it, or where
// it cannot watch the directory (missing, unreadable, inotify's limits
// reached), it polls on --interval alone, and says so in its log.

// pgdata judges a watcher's --pgdata.
func (d *doctor) pgdata(w *watcher, pos keepalived.Pos) {
	pc := d.patroniFor(w.cfg)
	dataDir := ""
	if pc != nil && pc.PostgreSQL.DataDir != "" && path.IsAbs(pc.PostgreSQL.DataDir) {
		dataDir = path.Clean(pc.PostgreSQL.DataDir)
	}
	where := "PATRONI_VIP_CHECK_ARGS in " + d.argsFile(w)
	dir := w.cfg.PGData
	if dir == "" {
		fix := "add --pgdata DIR to " + where + ", DIR Patroni's postgresql.data_dir"
		if dataDir != "" {
			fix = fmt.Sprintf("add --pgdata %s to %s (Patroni's postgresql.data_dir, %s)", dataDir, where, pc.Path)
		}
		d.warn(pos, fix, "%s runs on polls alone (no --pgdata): it asks Patroni every %v, and the VIP follows a promotion up to that late; with --pgdata it asks at once when PostgreSQL's promote, standby.signal, recovery.signal or postmaster.pid change",
			w.unit, w.cfg.Interval)
		return
	}
	polls := fmt.Sprintf("it polls alone, every %v", w.cfg.Interval)
	if !path.IsAbs(dir) {
		d.warn(pos, "give --pgdata an absolute path in "+where, "%s: --pgdata %s is relative to the unit's working directory: %s", w.unit, show(dir), polls)
		return
	}
	fi, err := d.sys.Stat(dir)
	switch {
	case err != nil && dataDir == path.Clean(dir):
		d.warn(pos, "initialise PostgreSQL (Patroni does at its first start): the watch looks again before each poll",
			"%s: --pgdata %s, Patroni's postgresql.data_dir: %s: %s until it is there", w.unit, show(dir), show(errText(err)), polls)
		return
	case err != nil:
		d.warn(pos, "give --pgdata Patroni's postgresql.data_dir in "+where, "%s: --pgdata %s: %s: %s until it is there", w.unit, show(dir), show(errText(err)), polls)
		return
	case !fi.Mode.IsDir():
		d.warn(pos, "give --pgdata Patroni's postgresql.data_dir in "+where, "%s: --pgdata %s is not a directory: %s", w.unit, show(dir), polls)
		return
	}
	switch {
	case dataDir != "" && !d.sameDir(dir, dataDir):
		d.warn(pos, fmt.Sprintf("give --pgdata %s in %s", dataDir, where),
			"%s: --pgdata %s is not Patroni's postgresql.data_dir %s (%s): it wakes on another PostgreSQL's files, and follows this one on polls alone", w.unit, show(dir), show(dataDir), show(pc.Path))
	case dataDir != "":
		d.ok(pos, "%s: --pgdata %s is Patroni's postgresql.data_dir", w.unit, show(dir))
	}
	if !d.unitMayWatch(w, pos, dir, fi) {
		return
	}
	d.watcherWatches(w, pos, dir, fi)
}

// argsFile is the environment file that sets the unit's options: the one
// that holds PATRONI_VIP_CHECK_ARGS, else the first that exists, else the
// first.
func (d *doctor) argsFile(w *watcher) string {
	if len(w.envFiles) == 0 {
		return "the unit"
	}
	for _, f := range w.envFiles {
		if data, err := readHead(d.sys, f, 1<<20); err == nil && strings.Contains(string(data), "PATRONI_VIP_CHECK_ARGS") {
			return f
		}
	}
	for _, f := range w.envFiles {
		if _, err := d.sys.Stat(f); err == nil {
			return f
		}
	}
	return w.envFiles[0]
}

// sameDir reports whether a and b are one directory.
func (d *doctor) sameDir(a, b string) bool {
	if path.Clean(a) == path.Clean(b) {
		return true
	}
	fa, errA := d.sys.Stat(a)
	fb, errB := d.sys.Stat(b)
	return errA == nil && errB == nil && fa.Dev == fb.Dev && fa.Ino == fb.Ino
}

// patroniFor is the Patroni configuration of the cluster the check asks:
// the one the doctor read, else, among several, the one whose REST API
// listens on the URL's port.
func (d *doctor) patroniFor(cfg cmdline.Config) *patroni.Config {
	if d.patroni != nil {
		return d.patroni
	}
	a, ok := readURL(cfg.URL)
	if !ok {
		return nil
	}
	var match *patroni.Config
	for _, name := range patroni.Candidates(d.sys.FS()) {
		c, err := patroni.Load(d.sys.FS(), name)
		if err != nil {
			continue
		}
		if _, port, err := patroni.SplitHostPort(c.RestAPI.Listen); err == nil && port == a.port {
			if match != nil {
				return nil // two listen there: neither is known to be it
			}
			match = c
		}
	}
	return match
}

// unitMayWatch: the kernel lets a process watch a directory it may read,
// whose every parent it may search (inotify_add_watch). The unit runs as
// root with only CAP_DAC_READ_SEARCH in its bounding set, which passes
// both whatever the modes: postgres's 0700 directory is fine. Its sandbox
// hides /home, /root and /run/user (ProtectHome=yes) and gives it a /tmp of
// its own (PrivateTmp=yes).
func (d *doctor) unitMayWatch(w *watcher, pos keepalived.Pos, dir string, fi system.FileInfo) bool {
	cannot := func(why, fix string) bool {
		d.warn(pos, fix, "%s cannot watch %s: %s: it polls alone, every %v", w.unit, show(dir), why, w.cfg.Interval)
		return false
	}
	under := func(roots ...string) string {
		for _, r := range roots {
			if dir == r || strings.HasPrefix(dir, r+"/") {
				return r
			}
		}
		return ""
	}
	if r := under("/home", "/root", "/run/user"); r != "" && (w.home == "yes" || w.home == "true" || w.home == "tmpfs") {
		return cannot("ProtectHome="+show(w.home)+" hides "+r+" from it", "move the data directory, or give the unit ProtectHome=read-only (systemctl edit "+w.unit+")")
	}
	if r := under("/tmp", "/var/tmp"); r != "" && (w.tmp == "yes" || w.tmp == "true") {
		return cannot("PrivateTmp=yes gives it a "+r+" of its own", "move the data directory out of "+r)
	}
	owns := fmt.Sprintf("%s's, mode %s", owner(d.sys, fi.UID), modeText(fi))
	uid, gid, name := uint32(0), uint32(0), "root"
	if w.user != "" && w.user != "root" && w.user != "0" {
		u, err := d.lookupUser(w.user)
		if err != nil {
			return cannot("its User="+show(w.user)+" does not exist", "remove User= from the unit")
		}
		uid, gid, name = u.UID, u.GID, u.Name
	}
	if uid == 0 && bypassesModes(w.caps) {
		d.ok(pos, "%s may watch %s (%s): it runs as root with CAP_DAC_READ_SEARCH", w.unit, show(dir), owns)
		return true
	}
	// By the modes alone: search on each parent, read on the directory.
	real, err := realpath(d.sys, dir)
	if err != nil {
		real = dir
	}
	for p := path.Dir(real); ; p = path.Dir(p) {
		if pi, err := d.sys.Stat(p); err == nil && !permits(pi, uid, gid, 1) {
			return cannot(fmt.Sprintf("%s may not enter %s (%s's, mode %s)", name, show(p), owner(d.sys, pi.UID), modeText(pi)),
				"keep CapabilityBoundingSet=CAP_DAC_READ_SEARCH and no User= in the unit, as the package ships it")
		}
		if p == "/" {
			break
		}
	}
	if !permits(fi, uid, gid, 4) {
		return cannot(fmt.Sprintf("%s may not read it (%s)", name, owns),
			"keep CapabilityBoundingSet=CAP_DAC_READ_SEARCH and no User= in the unit, as the package ships it")
	}
	d.ok(pos, "%s may watch %s (%s)", w.unit, show(dir), owns)
	return true
}

// bypassesModes reports whether a capability bounding set, as systemd
// shows it ("cap_dac_read_search ...", all when unset) or as a unit file
// writes it ("~CAP_X" for all but), keeps a capability that reads and
// searches any directory.
func bypassesModes(caps string) bool {
	caps = strings.ToLower(strings.TrimSpace(caps))
	search, override := strings.Contains(caps, "cap_dac_read_search"), strings.Contains(caps, "cap_dac_override")
	switch {
	case caps == "":
		return true
	case strings.HasPrefix(caps, "~"):
		return !search || !override
	}
	return search || override
}

// permits reports whether uid:gid has the permission bit (4 read, 1
// search) on a file by its mode alone.
func permits(fi system.FileInfo, uid, gid uint32, bit uint32) bool {
	m := uint32(fi.Mode.Perm())
	switch {
	case uid == fi.UID:
		return m&(bit<<6) != 0
	case gid == fi.GID:
		return m&(bit<<3) != 0
	}
	return m&bit != 0
}

// watcherWatches: the running watcher's inotify watches (its fdinfo) say
// whether it sees the directory now.
func (d *doctor) watcherWatches(w *watcher, pos keepalived.Pos, dir string, fi system.FileInfo) {
	if !w.running || w.pid <= 0 {
		return
	}
	ins, err := d.sys.InotifyOf(w.pid)
	if err != nil {
		d.warn(pos, "run the doctor as root", "cannot read the inotify watches of %s (pid %d): %s: whether it sees %s is not checked", w.unit, w.pid, show(errText(err)), show(dir))
		return
	}
	for _, x := range system.Watches(ins) {
		if x.Dev == fi.Dev && x.Ino == fi.Ino {
			d.ok(pos, "%s (pid %d) watches %s: it asks Patroni as soon as PostgreSQL's files change", w.unit, w.pid, show(dir))
			return
		}
	}
	d.warn(pos, "journalctl -u "+w.unit+" says why (look for \"cannot watch\")",
		"%s (pid %d) does not watch %s: it polls alone, every %v", w.unit, w.pid, show(dir), w.cfg.Interval)
}

// inotifyLimits: inotify instances and watches are counted per user
// (fs.inotify.max_user_instances, max_user_watches), and the watch, root's,
// needs one of each. Root's use is counted from /proc/PID/fd of root's
// processes: a descriptor shared by several processes counts in each, so
// the count errs high.
func (d *doctor) inotifyLimits(ws []*watcher) {
	var first *watcher
	for _, w := range ws {
		if w.parsed && w.cfg.PGData != "" && len(w.files) > 0 {
			first = w
			break
		}
	}
	if first == nil {
		return
	}
	pos := first.files[0].File.Pos
	maxInst, err1 := strconv.Atoi(d.readTrim("/proc/sys/fs/inotify/max_user_instances"))
	maxWatch, err2 := strconv.Atoi(d.readTrim("/proc/sys/fs/inotify/max_user_watches"))
	if err1 != nil || err2 != nil {
		return
	}
	ps, err := d.sys.Processes()
	if err != nil {
		return
	}
	inst, watches, unread := 0, 0, 0
	for _, p := range ps {
		if p.UID != 0 {
			continue
		}
		ins, err := d.sys.InotifyOf(p.PID)
		if err != nil {
			unread++
			continue
		}
		inst += len(ins)
		for _, in := range ins {
			watches += len(in.Watches)
		}
	}
	near := func(used, limit int) bool { return limit-used <= max(2, limit/10) }
	use := fmt.Sprintf("root's processes hold %d inotify instances of fs.inotify.max_user_instances %d, and %d watches of fs.inotify.max_user_watches %d", inst, maxInst, watches, maxWatch)
	if unread > 0 {
		use += fmt.Sprintf(" (%s unread)", plural(unread, "process"))
	}
	switch {
	case near(inst, maxInst):
		d.warn(pos, fmt.Sprintf("raise it: echo fs.inotify.max_user_instances=%d > /etc/sysctl.d/60-inotify.conf; sysctl --system", 2*maxInst),
			"%s: the limit is reached or nearly so, and a watch that gets no instance polls alone", use)
	case near(watches, maxWatch):
		d.warn(pos, fmt.Sprintf("raise it: echo fs.inotify.max_user_watches=%d > /etc/sysctl.d/60-inotify.conf; sysctl --system", 2*maxWatch),
			"%s: the limit is reached or nearly so, and a watch that gets no watch polls alone", use)
	default:
		d.ok(pos, "%s: room for the watch's one of each", use)
	}
}
