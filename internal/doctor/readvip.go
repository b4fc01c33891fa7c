package doctor

import (
	"path"
	"slices"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

// A read VIP is for reads that must reach a replica: keepalived-conf
// --replica-vip gates it on Patroni's /replica?lag=, and while no replica
// qualifies no node holds it. It never falls back to the primary: a gate
// that Patroni answers 200 on the primary too (/read-only, /health, any
// endpoint whose roles include the primary's) puts it there, and with
// equal priorities keepalived never moves it back to a replica that
// qualifies again.

// readVIPs judges the gates of the instances meant for reads.
func (d *doctor) readVIPs(ws []*watcher) {
	keeper := map[string]*watcher{}
	for _, w := range ws {
		if w.parsed {
			keeper[w.cfg.TrackFile] = w
		}
	}
	for _, in := range d.model.Instances {
		trackers, _ := d.model.Tracking(in)
		if !forReads(in, trackers) {
			continue
		}
		for _, t := range trackers {
			if !t.Gate() {
				continue
			}
			who, asked := d.gateAsks(t, keeper)
			for _, u := range asked {
				a, ok := readURL(u)
				if !ok || !a.patroni {
					continue
				}
				ep := check.EndpointFor(a.endpoint)
				const fix = "gate it on /replica?lag=16MB, as keepalived-conf --replica-vip writes it; a client that would rather read from the primary than not at all names both addresses, the read VIP first (target_session_attrs=prefer-standby)"
				switch {
				case ep.Roles == nil:
					d.warn(t.Ref.Stmt.Pos, fix,
						"vrrp_instance %s holds a read VIP, but %s asks %s, which Patroni answers 200 on the primary too: while no replica qualifies the read VIP goes to the primary, and stays there once one does (equal priorities never preempt): reads meant for a replica reach the primary, and may write",
						show(in.Name), show(who), show(u))
				case slices.Contains(ep.Roles, "master") || slices.Contains(ep.Roles, "primary"):
					d.warn(t.Ref.Stmt.Pos, fix,
						"vrrp_instance %s holds a read VIP, but %s asks %s, which Patroni answers 200 on the %s: the read VIP follows the primary, never a replica",
						show(in.Name), show(who), show(u), ep.Name)
				}
			}
		}
	}
}

// forReads reports whether an instance is meant for reads: its name or
// what gates it says "read" or "replica", as keepalived-conf names a read
// VIP's (patroni_read_vip, patroni_replica, .../replica).
func forReads(in *keepalived.Instance, trackers []keepalived.Tracker) bool {
	says := func(s string) bool {
		s = strings.ToLower(s)
		return strings.Contains(s, "read") || strings.Contains(s, "replica")
	}
	if says(in.Name) {
		return true
	}
	for _, t := range trackers {
		if says(t.Name()) || t.File != nil && path.Dir(t.File.Path()) == vipconf.TrackDir && says(path.Base(t.File.Path())) {
			return true
		}
	}
	return false
}

// gateAsks is what a gate asks Patroni: its watcher's URL for a track
// file, its command's for a script.
func (d *doctor) gateAsks(t keepalived.Tracker, keeper map[string]*watcher) (string, []string) {
	if t.File != nil {
		if w := keeper[t.File.Path()]; w != nil {
			return w.unit, []string{w.cfg.URL}
		}
		return "", nil
	}
	who := "vrrp_script " + t.Script.Name
	args, _, err := t.Script.Args(d.version)
	if err != nil {
		return who, nil
	}
	c := readCommand(args)
	switch {
	case isCheck(c.argv):
		if sub, cfg, err := checkLine(c.argv); err == nil && sub == "" {
			return who, []string{cfg.URL}
		}
	case c.script != "":
		return who, shellURLs(c.script)
	case len(c.argv) > 0 && contains(httpClients, path.Base(c.argv[0])):
		return who, urls(c.argv)
	}
	return who, nil
}
