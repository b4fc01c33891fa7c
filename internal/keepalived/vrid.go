package keepalived

import (
	"net/netip"
	"slices"
)

// VRIDConflict is two instances keepalived refuses to run side by side:
// one virtual_router_id, one family, on one interface (multicast) or from
// one address to a common peer (unicast). keepalived's VRRP process then
// stops at start: no instance of the configuration runs.
type VRIDConflict struct {
	A, B *Instance // in the order keepalived reads them
	Says string
}

// VRIDConflicts are the pairs of instances keepalived refuses, as
// check_vrid_conflicts (keepalived/vrrp/vrrp.c, the same in 2.2.7 and
// 2.3.3) decides: the same family and router id, both unicast or both
// multicast; unicast ones on the same interface (or either without one),
// from the same address to at least one common peer; multicast ones on the
// same interface to the same group. addr is the address of an interface of
// that family, the source of an instance without a unicast_src_ip;
// keepalived skips a pair whose source it does not know.
func (m *Model) VRIDConflicts(addr func(iface string, family int) (netip.Addr, bool)) []VRIDConflict {
	type inst struct {
		in     *Instance
		id     int
		family int
		iface  string
		peers  []netip.Addr
		src    netip.Addr
		known  bool
		group  string
	}
	var all []inst
	for _, in := range m.Instances {
		id, ok, _ := in.RouterID()
		if !ok {
			continue // keepalived stopped before it compares
		}
		x := inst{in: in, id: id, family: in.Family(), iface: in.Interface.Arg(1), peers: in.Peers()}
		if x.src, x.known = in.SourceIP(); !x.known && x.iface != "" {
			x.src, x.known = addr(x.iface, x.family)
		}
		for _, s := range in.Stmt.Block {
			if s.Keyword() == "mcast_dst_ip" {
				x.group = s.Arg(1)
			}
		}
		if x.group == "224.0.0.18" || x.group == "ff02::12" {
			x.group = "" // the default groups, written out
		}
		all = append(all, x)
	}
	var out []VRIDConflict
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.family != b.family || a.id != b.id || (len(a.peers) > 0) != (len(b.peers) > 0) {
				continue
			}
			if len(a.peers) > 0 {
				if a.iface != "" && b.iface != "" && a.iface != b.iface || !a.known || !b.known || a.src != b.src {
					continue
				}
				if !slices.ContainsFunc(a.peers, func(p netip.Addr) bool { return slices.Contains(b.peers, p) }) {
					continue // keepalived tells their adverts apart by peer
				}
				out = append(out, VRIDConflict{a.in, b.in, sprintf("(%s) duplicate VRID conflict with %s VRID %d", a.in.Name, b.in.Name, a.id)})
				continue
			}
			if a.iface == "" || a.iface != b.iface || a.group != b.group {
				continue
			}
			out = append(out, VRIDConflict{a.in, b.in, sprintf("%s and %s both use VRID %d with IPv%d on interface %s", a.in.Name, b.in.Name, a.id, a.family, a.iface)})
		}
	}
	return out
}
