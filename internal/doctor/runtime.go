package doctor

import (
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/patroni"
)

// keepalivedProcess is a running keepalived and the file it read.
type keepalivedProcess struct {
	PID    int
	Exe    string
	Args   []string
	Config string
	Start  time.Time
}

// keepalivedProcesses are the running keepalived parents: keepalived
// forks a VRRP and a checker child with the same command line.
func (d *doctor) keepalivedProcesses() []keepalivedProcess {
	ps, err := d.sys.Processes()
	if err != nil {
		return nil
	}
	var out []keepalivedProcess
	seen := map[string]bool{}
	for _, p := range ps {
		exe := strings.TrimSuffix(p.Exe, " (deleted)")
		if path.Base(exe) != "keepalived" {
			continue
		}
		conf := ConfigArg(p.Args)
		key := exe + "\x00" + conf + "\x00" + strings.Join(p.Args, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, keepalivedProcess{PID: p.PID, Exe: p.Exe, Args: p.Args, Config: conf, Start: p.Start})
	}
	return out
}

// ConfigArg is the configuration file of a keepalived command line:
// -f FILE, -fFILE, --use-file FILE or --use-file=FILE; keepalived's
// default otherwise.
func ConfigArg(args []string) string {
	conf := DefaultKeepalivedConf
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--use-file":
			if i+1 < len(args) {
				conf = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--use-file="):
			conf = strings.TrimPrefix(a, "--use-file=")
		case strings.HasPrefix(a, "-f") && !strings.HasPrefix(a, "--"):
			conf = a[2:]
		}
	}
	return conf
}

// current are the processes (parent and children) of each keepalived
// that runs the configuration checked, as it is now: keepalived forks its
// VRRP and checker children with the parent's command line.
func (d *doctor) current() [][]int {
	if d.procs != nil || len(d.fresh) == 0 {
		return d.procs
	}
	ps, err := d.sys.Processes()
	if err != nil {
		return nil
	}
	var out [][]int
	for _, parent := range d.fresh {
		pids := []int{parent.PID}
		for _, p := range ps {
			if p.PID != parent.PID && strings.TrimSuffix(p.Exe, " (deleted)") == strings.TrimSuffix(parent.Exe, " (deleted)") &&
				strings.Join(p.Args, "\x00") == strings.Join(parent.Args, "\x00") {
				pids = append(pids, p.PID)
			}
		}
		out = append(out, pids)
	}
	d.procs = out
	return out
}

// runningConfig: the keepalived that runs must read the file checked,
// and not have been started before it changed.
func (d *doctor) runningConfig() {
	if len(d.running) == 0 {
		d.warn(keepalived.Pos{}, "systemctl start keepalived", "keepalived is not running: no VIP on this node")
		return
	}
	checked, err := d.sys.Stat(d.cfg.Path)
	if err != nil {
		return
	}
running:
	for _, p := range d.running {
		conf := p.Config
		if !path.IsAbs(conf) {
			d.warn(keepalived.Pos{}, "", "keepalived (pid %d) reads %s, relative to its working directory", p.PID, show(conf))
			continue
		}
		fi, err := d.sys.Stat(conf)
		if err != nil || fi.Dev != checked.Dev || fi.Ino != checked.Ino {
			d.warn(keepalived.Pos{}, "run the doctor with --keepalived-conf "+conf,
				"keepalived (pid %d) reads %s, not the file checked", p.PID, show(conf))
			continue
		}
		for _, f := range d.cfg.Files {
			// A start time from /proc is good to a second (the boot
			// time's precision): give it two.
			if fi, err := d.sys.Stat(f); err == nil && !p.Start.IsZero() && fi.ModTime.After(p.Start.Add(2*time.Second)) {
				d.warn(keepalived.Pos{File: f}, "systemctl reload keepalived",
					"changed after keepalived (pid %d) started: keepalived runs an older configuration than this one", p.PID)
				continue running
			}
		}
		d.ok(keepalived.Pos{File: d.cfg.Path}, "keepalived (pid %d) runs this configuration", p.PID)
		d.fresh = append(d.fresh, p)
	}
}

// postgresListen: PostgreSQL must accept connections to the VIP.
func (d *doctor) postgresListen() {
	if d.patroni == nil {
		return
	}
	pg := d.patroni.PostgreSQL
	hosts, port, err := pg.ListenHosts()
	if err != nil {
		d.warn(keepalived.Pos{File: d.patroni.Path}, "", "%s: PostgreSQL's listen addresses not checked", show(err.Error()))
		return
	}
	nonlocal := d.readTrim("/proc/sys/net/ipv4/ip_nonlocal_bind") == "1"
	for _, in := range d.model.Instances {
		for _, v := range in.VIPs {
			if !in.KeepsVIP(v) {
				continue
			}
			vip := v.Prefix.Addr()
			switch {
			case !patroni.Covers(hosts, vip):
				d.fail(keepalived.Pos{File: d.patroni.Path}, fmt.Sprintf("set postgresql.listen to '*:%d'", port),
					"PostgreSQL listens on %s only (postgresql.listen): connections to the VIP %s are refused", show(strings.Join(hosts, ", ")), vip)
			case explicit(hosts, vip) && !nonlocal:
				d.warn(keepalived.Pos{File: d.patroni.Path}, fmt.Sprintf("listen on '*:%d', or set net.ipv4.ip_nonlocal_bind = 1", port),
					"PostgreSQL listens on the VIP %s by address: it fails to start where the VIP is not held", vip)
			default:
				d.ok(keepalived.Pos{File: d.patroni.Path}, "PostgreSQL listens on %s: the VIP %s reaches it", show(strings.Join(hosts, ", ")), vip)
			}
			if la := pg.ListenAddresses; la != "" && !patroni.Covers(patroni.SplitList(la), vip) {
				d.warn(keepalived.Pos{File: d.patroni.Path}, "remove parameters.listen_addresses: postgresql.listen sets it",
					"postgresql.parameters.listen_addresses %s does not include the VIP %s", show(la), vip)
			}
		}
	}
}

func explicit(hosts []string, vip netip.Addr) bool {
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil && a == vip {
			return !patroni.Covers(remove(hosts, h), vip)
		}
	}
	return false
}

func remove(hosts []string, h string) []string {
	var out []string
	for _, x := range hosts {
		if x != h {
			out = append(out, x)
		}
	}
	return out
}

// readTrim reads a small file, "" if it cannot.
func (d *doctor) readTrim(name string) string {
	data, err := fs.ReadFile(d.sys.FS(), strings.TrimPrefix(name, "/"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
