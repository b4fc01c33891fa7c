package keepalived

import (
	"net/netip"
	"strings"
	"testing"
)

func model(t *testing.T, files map[string]string) *Model {
	t.Helper()
	return load(t, mapFS(files), "/k.conf").Model()
}

// TestRefusals: the first address read sets the instance's family, and
// keepalived refuses every address of the other, and a label on an IPv6
// VIP, with its own words.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		family     int
		want       []string // What: Says
		vips       int      // the VIPs keepalived keeps
		peers      int
	}{
		{"IPv6 as generated", "unicast_src_ip 2001:db8::11\nunicast_peer {\n2001:db8::12\n}\nvirtual_ipaddress {\n2001:db8::100/64 dev eth0\n}\n",
			6, nil, 1, 1},
		{"a label on IPv6", "virtual_ipaddress {\n2001:db8::100/64 dev eth0 label eth0:1\n}\n",
			6, []string{"label: Cannot specify label for IPv6 addresses (2001:db8::100/64) - ignoring label"}, 1, 0},
		{"an IPv6 VIP after an IPv4 source", "unicast_src_ip 198.51.100.11\nvirtual_ipaddress {\n198.51.100.100/24\n2001:db8::100/64\n}\n",
			4, []string{"virtual_ipaddress: (vi): address family must match VRRP instance [2001:db8::100/64] - ignoring"}, 1, 0},
		{"peers of both families", "unicast_peer {\n2001:db8::12\n198.51.100.12\n}\nvirtual_ipaddress {\n2001:db8::100/64\n}\n",
			6, []string{"unicast_peer: Configuration error: VRRP instance[vi] and unicast peer address[198.51.100.12] MUST be of the same family !!! Skipping..."}, 1, 1},
		{"a source of the other family", "virtual_ipaddress {\n2001:db8::100/64\n}\nunicast_src_ip 198.51.100.11\nunicast_peer {\n2001:db8::12\n}\n",
			6, []string{"unicast_src_ip: Configuration error: VRRP instance[vi] and src address[198.51.100.11] MUST be of the same family !!! Skipping..."}, 1, 1},
		{"an IPv4-mapped address is IPv6 to keepalived", "virtual_ipaddress {\n198.51.100.100\n::ffff:198.51.100.101\n}\n",
			4, []string{"virtual_ipaddress: (vi): address family must match VRRP instance [::ffff:198.51.100.101] - ignoring"}, 1, 0},
	} {
		m := model(t, map[string]string{"/k.conf": "vrrp_instance vi {\ninterface eth0\n" + tc.body + "}\n"})
		in := m.Instances[0]
		var got []string
		for _, r := range in.Refusals() {
			got = append(got, r.What+": "+r.Says)
		}
		vips := 0
		for _, v := range in.VIPs {
			if in.KeepsVIP(v) {
				vips++
			}
		}
		if from := in.FamilyFrom(); from == nil || addrFamily(from.Words[len(from.Words)-1]) != tc.family && addrFamily(from.Words[0]) != tc.family {
			t.Errorf("%s: the family is set by %+v", tc.name, from)
		}
		if in.Family() != tc.family || strings.Join(got, "\n") != strings.Join(tc.want, "\n") || vips != tc.vips || len(in.Peers()) != tc.peers {
			t.Errorf("%s: family %d, refusals %q, %d VIPs kept, %d peers; want %d, %q, %d, %d", tc.name, in.Family(), got, vips, len(in.Peers()), tc.family, tc.want, tc.vips, tc.peers)
		}
	}
}

// TestVRIDConflicts: keepalived refuses one router id twice in a family
// on an interface, across included files too; unicast instances only when
// they share a source and a peer.
func TestVRIDConflicts(t *testing.T) {
	inst := func(name, id, body string) string {
		return "vrrp_instance " + name + " {\ninterface eth0\nvirtual_router_id " + id + "\n" + body + "}\n"
	}
	const uni4 = "unicast_src_ip 198.51.100.11\nunicast_peer {\n198.51.100.12\n}\nvirtual_ipaddress {\n198.51.100.100/24\n}\n"
	const uni6 = "unicast_src_ip 2001:db8::11\nunicast_peer {\n2001:db8::12\n}\nvirtual_ipaddress {\n2001:db8::100/64\n}\n"
	const multi4 = "virtual_ipaddress {\n198.51.100.100/24\n}\n"
	eth0 := func(iface string, family int) (netip.Addr, bool) {
		if iface != "eth0" {
			return netip.Addr{}, false
		}
		if family == 6 {
			return netip.MustParseAddr("2001:db8::11"), true
		}
		return netip.MustParseAddr("198.51.100.11"), true
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unicast, across included files", map[string]string{"/k.conf": "include /a.conf\ninclude /b.conf\n",
			"/a.conf": inst("a", "51", uni4), "/b.conf": inst("b", "51", uni4)}, "(a) duplicate VRID conflict with b VRID 51"},
		{"unicast, the source from the interface", map[string]string{"/k.conf": inst("a", "51", uni4) +
			inst("b", "51", strings.Replace(uni4, "unicast_src_ip 198.51.100.11\n", "", 1))}, "(a) duplicate VRID conflict with b VRID 51"},
		{"unicast, no common peer", map[string]string{"/k.conf": inst("a", "51", uni4) +
			inst("b", "51", strings.Replace(uni4, "198.51.100.12", "198.51.100.13", 1))}, ""},
		{"unicast, another source", map[string]string{"/k.conf": inst("a", "51", uni4) +
			inst("b", "51", strings.Replace(uni4, "198.51.100.11", "198.51.100.21", 1))}, ""},
		{"another family", map[string]string{"/k.conf": inst("a", "51", uni4) + inst("b", "51", uni6)}, ""},
		{"IPv6, the same", map[string]string{"/k.conf": inst("a", "51", uni6) + inst("b", "51", uni6)}, "(a) duplicate VRID conflict with b VRID 51"},
		{"unicast and multicast", map[string]string{"/k.conf": inst("a", "51", uni4) + inst("b", "51", multi4)}, ""},
		{"multicast", map[string]string{"/k.conf": inst("a", "51", multi4) + inst("b", "51", multi4)}, "a and b both use VRID 51 with IPv4 on interface eth0"},
		{"multicast, the default group written out", map[string]string{"/k.conf": inst("a", "51", multi4) + inst("b", "51", multi4+"mcast_dst_ip 224.0.0.18\n")}, "a and b both use VRID 51 with IPv4 on interface eth0"},
		{"multicast, another interface", map[string]string{"/k.conf": inst("a", "51", multi4) + strings.Replace(inst("b", "51", multi4), "eth0", "eth1", 1)}, ""},
		{"other ids", map[string]string{"/k.conf": inst("a", "51", uni4) + inst("b", "52", uni4)}, ""},
	} {
		var got []string
		for _, c := range model(t, tc.files).VRIDConflicts(eth0) {
			got = append(got, c.Says)
		}
		if strings.Join(got, "\n") != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
