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
	scripts map[*keepalived.Script]bool                    // vrrp_scripts in use
	files   map[*keepalived.TrackFile][]keepalived.Tracker // track_files in use, with how each instance uses it
	watch   bool                                           // a track_file in use: the watch set-up
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
	for _, p := range d.model.Skipped {
		d.warn(p.Pos, "give each block a name of its own", "%s: keepalived ignores the block", show(p.Msg))
	}
}

// instances checks every vrrp_instance and returns what they track.
func (d *doctor) instances() gates {
	gs := gates{scripts: map[*keepalived.Script]bool{}, files: map[*keepalived.TrackFile][]keepalived.Tracker{}}
	if len(d.model.Instances) == 0 {
		d.fail(keepalived.Pos{File: d.cfg.Path}, "add a vrrp_instance (patroni-vip-check keepalived-conf writes one)",
			"no vrrp_instance: keepalived moves no VIP")
		return gs
	}
	for _, in := range d.model.Instances {
		d.instanceStarts(in)
		d.instanceGate(in, &gs)
		d.instanceAccept(in)
		d.instanceFamily(in)
		d.instanceAuth(in)
		d.instanceNetwork(in)
		if in.WantsMaster() {
			d.warn(in.State.Pos, "use state BACKUP on every node",
				"vrrp_instance %s starts as MASTER: it may take the VIP at start-up before its check has answered", show(in.Name))
		}
	}
	d.routerIDs()
	return gs
}

// familyName is "IPv4" or "IPv6".
func familyName(f int) string {
	if f == 6 {
		return "IPv6"
	}
	return "IPv4"
}

// instanceFamily: one instance speaks one family, set by the first address
// keepalived reads in it; keepalived refuses addresses of the other, and a
// label on an IPv6 VIP.
func (d *doctor) instanceFamily(in *keepalived.Instance) {
	family := familyName(in.Family())
	set := "by default"
	if from := in.FamilyFrom(); from != nil {
		set = "from " + show(from.Pos.String())
	}
	for _, r := range in.Refusals() {
		says := show(r.Says)
		switch r.What {
		case "label":
			v := keepalived.VIP{}
			for _, x := range in.VIPs {
				if x.Stmt == r.Stmt {
					v = x
				}
			}
			d.fail(r.Stmt.Pos, "remove label "+v.Label+" (an IPv6 address has none)",
				"vrrp_instance %s: the IPv6 VIP %s has a label, which keepalived refuses (%q): keepalived -t fails on the configuration, and keepalived adds the VIP without it", show(in.Name), v.Prefix, says)
		case "virtual_ipaddress":
			d.fail(r.Stmt.Pos, "give each family's VIPs an instance of their own (keepalived-conf --instance NAME for each)",
				"vrrp_instance %s is %s (%s): keepalived drops the VIP %s (%q), and no node ever holds it", show(in.Name), family, set, show(r.Stmt.Arg(0)), says)
		case "unicast_peer":
			d.warn(r.Stmt.Pos, "list the peers' "+family+" addresses",
				"vrrp_instance %s is %s (%s): keepalived skips the peer %s (%q): this node sends it no adverts and takes none from it", show(in.Name), family, set, show(r.Stmt.Arg(0)), says)
		default:
			d.warn(r.Stmt.Pos, "write this node's "+family+" address",
				"vrrp_instance %s is %s (%s): keepalived skips %s %s (%q) and sends from the interface's address, which peers that check the source drop", show(in.Name), family, set, r.What, show(r.Stmt.Arg(1)), says)
		}
	}
	if len(in.UnicastPeers) > 0 && len(in.Peers()) == 0 {
		d.warn(in.Stmt.Pos, "list the peers' "+family+" addresses",
			"vrrp_instance %s: keepalived keeps none of its unicast peers and multicasts its adverts instead: where the network drops multicast, the nodes never hear each other", show(in.Name))
	}
}

// routerIDs: keepalived refuses one virtual_router_id twice in a family on
// an interface, whichever files the instances are in, and its VRRP process
// stops.
func (d *doctor) routerIDs() {
	addr := func(iface string, family int) (netip.Addr, bool) {
		it, ok := d.iface(iface)
		if !ok {
			return netip.Addr{}, false
		}
		for _, a := range it.Addrs {
			if a.Addr().Is4() == (family == 4) {
				return a.Addr(), true
			}
		}
		return netip.Addr{}, false
	}
	for _, c := range d.model.VRIDConflicts(addr) {
		id, _, _ := c.B.RouterID()
		d.fail(c.B.VirtualRouterID.Pos, "give each instance a virtual_router_id of its own, the same on every node of its cluster (keepalived-conf --router-id)",
			"vrrp_instance %s has virtual_router_id %d, as vrrp_instance %s (%s) has, %s on %s: keepalived refuses the two (%q) and its VRRP process stops at start: no VIP on this node",
			show(c.B.Name), id, show(c.A.Name), show(c.A.VirtualRouterID.Pos.String()), familyName(c.A.Family()), show(c.A.Interface.Arg(1)), show(c.Says))
	}
}

// instanceStarts: what makes keepalived's whole VRRP process stop at start
// (vrrp_complete_init returns false): no VIP on any node.
func (d *doctor) instanceStarts(in *keepalived.Instance) {
	const stops = "keepalived's VRRP process stops at start (%q) and no node holds the VIP"
	if _, ok, bad := in.RouterID(); !ok {
		fix := "set virtual_router_id to a number from 1 to 255, the same on every node and unique on the network"
		if bad != nil {
			d.fail(bad.Pos, fix, "vrrp_instance %s: virtual_router_id %s is not a number from 1 to 255: "+stops,
				show(in.Name), show(bad.Arg(1)), "the virtual router id must be set")
		} else {
			d.fail(in.Stmt.Pos, fix, "vrrp_instance %s has no virtual_router_id: "+stops, show(in.Name), "the virtual router id must be set")
		}
	}
	valid := 0
	for _, v := range in.VIPs {
		if in.KeepsVIP(v) {
			valid++
		}
	}
	if valid > 0 {
		return
	}
	version, _ := in.VRRPVersion(d.model.Global)
	strict, _ := in.Strict(d.model.Global)
	if version == 3 || strict || in.Family() == 6 {
		d.fail(in.Stmt.Pos, "add virtual_ipaddress", "vrrp_instance %s has no virtual_ipaddress keepalived can use: "+stops, show(in.Name), "No VIP specified; at least one is required")
		return
	}
	d.fail(in.Stmt.Pos, "add virtual_ipaddress", "vrrp_instance %s has no virtual_ipaddress keepalived can use: it moves nothing", show(in.Name))
}

// instanceGate: something must put the instance in FAULT when Patroni
// says no, and no weight may turn that into a priority change, nor
// reverse turn it upside down.
func (d *doctor) instanceGate(in *keepalived.Instance, gs *gates) {
	trackers, ignored := d.model.Tracking(in)
	for _, ig := range ignored {
		d.ignoredLine(ig)
		// A script meant to be tracked is judged too: once the line is
		// put right, it runs.
		if sc := d.model.Script(ig.Ref.Name); ig.Kind == "track_script" && sc != nil {
			gs.scripts[sc] = true
		}
	}
	gated := false
	for _, t := range trackers {
		of := ""
		if t.Group != nil {
			of = " (from vrrp_sync_group " + show(t.Group.Name) + ")"
		}
		if t.File != nil {
			gs.files[t.File] = append(gs.files[t.File], t)
			gs.watch = true
			gated = gated || t.Gate() && t.File.Path() != ""
			continue
		}
		sc := t.Script
		gs.scripts[sc] = true
		switch {
		case t.Weight != 0:
			pos, fix := weightPos(t)
			d.fail(pos, fix, "vrrp_instance %s: track_script %s%s has weight %d: a failing check only changes the priority and the node may keep the VIP", show(in.Name), show(sc.Name), of, t.Weight)
		case t.Reverse:
			pos, fix := reversePos(t)
			d.fail(pos, fix, "vrrp_instance %s: track_script %s%s has weight 0 reverse: keepalived puts the instance in FAULT while the check passes and lets it take the VIP while it fails: the primary never holds the VIP, and every replica is a candidate", show(in.Name), show(sc.Name), of)
		default:
			gated = true
			d.ok(t.Ref.Stmt.Pos, "vrrp_instance %s is gated by vrrp_script %s%s, without weight", show(in.Name), show(sc.Name), of)
		}
	}
	switch {
	case len(trackers) == 0 && len(ignored) == 0:
		fix := "add track_script (or track_file) for patroni-vip-check"
		if g := d.model.GroupOf(in); g != nil {
			fix += ", to the instance or to vrrp_sync_group " + g.Name
		}
		d.fail(in.Stmt.Pos, fix, "vrrp_instance %s tracks no script and no file: it takes the VIP whatever Patroni says", show(in.Name))
	case !gated:
		d.fail(in.Stmt.Pos, "see the findings above",
			"vrrp_instance %s has no check that can put it in FAULT: it takes the VIP whatever Patroni says", show(in.Name))
	}
}

// ignoredLine: a tracking line keepalived does not apply.
func (d *doctor) ignoredLine(ig keepalived.Ignored) {
	pos := ig.Ref.Stmt.Pos
	says := fmt.Sprintf("%s %s: keepalived ignores this line (%s)", ig.Kind, show(ig.Ref.Name), show(ig.Why))
	switch {
	case ig.Harmless:
		d.warn(pos, "remove the line", "%s", says)
	case ig.Missing:
		block := "vrrp_script"
		if ig.Kind == "track_file" {
			block = "track_file"
		}
		d.fail(pos, fmt.Sprintf("define %s %s before the block that tracks it, or remove the line", block, ig.Ref.Name),
			"%s: the check is not applied", says)
	default:
		d.fail(pos, "write one name a line: NAME, or NAME weight 0", "%s: the check is not applied", says)
	}
}

// weightPos is the line that gave a tracker its weight, and the fix.
func weightPos(t keepalived.Tracker) (keepalived.Pos, string) {
	if t.Ref.Weight != nil || t.Script.Weight == nil {
		return t.Ref.Stmt.Pos, "remove the weight"
	}
	return t.Script.Weight.Pos, "remove the weight from vrrp_script " + t.Script.Name
}

// reversePos is the line that reversed a tracker, and the fix.
func reversePos(t keepalived.Tracker) (keepalived.Pos, string) {
	if t.Ref.Reverse != nil {
		return t.Ref.Stmt.Pos, "remove reverse"
	}
	for _, w := range t.Script.Weights {
		if w.Arg(2) == "reverse" {
			return w.Pos, "remove reverse from vrrp_script " + t.Script.Name + " (or track it as " + t.Script.Name + " weight 0 noreverse)"
		}
	}
	return t.Ref.Stmt.Pos, "remove reverse"
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

// instanceAuth: what keeps others from sending adverts. VRRP's
// authentication is a password in clear text (PASS) and does not exist in
// VRRP version 3; check_unicast_src with unicast peers makes keepalived
// drop adverts from any other address.
func (d *doctor) instanceAuth(in *keepalived.Instance) {
	g := d.model.Global
	a := in.Authentication(g)
	const protect = "protect VRRP with unicast_peer and check_unicast_src, or a network of its own"
	switch {
	case in.AuthType != nil && a.Dropped != "":
		d.warn(in.AuthType.Pos, "remove the authentication block; "+protect,
			"vrrp_instance %s: keepalived ignores authentication (%q): the adverts carry no password", show(in.Name), a.Dropped)
	case a.Type == "PASS":
		d.warn(in.AuthType.Pos, protect,
			"vrrp_instance %s: auth_type PASS sends the password in clear text in every advert: anyone who can see one can send adverts that take the VIP", show(in.Name))
	}
	if a.Truncated {
		d.warn(in.AuthPass.Pos, "use at most 8 characters",
			"vrrp_instance %s: auth_pass is longer than 8 characters: keepalived uses the first 8 (\"Truncating auth_pass to 8 characters\")", show(in.Name))
	}
	switch {
	case len(in.Peers()) > 0 && (in.CheckUnicastSrc != nil || g.CheckUnicastSrc != nil):
		pos := posOf(in.CheckUnicastSrc)
		if in.CheckUnicastSrc == nil {
			pos = g.CheckUnicastSrc.Pos
		}
		d.ok(pos, "vrrp_instance %s takes adverts from its unicast peers only (check_unicast_src)", show(in.Name))
	case len(in.Peers()) > 0:
		d.warn(in.Stmt.Pos, "add check_unicast_src to the instance",
			"vrrp_instance %s takes adverts from any address: a host that sends one with a higher priority takes the VIP", show(in.Name))
	default:
		d.warn(in.Stmt.Pos, "list the other nodes in unicast_peer and add check_unicast_src, or keep VRRP on a network of its own",
			"vrrp_instance %s uses multicast and takes adverts from any host of its network: one that sends a higher priority takes the VIP", show(in.Name))
	}
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
		_, kept := in.SourceIP()
		switch {
		case err == nil && !kept:
			// Said by instanceFamily.
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
	if !in.KeepsVIP(v) {
		return // dropped for its family: instanceFamily says so
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
	if v.Label != "" && v.Prefix.Addr().Is4() && (len(v.Label) > 15 || !strings.HasPrefix(v.Label, dev)) {
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
