package doctor

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// gates are what the instances track.
type gates struct {
	scripts map[string]bool                  // vrrp_script names in use
	files   map[string][]keepalived.TrackRef // track_file name → references
	watch   bool                             // a track_file in use: the watch set-up
}

func (d *doctor) globals() {
	g := d.model.Global
	if len(d.model.Instances) > 0 && len(g.Blocks) > 0 {
		for _, sc := range d.model.Scripts {
			if sc.Stmt.Pos.File == g.Blocks[0].Pos.File && sc.Stmt.Pos.Line < g.Blocks[0].Pos.Line {
				d.warn(sc.Stmt.Pos, "put global_defs first",
					"vrrp_script %s comes before global_defs: keepalived picks the script's user before it reads script_user", show(sc.Name))
				break
			}
		}
	}
	if g.EnableScriptSecurity != nil && len(d.model.Scripts) > 0 {
		d.ok(g.EnableScriptSecurity.Pos, "enable_script_security: keepalived refuses scripts others could replace")
	}
	if g.VRRPStrict != nil {
		// Strict mode turns accept off unless an instance sets it (and
		// always with VRRP version 2): instanceAccept judges that.
		d.warn(g.VRRPStrict.Pos, "remove vrrp_strict",
			"vrrp_strict: keepalived drops all traffic to the VIP of any instance without an explicit accept, and may refuse unicast peers")
	}
}

// instances checks every vrrp_instance and returns what they track.
func (d *doctor) instances() gates {
	gs := gates{scripts: map[string]bool{}, files: map[string][]keepalived.TrackRef{}}
	if len(d.model.Instances) == 0 {
		d.fail(keepalived.Pos{File: d.cfg.Path}, "add a vrrp_instance (patroni-vip-check keepalived-conf writes one)",
			"no vrrp_instance: keepalived moves no VIP")
		return gs
	}
	for _, in := range d.model.Instances {
		d.instanceGate(in, &gs)
		d.instanceAccept(in)
		d.instanceNetwork(in)
		if in.State.Arg(1) == "MASTER" {
			d.warn(in.State.Pos, "use state BACKUP on every node",
				"vrrp_instance %s starts as MASTER: it may take the VIP at start-up before its check has answered", show(in.Name))
		}
	}
	return gs
}

// instanceGate: something must put the instance in FAULT when Patroni
// says no, and no weight may turn that into a priority change.
func (d *doctor) instanceGate(in *keepalived.Instance, gs *gates) {
	gated := false
	for _, ref := range in.TrackScripts {
		sc := d.model.Script(ref.Name)
		if sc == nil {
			d.fail(ref.Stmt.Pos, "define the vrrp_script or remove the reference",
				"track_script %s: no vrrp_script of that name: keepalived ignores it (\"track script %s not found\")", show(ref.Name), show(ref.Name))
			continue
		}
		gs.scripts[sc.Name] = true
		if w := sc.Effective(ref); w != 0 {
			pos, fix := ref.Stmt.Pos, "remove the weight"
			if ref.Weight == nil {
				pos, fix = sc.Weight.Pos, "remove the weight from vrrp_script "+sc.Name
			}
			d.fail(pos, fix, "track_script %s has weight %d: a failing check only changes the priority and the node may keep the VIP", show(ref.Name), w)
			continue
		}
		gated = true
		d.ok(ref.Stmt.Pos, "vrrp_instance %s is gated by vrrp_script %s, without weight", show(in.Name), show(sc.Name))
	}
	for _, ref := range in.TrackFiles {
		tf := d.model.TrackFile(ref.Name)
		if tf == nil {
			d.fail(ref.Stmt.Pos, "define the track_file or remove the reference",
				"track_file %s: no track_file block of that name: keepalived ignores it", show(ref.Name))
			continue
		}
		gs.files[tf.Name] = append(gs.files[tf.Name], ref)
		gs.watch = true
		if w, rev := tf.Effective(ref); w == 0 && rev && tf.Path() != "" {
			gated = true
		}
	}
	if len(in.TrackScripts) == 0 && len(in.TrackFiles) == 0 {
		d.fail(in.Stmt.Pos, "add track_script (or track_file) for patroni-vip-check",
			"vrrp_instance %s tracks no script and no file: it takes the VIP whatever Patroni says", show(in.Name))
	} else if !gated {
		d.fail(in.Stmt.Pos, "see the findings above",
			"vrrp_instance %s has no check that can put it in FAULT: it takes the VIP whatever Patroni says", show(in.Name))
	}
}

// instanceAccept: no_accept and strict mode make keepalived drop what
// is sent to the VIP.
func (d *doctor) instanceAccept(in *keepalived.Instance) {
	accept, why := in.AcceptMode(d.model.Global)
	if accept {
		d.ok(posOf(in.Accept), "vrrp_instance %s accepts traffic to its VIPs", show(in.Name))
		return
	}
	what := "no_accept"
	if why != nil && why.Keyword() != "no_accept" {
		what = why.Keyword() + " (which forces no_accept)"
	}
	d.fail(posOf(why), "use accept, and no vrrp_strict",
		"vrrp_instance %s: %s makes keepalived %s drop every packet addressed to the VIP on the master: the VIP moves, no client can use it", show(in.Name), what, d.version)
}

func (d *doctor) iface(name string) (system.Interface, bool) {
	for _, i := range d.ifaces {
		if i.Name == name {
			return i, true
		}
	}
	return system.Interface{}, false
}

// instanceNetwork: the interface, the node's own address and the VIPs.
func (d *doctor) instanceNetwork(in *keepalived.Instance) {
	if d.ifaces == nil {
		return
	}
	name := in.Interface.Arg(1)
	if name == "" {
		d.fail(in.Stmt.Pos, "add interface", "vrrp_instance %s names no interface", show(in.Name))
		return
	}
	it, ok := d.iface(name)
	if !ok {
		d.fail(in.Interface.Pos, "name an interface of this machine",
			"vrrp_instance %s: interface %s does not exist here: keepalived leaves the instance down", show(in.Name), show(name))
		return
	}
	var own []netip.Prefix
	for _, a := range it.Addrs {
		if a.Addr().Is4() || !a.Addr().IsLinkLocalUnicast() {
			own = append(own, a)
		}
	}
	if src := in.UnicastSrcIP.Arg(1); src != "" {
		a, err := netip.ParseAddr(src)
		switch {
		case err != nil:
			d.fail(in.UnicastSrcIP.Pos, "write this node's address", "unicast_src_ip %s is not an address", show(src))
		case !holds(own, a):
			d.warn(in.UnicastSrcIP.Pos, "write this node's address on "+name,
				"unicast_src_ip %s is not an address of %s: the peers drop adverts from an unexpected source (check_unicast_src)", a, name)
		default:
			d.ok(in.UnicastSrcIP.Pos, "unicast_src_ip %s is on %s", a, name)
		}
		for _, p := range in.UnicastPeers {
			if pa, err := netip.ParseAddr(p.Arg(0)); err == nil && pa == a {
				d.warn(p.Pos, "list only the other nodes", "unicast_peer lists this node's own address %s", pa)
			}
		}
	}
	if len(in.VIPs) == 0 {
		d.fail(in.Stmt.Pos, "add virtual_ipaddress", "vrrp_instance %s has no virtual_ipaddress", show(in.Name))
	}
	for _, v := range in.VIPs {
		d.vip(in, v, name)
	}
}

func holds(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func (d *doctor) vip(in *keepalived.Instance, v keepalived.VIP, instanceIface string) {
	if !v.Valid {
		d.fail(v.Stmt.Pos, "write ADDRESS/PREFIX", "virtual_ipaddress %s is not an address", show(v.Stmt.Arg(0)))
		return
	}
	dev := v.Dev
	if dev == "" {
		dev = instanceIface
	}
	it, ok := d.iface(dev)
	if !ok {
		d.fail(v.Stmt.Pos, "name an interface of this machine", "virtual_ipaddress %s: dev %s does not exist here", v.Prefix, show(dev))
		return
	}
	var same []netip.Prefix
	for _, a := range it.Addrs {
		if a.Addr() == v.Prefix.Addr() {
			continue // the VIP itself, while this node holds it
		}
		if a.Masked().Contains(v.Prefix.Addr()) {
			same = append(same, a)
		}
	}
	switch {
	case len(same) == 0:
		d.warn(v.Stmt.Pos, fmt.Sprintf("use an address of %s's subnet, with its prefix", dev),
			"the VIP %s is in no subnet of %s (%s): clients on the node's subnet may not reach it", v.Prefix, dev, prefixes(it.Addrs))
	case same[0].Bits() != v.Prefix.Bits():
		d.warn(v.Stmt.Pos, fmt.Sprintf("write %s/%d", v.Prefix.Addr(), same[0].Bits()),
			"the VIP %s has another prefix than %s's %s: the VIP's route and broadcast differ from the node's", v.Prefix, dev, same[0])
	default:
		d.ok(v.Stmt.Pos, "the VIP %s is in %s's subnet %s", v.Prefix, dev, same[0].Masked())
	}
	if v.Label != "" && (len(v.Label) > 15 || !strings.HasPrefix(v.Label, dev)) {
		d.warn(v.Stmt.Pos, "use a label that starts with "+dev+", at most 15 characters", "label %s does not suit dev %s", show(v.Label), dev)
	}
}

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no address"
	}
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}
