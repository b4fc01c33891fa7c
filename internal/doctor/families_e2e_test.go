//go:build e2e

package doctor

// What keepalived refuses in IPv6 instances and between instances, shown
// with real keepalived: its configuration test fails in its own words, the
// doctor flags the same line, and the configuration keepalived-conf writes
// passes both.

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

const node6 = "2001:db8::11"

// setup6 is the lab's node on IPv6, as keepalived-conf writes it.
func (l *lab) setup6() vipconf.Setup {
	s := l.setup(vipconf.Watch, l.f.version)
	s.URL = "http://[" + node6 + "]:8008/primary"
	s.Node = netip.MustParseAddr(node6)
	s.Peers = []netip.Addr{netip.MustParseAddr("2001:db8::12"), netip.MustParseAddr("2001:db8::13")}
	s.VIP, s.Label, s.RouterID = netip.MustParsePrefix("2001:db8::100/64"), "", 100
	return s
}

// ipv6 gives the lab's node its IPv6 address, and has PostgreSQL listen
// on both families, as an IPv6 VIP needs.
func (l *lab) ipv6() {
	l.t.Helper()
	ip(l.t, "-n", l.ns, "addr", "add", node6+"/64", "dev", "eth0", "nodad")
	l.write("patroni.yml", "name: node1\nrestapi:\n  listen: 0.0.0.0:8008\n  connect_address: "+nodeAddr+":8008\n"+
		"postgresql:\n  listen: '*:5432'\n  connect_address: "+nodeAddr+":5432\n", 0o644)
}

// render writes a set-up, each old text replaced by its new one, as a file
// of the work directory; its path as keepalived sees it.
func (l *lab) render(name string, s vipconf.Setup, edits ...string) string {
	l.t.Helper()
	data, err := vipconf.Render(s)
	must(l.t, err)
	text := string(data)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			l.t.Fatalf("no %q in the generated configuration", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	l.write(name, text, 0o644)
	return l.path(name)
}

// refused: keepalived -t fails on conf saying says; the doctor flags it
// with parts. Both run with the packages' paths in place.
func (l *lab) refused(conf, says string, level Level, parts ...string) {
	l.t.Helper()
	if code, out := l.configTest(conf); code == 0 || !strings.Contains(out, says) {
		l.t.Errorf("keepalived %s -t: exit %d, want a failure saying %q:\n%s", l.f.version, code, says, out)
	}
	l.expectFinding(l.packagedDoctor(conf), level, parts...)
}

// accepted: keepalived -t accepts conf without a word, and the doctor
// finds no failure.
func (l *lab) accepted(conf string) {
	l.t.Helper()
	if code, out := l.configTest(conf); code != 0 || strings.TrimSpace(out) != "" {
		l.t.Errorf("keepalived %s -t: exit %d:\n%s", l.f.version, code, out)
	}
	l.expectPasses(l.packagedDoctor(conf))
}

func (l *lab) vip6Held() bool {
	out, _ := exec.Command("ip", "-n", l.ns, "-6", "addr", "show", "dev", "eth0").Output()
	return strings.Contains(string(out), "inet6 2001:db8::100/64")
}

// An IPv6 VIP with a label: keepalived -t refuses the configuration, and a
// keepalived that runs it adds the VIP without the label.
func TestIPv6LabelRefused(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(filepath.Join(l.work, "run"), 0o755))
		l.ipv6()
		const vip = "2001:db8::100/64 dev eth0\n"
		bad := l.render("labelled.conf", l.setup6(), vip, "2001:db8::100/64 dev eth0 label eth0:1\n")
		l.refused(bad, "Cannot specify label for IPv6 addresses (2001:db8::100/64) - ignoring label",
			Failure, "the IPv6 VIP 2001:db8::100/64 has a label, which keepalived refuses", "keepalived -t fails on the configuration")

		l.write("run/eligible", "1\n", 0o644)
		l.start(bad)
		l.expectLog("Cannot specify label for IPv6 addresses")
		if !eventually(10*time.Second, l.vip6Held) {
			t.Errorf("keepalived %s did not add the labelled IPv6 VIP:\n%s", l.f.version, l.kalog.String())
		}
		l.stop()

		l.accepted(l.render("good.conf", l.setup6()))
	})
}

// Addresses of the other family than the instance's first: keepalived
// drops the VIP (no node ever holds it) and skips the peer.
func TestOtherFamilyRefused(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(filepath.Join(l.work, "run"), 0o755))
		l.ipv6()
		const vip = "2001:db8::100/64 dev eth0\n"
		mixed := l.render("mixed.conf", l.setup6(), vip, vip+"        198.51.100.100/24 dev eth0\n")
		l.refused(mixed, "(patroni_vip): address family must match VRRP instance [198.51.100.100/24] - ignoring",
			Failure, "vrrp_instance patroni_vip is IPv6", "keepalived drops the VIP 198.51.100.100/24")
		peer := l.render("peer.conf", l.setup6(), "        2001:db8::13\n", "        198.51.100.13\n")
		l.refused(peer, "unicast peer address[198.51.100.13] MUST be of the same family",
			Warning, "keepalived skips the peer 198.51.100.13")
	})
}

// One virtual_router_id twice, in two clusters' files included side by
// side: keepalived -t refuses them, and so does the doctor.
func TestDuplicateRouterIDRefused(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, l *lab) {
		must(t, os.Mkdir(filepath.Join(l.work, "run"), 0o755))
		two := func(idB int) string {
			// The packages' track directory, which the doctor and
			// keepalived -t see in a mount namespace of their own.
			a := l.setup(vipconf.Watch, l.f.version)
			a.Instance, a.RouterID, a.TrackFile = "pg-a", 100, ""
			b := a
			b.Instance, b.RouterID = "pg-b", idB
			b.URL, b.VIP = "http://"+nodeAddr+":8009/primary", netip.MustParsePrefix("198.51.100.110/24")
			l.render("patroni-pg-a.conf", a)
			l.render("patroni-pg-b.conf", b)
			l.write("keepalived.conf", "include "+l.path("patroni-*.conf")+"\n", 0o644)
			return l.path("keepalived.conf")
		}
		l.refused(two(100), "(patroni_pg-a_vip) duplicate VRID conflict with patroni_pg-b_vip VRID 100",
			Failure, "vrrp_instance patroni_pg-b_vip has virtual_router_id 100, as vrrp_instance patroni_pg-a_vip", "its VRRP process stops at start")
		l.accepted(two(110))
	})
}
