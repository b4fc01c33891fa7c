package doctor

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

// What keepalived-conf writes, for the lab's node 1 as its own tests set it
// up (internal/vipconf): the primary's VIP, a read VIP, a cluster named
// with --instance, on IPv4 and IPv6, both set-ups, both keepalived
// versions. On a node set up as each configuration's comments say (the
// watchers' options, PostgreSQL listening everywhere), the doctor finds
// nothing to say but ok.

// nodeOne is node 1, as internal/vipconf's tests describe it.
func nodeOne(mode vipconf.Mode, v keepalived.Version, family string) vipconf.Setup {
	s := vipconf.Setup{
		Mode: mode, Keepalived: v,
		URL:       "http://198.51.100.11:8008/primary",
		Node:      netip.MustParseAddr("198.51.100.11"),
		Peers:     []netip.Addr{netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")},
		Interface: "eth0", VIP: netip.MustParsePrefix("198.51.100.100/24"), Label: "eth0:1",
		RouterID: 51, Priority: 100, PGData: pgdata,
	}
	if family == "ipv6" {
		s.URL = "http://[2001:db8::11]:8008/primary"
		s.Node = netip.MustParseAddr("2001:db8::11")
		s.Peers = []netip.Addr{netip.MustParseAddr("2001:db8::12"), netip.MustParseAddr("2001:db8::13")}
		s.VIP, s.Label, s.RouterID = netip.MustParsePrefix("2001:db8::100/64"), "", 100
	}
	return s
}

// withRead adds the lab's read VIP.
func withRead(s vipconf.Setup) vipconf.Setup {
	s.ReadVIP, s.ReadLabel, s.ReadRouterID = netip.MustParsePrefix("198.51.100.101/24"), "eth0:2", 101
	s.ReadURL = "http://198.51.100.11:8008/replica?lag=16MB"
	if s.Node.Is6() {
		s.ReadVIP, s.ReadLabel = netip.MustParsePrefix("2001:db8::101/64"), ""
		s.ReadURL = "http://[2001:db8::11]:8008/replica?lag=16MB"
	}
	return s
}

// trackBlockRe finds a track_file block's watcher options (from its
// comments) and its file.
var trackBlockRe = regexp.MustCompile(`(?s)\ntrack_file \S+ \{\n.*?PATRONI_VIP_CHECK_ARGS="([^"]*)".*?\n    file (\S+)\n`)

// generatedNode is a node that runs the configuration as its comments say.
func generatedNode(t *testing.T, s vipconf.Setup) *node {
	t.Helper()
	data, err := vipconf.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "keepalived.conf", s.Keepalived)
	n.sys.Files[conf].Data = data
	n.sys.Ifaces[1].Addrs = append(n.sys.Ifaces[1].Addrs, netip.MustParsePrefix("2001:db8::11/64"), netip.MustParsePrefix("fe80::11/64"))
	// PostgreSQL listens on both families.
	p := n.sys.Files["/etc/patroni/15-main.yml"]
	p.Data = []byte(strings.Replace(string(p.Data), "listen: 0.0.0.0:5432", "listen: '*:5432'", 1))
	if s.Mode == vipconf.Oneshot {
		return n
	}
	delete(n.units, WatchService)
	for _, m := range trackBlockRe.FindAllStringSubmatch(string(data), -1) {
		args, file := m[1], m[2]
		if path.Base(file) == "eligible" {
			n.units[WatchService] = watchUnit("", 200)
			n.sys.Files["/etc/default/patroni-vip-check"].Data = []byte(`PATRONI_VIP_CHECK_ARGS="` + args + `"` + "\n")
		} else {
			n.addWatcher(t, path.Base(file), args)
		}
		n.sys.Files[file] = &systemtest.File{Mode: 0o644, Data: []byte("1\n"), Label: "system_u:object_r:keepalived_var_run_t:s0"}
	}
	return n
}

func TestGeneratedConfigurationsPass(t *testing.T) {
	for _, v := range []keepalived.Version{v227, v233} {
		for _, mode := range []vipconf.Mode{vipconf.Watch, vipconf.Oneshot} {
			for _, family := range []string{"ipv4", "ipv6"} {
				one := nodeOne(mode, v, family)
				read := withRead(one)
				named := read
				named.Instance = "pg-a"
				for name, s := range map[string]vipconf.Setup{"": one, "-read": read, "-read-instance": named} {
					name = fmt.Sprintf("%s-%s%s, keepalived %s", mode, family, name, v)
					n := generatedNode(t, s)
					fs := n.run()
					none(t, fs, Warning)
					if t.Failed() {
						t.Fatalf("%s:\n%s", name, lines(fs))
					}
					units := 0
					for _, f := range fs {
						if strings.Contains(f.Msg, " keeps /run/keepalived-patroni-vip-check/") {
							units++
						}
					}
					if wantUnits := map[vipconf.Mode]int{vipconf.Watch: 1, vipconf.Oneshot: 0}[mode] * (1 + boolInt(s.ReadVIP.IsValid())); units != wantUnits {
						t.Errorf("%s: %d watchers judged, want %d:\n%s", name, units, wantUnits, lines(fs))
					}
				}
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestIPv6Instances: one family an instance; no label on IPv6.
func TestIPv6Instances(t *testing.T) {
	six := func(t *testing.T) *node {
		return generatedNode(t, nodeOne(vipconf.Watch, v227, "ipv6"))
	}
	n := six(t)
	n.edit(t, "2001:db8::100/64 dev eth0\n", "2001:db8::100/64 dev eth0 label eth0:1\n")
	want(t, n.run(), Failure, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip: the IPv6 VIP 2001:db8::100/64 has a label, which keepalived refuses", n.line(t, "label eth0:1")),
		`"Cannot specify label for IPv6 addresses (2001:db8::100/64) - ignoring label"`, "keepalived -t fails on the configuration", "remove label eth0:1 (an IPv6 address has none)")

	n = six(t)
	n.edit(t, "2001:db8::100/64 dev eth0\n", "2001:db8::100/64 dev eth0\n        198.51.100.100/24 dev eth0\n")
	want(t, n.run(), Failure, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip is IPv6 (from /etc/keepalived/keepalived.conf:%d): keepalived drops the VIP 198.51.100.100/24", n.line(t, "198.51.100.100/24"), n.line(t, "    unicast_src_ip")),
		"(patroni_vip): address family must match VRRP instance [198.51.100.100/24] - ignoring", "give each family's VIPs an instance of their own")

	n = six(t)
	n.edit(t, "        2001:db8::13\n", "        198.51.100.13\n")
	fs := n.run()
	want(t, fs, Warning, "vrrp_instance patroni_vip is IPv6", "keepalived skips the peer 198.51.100.13", "MUST be of the same family", "list the peers' IPv6 addresses")
	none(t, fs, Failure)
	n.edit(t, "        2001:db8::12\n", "        198.51.100.12\n")
	want(t, n.run(), Warning, "vrrp_instance patroni_vip: keepalived keeps none of its unicast peers and multicasts its adverts instead")

	// The first address sets the family: an IPv4 source first makes the
	// instance IPv4, and keepalived drops its IPv6 peers and VIP.
	n = six(t)
	n.edit(t, "unicast_src_ip 2001:db8::11", "unicast_src_ip 198.51.100.11")
	fs = n.run()
	want(t, fs, Failure, fmt.Sprintf("vrrp_instance patroni_vip is IPv4 (from /etc/keepalived/keepalived.conf:%d): keepalived drops the VIP 2001:db8::100/64", n.line(t, "    unicast_src_ip")))
	want(t, fs, Warning, "keepalived skips the peer 2001:db8::12")
	// After the VIP, it is the one skipped.
	n = six(t)
	n.edit(t, "    unicast_src_ip 2001:db8::11\n", "")
	n.edit(t, "    accept\n", "    accept\n    unicast_src_ip 198.51.100.11\n")
	fs = n.run()
	want(t, fs, Warning, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_vip is IPv6 (from /etc/keepalived/keepalived.conf:%d): keepalived skips unicast_src_ip 198.51.100.11", n.line(t, "    unicast_src_ip"), n.line(t, "        2001:db8::12")),
		"MUST be of the same family", "write this node's IPv6 address")
	none(t, fs, Failure)
	for _, f := range fs {
		if strings.Contains(f.Msg, "unicast_src_ip 198.51.100.11 is") {
			t.Errorf("a source keepalived skips is judged as used: %s", f)
		}
	}
}

// TestDuplicateRouterID: one virtual_router_id on one interface, in one
// family, twice, across included files: keepalived's VRRP process stops.
func TestDuplicateRouterID(t *testing.T) {
	a, b := nodeOne(vipconf.Watch, v227, "ipv4"), nodeOne(vipconf.Watch, v227, "ipv4")
	a.Instance, b.Instance = "pg-a", "pg-b"
	b.URL = "http://198.51.100.11:8009/primary"
	b.VIP = netip.MustParsePrefix("198.51.100.110/24")
	n := generatedNode(t, a)
	dataB, err := vipconf.Render(b)
	if err != nil {
		t.Fatal(err)
	}
	n.sys.Files["/etc/keepalived/patroni-pg-a.conf"] = &systemtest.File{Mode: 0o644, Data: n.sys.Files[conf].Data}
	n.sys.Files["/etc/keepalived/patroni-pg-b.conf"] = &systemtest.File{Mode: 0o644, Data: dataB}
	n.sys.Files[conf].Data = []byte("include /etc/keepalived/patroni-*.conf\n")
	n.addWatcher(t, "pg-b", "--pgdata "+pgdata+" http://198.51.100.11:8009/primary")
	n.sys.Files["/run/keepalived-patroni-vip-check/pg-b"] = &systemtest.File{Mode: 0o644, Data: []byte("0\n")}
	line := 1 + strings.Count(string(dataB[:strings.Index(string(dataB), "virtual_router_id 51")]), "\n")
	fs := n.run()
	want(t, fs, Failure, fmt.Sprintf("patroni-pg-b.conf:%d: vrrp_instance patroni_pg-b_vip has virtual_router_id 51, as vrrp_instance patroni_pg-a_vip (/etc/keepalived/patroni-pg-a.conf:%d) has, IPv4 on eth0", line, line),
		`"(patroni_pg-a_vip) duplicate VRID conflict with patroni_pg-b_vip VRID 51"`, "VRRP process stops at start", "keepalived-conf --router-id")
	// With ids of their own, both pass.
	n.sys.Files["/etc/keepalived/patroni-pg-b.conf"].Data = []byte(strings.Replace(string(dataB), "virtual_router_id 51", "virtual_router_id 52", 1))
	fs = n.run()
	none(t, fs, Failure)
	want(t, fs, OK, "track_file patroni_pg-b_primary: patroni-vip-check@pg-b.service keeps /run/keepalived-patroni-vip-check/pg-b")
}
