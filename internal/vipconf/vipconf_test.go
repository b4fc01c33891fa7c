package vipconf

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
)

// lab is node 1 of the e2e lab (e2e/cluster), as packaging/keepalived*.conf describe it.
func lab(mode Mode, v keepalived.Version) Setup {
	return Setup{
		Mode:       mode,
		Keepalived: v,
		URL:        "http://198.51.100.11:8008/primary",
		Node:       netip.MustParseAddr("198.51.100.11"),
		Peers:      []netip.Addr{netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")},
		Interface:  "eth0",
		VIP:        netip.MustParsePrefix("198.51.100.100/24"),
		Label:      "eth0:1",
		RouterID:   51,
		Priority:   100,
		PGData:     "/var/lib/postgresql/15/main",
	}
}

// The shipped examples are the generator's output, byte for byte. After a
// change to the generator, PVC_UPDATE_EXAMPLES=1 go test ./vipconf writes
// them anew; the diff is then the change to review.
func TestShippedExamples(t *testing.T) {
	cases := []struct {
		file  string
		setup Setup
	}{
		{"keepalived.conf", lab(Oneshot, keepalived.Version{Major: 2, Minor: 2, Patch: 7})},
		{"keepalived-2.3.conf", lab(Oneshot, keepalived.Version{Major: 2, Minor: 3, Patch: 3})},
		{"keepalived-watch.conf", lab(Watch, keepalived.Version{Major: 2, Minor: 2, Patch: 7})},
		{"keepalived-read-vip.conf", withRead(lab(Watch, keepalived.Version{Major: 2, Minor: 2, Patch: 7}))},
	}
	for _, tc := range cases {
		got, err := Render(tc.setup)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if os.Getenv("PVC_UPDATE_EXAMPLES") != "" {
			if err := os.WriteFile("../../packaging/"+tc.file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile("../../packaging/" + tc.file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("packaging/%s is not the generator's output:\n%s", tc.file, diff(string(want), string(got)))
		}
	}
}

// diff shows the first line that differs.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return "(same lines, different bytes)"
}

// What the generator writes is what keepalived reads: parsed back, the
// configuration runs Command with timers that fit, gated without weight.
func TestRenderParsesBack(t *testing.T) {
	for _, s := range []Setup{
		lab(Oneshot, keepalived.Version{Major: 2, Minor: 2, Patch: 7}),
		lab(Oneshot, keepalived.Version{Major: 2, Minor: 3, Patch: 3}),
		lab(Watch, keepalived.Version{Major: 2, Minor: 2, Patch: 7}),
	} {
		s.CheckFlags = []string{"--cacert", "/etc/patroni/ca with space.pem", "--servername", "node1.example"}
		s.URL = "https://198.51.100.11:8008/primary"
		data, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		fsys := fstest.MapFS{"k.conf": {Data: data}}
		c, err := keepalived.Load("/k.conf", keepalived.Options{FS: fsys})
		if err != nil || len(c.Problems) > 0 {
			t.Fatalf("%s %s: %v %v", s.Mode, s.Keepalived, err, c.Problems)
		}
		m := c.Model()
		if len(m.Instances) != 1 {
			t.Fatalf("%d instances", len(m.Instances))
		}
		in := m.Instances[0]
		if acc, _ := in.AcceptMode(m.Global); !acc || m.Global.EnableScriptSecurity == nil {
			t.Errorf("%s: accept %t, enable_script_security %v", s.Mode, acc, m.Global.EnableScriptSecurity)
		}
		if len(in.VIPs) != 1 || in.VIPs[0].Prefix != s.VIP || in.VIPs[0].Dev != "eth0" || in.VIPs[0].Label != "eth0:1" {
			t.Errorf("VIPs %+v", in.VIPs)
		}
		if s.Mode == Watch {
			if len(m.Scripts) != 0 || len(in.TrackFiles) != 1 {
				t.Fatalf("watch: %d scripts, %d track files", len(m.Scripts), len(in.TrackFiles))
			}
			tf := m.TrackFile(in.TrackFiles[0].Name)
			if w, rev := tf.Effective(in.TrackFiles[0]); w != 0 || !rev || tf.Path() != cmdline.DefaultTrackFile {
				t.Errorf("track file %s weight %d reverse %t", tf.Path(), w, rev)
			}
			if !strings.Contains(string(data), `PATRONI_VIP_CHECK_ARGS="`+strings.Join(s.WatchArgs(), " ")+`"`) {
				t.Errorf("the service's arguments are not in the comments")
			}
			continue
		}
		sc := m.Script(in.TrackScripts[0].Name)
		args, extra, err := sc.Args(s.Keepalived)
		if err != nil || extra != nil || strings.Join(args, "|") != strings.Join(s.Command(), "|") {
			t.Errorf("%s: args %q extra %q err %v, want %q", s.Keepalived, args, extra, err, s.Command())
		}
		timeout, note := sc.TimeoutFor(s.Keepalived)
		check := cmdline.DefaultTimeout
		if s.Keepalived.FractionalTimers() {
			check = FastCheckTimeout
		}
		if note != "" || timeout <= check || sc.Effective(in.TrackScripts[0]) != 0 {
			t.Errorf("%s: timeout %v (%s) for a check timeout of %v, weight %d", s.Keepalived, timeout, note, check, sc.Effective(in.TrackScripts[0]))
		}
	}
}

// withRead is s with the lab's read VIP, 198.51.100.101.
func withRead(s Setup) Setup {
	s.ReadVIP = netip.MustParsePrefix("198.51.100.101/24")
	s.ReadLabel = "eth0:2"
	s.ReadRouterID = 101
	s.ReadURL = "http://198.51.100.11:8008/replica?lag=16MB"
	return s
}

// parse reads a rendered configuration back as keepalived would.
func parse(t *testing.T, data []byte) *keepalived.Model {
	t.Helper()
	c, err := keepalived.Load("/k.conf", keepalived.Options{FS: fstest.MapFS{"k.conf": {Data: data}}})
	if err != nil || len(c.Problems) > 0 {
		t.Fatalf("%v %v", err, c.Problems)
	}
	return c.Model()
}

// The read VIP is a second instance with a router id, VIP and gate of its
// own, gated without weight like the first; its watcher is the template's
// instance "replica" (or NAME-replica), its check /replica?lag=.
func TestRenderReadVIP(t *testing.T) {
	for _, tc := range []struct {
		mode     Mode
		instance string
		names    [4]string // track of the primary, its instance, track of the read VIP, its instance
		files    [2]string
	}{
		{Watch, "", [4]string{"patroni_primary", "patroni_vip", "patroni_replica", "patroni_read_vip"},
			[2]string{"/run/keepalived-patroni-vip-check/eligible", "/run/keepalived-patroni-vip-check/replica"}},
		{Watch, "pg-a", [4]string{"patroni_pg-a_primary", "patroni_pg-a_vip", "patroni_pg-a_replica", "patroni_pg-a_read_vip"},
			[2]string{"/run/keepalived-patroni-vip-check/pg-a", "/run/keepalived-patroni-vip-check/pg-a-replica"}},
		{Oneshot, "", [4]string{"patroni_primary", "patroni_vip", "patroni_replica", "patroni_read_vip"}, [2]string{}},
		{Oneshot, "pg_b", [4]string{"patroni_pg_b_primary", "patroni_pg_b_vip", "patroni_pg_b_replica", "patroni_pg_b_read_vip"}, [2]string{}},
	} {
		v := keepalived.Version{Major: 2, Minor: 3, Patch: 3}
		s := withRead(lab(tc.mode, v))
		s.Instance = tc.instance
		data, err := Render(s)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.mode, tc.instance, err)
		}
		m := parse(t, data)
		if len(m.Instances) != 2 {
			t.Fatalf("%s %q: %d instances", tc.mode, tc.instance, len(m.Instances))
		}
		for i, in := range m.Instances {
			wantVIP, wantLabel, wantID, track := s.VIP, "eth0:1", "51", tc.names[0]
			if i == 1 {
				wantVIP, wantLabel, wantID, track = s.ReadVIP, "eth0:2", "101", tc.names[2]
			}
			if in.Name != tc.names[2*i+1] || in.VirtualRouterID.Arg(1) != wantID || in.Priority.Arg(1) != "100" ||
				len(in.VIPs) != 1 || in.VIPs[0].Prefix != wantVIP || in.VIPs[0].Label != wantLabel {
				t.Errorf("%s %q: instance %s: router id %v, priority %v, VIPs %+v", tc.mode, tc.instance, in.Name, in.VirtualRouterID, in.Priority, in.VIPs)
			}
			if acc, _ := in.AcceptMode(m.Global); !acc || in.UnicastSrcIP.Arg(1) != "198.51.100.11" || len(in.UnicastPeers) != 2 || in.Version.Arg(1) != "3" {
				t.Errorf("%s %q: %s: accept %t, unicast %v %v, version %v", tc.mode, tc.instance, in.Name, acc, in.UnicastSrcIP, in.UnicastPeers, in.Version)
			}
			refs := in.TrackScripts
			if tc.mode == Watch {
				refs = in.TrackFiles
			}
			if len(refs) != 1 || refs[0].Name != track || refs[0].Weight != nil {
				t.Errorf("%s %q: %s is gated by %+v, want %s alone", tc.mode, tc.instance, in.Name, refs, track)
				continue
			}
			g := s.gates()[i]
			if tc.mode == Watch {
				tf := m.TrackFile(track)
				if w, rev := tf.Effective(refs[0]); w != 0 || !rev || tf.Path() != tc.files[i] {
					t.Errorf("%s %q: track file %s %s weight %d reverse %t", tc.mode, tc.instance, track, tf.Path(), w, rev)
				}
				if !strings.Contains(string(data), `PATRONI_VIP_CHECK_ARGS="`+strings.Join(s.watchArgs(g), " ")+`"`) ||
					strings.Contains(strings.Join(s.watchArgs(g), " "), "--track-file") {
					t.Errorf("%s %q: %s's arguments %q are not in the comments, or name the track file", tc.mode, tc.instance, track, s.watchArgs(g))
				}
				continue
			}
			sc := m.Script(track)
			args, _, err := sc.Args(v)
			if err != nil || strings.Join(args, "|") != strings.Join(s.command(g), "|") || sc.Effective(refs[0]) != 0 {
				t.Errorf("%s %q: %s runs %q (%v), want %q", tc.mode, tc.instance, track, args, err, s.command(g))
			}
		}
		if !strings.Contains(string(data), "/replica?lag=16MB") || !strings.Contains(string(data), "it never falls back to\n    # the primary") {
			t.Errorf("%s %q: the read VIP's check or its fallback is not said:\n%s", tc.mode, tc.instance, data)
		}
	}
}

// lab6 is lab's node 1 on IPv6, in 2001:db8::/32.
func lab6(mode Mode, v keepalived.Version) Setup {
	s := lab(mode, v)
	s.URL = "http://[2001:db8::11]:8008/primary"
	s.Node = netip.MustParseAddr("2001:db8::11")
	s.Peers = []netip.Addr{netip.MustParseAddr("2001:db8::12"), netip.MustParseAddr("2001:db8::13")}
	s.VIP = netip.MustParsePrefix("2001:db8::100/64")
	s.Label = ""
	return s
}

// An IPv6 VIP has no label (keepalived refuses one), and VRRP version 3
// with the node's own IPv6 address as the unicast source.
func TestRenderIPv6(t *testing.T) {
	for _, mode := range []Mode{Oneshot, Watch} {
		s := lab6(mode, keepalived.Version{Major: 2, Minor: 2, Patch: 7})
		data, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		c, err := keepalived.Load("/k.conf", keepalived.Options{FS: fstest.MapFS{"k.conf": {Data: data}}})
		if err != nil || len(c.Problems) > 0 {
			t.Fatalf("%s: %v %v", mode, err, c.Problems)
		}
		in := c.Model().Instances[0]
		if len(in.VIPs) != 1 || in.VIPs[0].Prefix != s.VIP || in.VIPs[0].Label != "" || in.VIPs[0].Dev != "eth0" {
			t.Errorf("%s: VIPs %+v", mode, in.VIPs)
		}
		if in.Version.Arg(1) != "3" || in.UnicastSrcIP.Arg(1) != "2001:db8::11" || len(in.UnicastPeers) != 2 || in.UnicastPeers[1].Arg(0) != "2001:db8::13" {
			t.Errorf("%s: version %v, unicast_src_ip %v, peers %v", mode, in.Version, in.UnicastSrcIP, in.UnicastPeers)
		}
		text := string(data)
		for _, want := range []string{"nodes 2001:db8::11, 2001:db8::12 and 2001:db8::13 on eth0", "IPv6 has VRRP version 3"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q in\n%s", mode, want, text)
			}
		}
		if strings.Contains(text, "auth_type") || strings.Contains(text, " label ") {
			t.Errorf("%s: an authentication block or a label for IPv6:\n%s", mode, text)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	v := keepalived.Version{Major: 2, Minor: 2, Patch: 7}
	cases := []struct {
		name   string
		change func(*Setup)
		want   string
	}{
		{"mode", func(s *Setup) { s.Mode = "cron" }, "unknown mode"},
		{"version", func(s *Setup) { s.Keepalived = keepalived.Version{} }, "version is not known"},
		{"no peers", func(s *Setup) { s.Peers = nil }, "no peers"},
		{"self peer", func(s *Setup) { s.Peers = append(s.Peers, s.Node) }, "is this node"},
		{"vip is node", func(s *Setup) { s.VIP = netip.PrefixFrom(s.Node, 24) }, "own address"},
		{"family", func(s *Setup) { s.VIP = netip.MustParsePrefix("2001:db8::1/64") }, "same family"},
		{"router id", func(s *Setup) { s.RouterID = 256 }, "virtual_router_id"},
		{"priority", func(s *Setup) { s.Priority = 255 }, "address owner"},
		{"label", func(s *Setup) { s.Label = "wlan0:1" }, "label"},
		{"url", func(s *Setup) { s.URL = "ftp://x" }, "invalid URL"},
		{"vip is a peer", func(s *Setup) { s.VIP = netip.PrefixFrom(s.Peers[1], 24) }, "the VIP 198.51.100.13 is the address of the peer 198.51.100.13"},
		{"network", func(s *Setup) { s.VIP = netip.MustParsePrefix("198.51.100.0/24") }, "the VIP 198.51.100.0 is the network address of 198.51.100.0/24"},
		{"broadcast", func(s *Setup) { s.VIP = netip.MustParsePrefix("198.51.100.255/24") }, "the VIP 198.51.100.255 is the broadcast address of 198.51.100.0/24"},
		{"broadcast /26", func(s *Setup) { s.VIP = netip.MustParsePrefix("198.51.100.127/26") }, "broadcast address of 198.51.100.64/26"},
		{"credentials", func(s *Setup) { s.URL = "http://u:S3CRET@198.51.100.11:8008/primary" }, "credentials belong in --user and --password-file"},
		{"fragment", func(s *Setup) { s.URL = "http://198.51.100.11:8008/primary#x" }, "a fragment means nothing to Patroni"},
		{"ipv6 label", func(s *Setup) { *s = lab6(Oneshot, v); s.Label = "eth0:1" }, "the VIP 2001:db8::100 is IPv6, which keepalived cannot label"},
		{"ipv6 network", func(s *Setup) { *s = lab6(Oneshot, v); s.VIP = netip.MustParsePrefix("2001:db8::/64") }, "network address of 2001:db8::/64"},
		{"ipv6 peer family", func(s *Setup) { *s = lab6(Oneshot, v); s.Peers[0] = netip.MustParseAddr("198.51.100.12") }, "not of the same family"},
		{"read vip is the vip", func(s *Setup) { *s = withRead(*s); s.ReadVIP = s.VIP }, "the read VIP 198.51.100.100 is the VIP"},
		{"read vip is a peer", func(s *Setup) { *s = withRead(*s); s.ReadVIP = netip.PrefixFrom(s.Peers[0], 24) }, "is the address of a peer"},
		{"read vip is the node", func(s *Setup) { *s = withRead(*s); s.ReadVIP = netip.PrefixFrom(s.Node, 24) }, "this node's own address"},
		{"read vip broadcast", func(s *Setup) { *s = withRead(*s); s.ReadVIP = netip.MustParsePrefix("198.51.100.255/24") }, "broadcast address"},
		{"read vip family", func(s *Setup) { *s = withRead(*s); s.ReadVIP = netip.MustParsePrefix("2001:db8::101/64") }, "not of the same family"},
		{"read router id", func(s *Setup) { *s = withRead(*s); s.ReadRouterID = s.RouterID }, "the read VIP's virtual_router_id 51 is the VIP's"},
		{"read router id range", func(s *Setup) { *s = withRead(*s); s.ReadRouterID = 0 }, "virtual_router_id 0 is not in 1-255"},
		{"read label", func(s *Setup) { *s = withRead(*s); s.ReadLabel = "wlan0:2" }, "label"},
		{"read on read-only", func(s *Setup) { *s = withRead(*s); s.ReadURL = "http://198.51.100.11:8008/read-only?lag=16MB" }, "not a replica's endpoint: the primary may pass it"},
		{"read on health", func(s *Setup) { *s = withRead(*s); s.ReadURL = "http://198.51.100.11:8008/health" }, "not a replica's endpoint"},
		{"read on primary", func(s *Setup) { *s = withRead(*s); s.ReadURL = "http://198.51.100.11:8008/primary" }, "not a replica's endpoint"},
		{"read url", func(s *Setup) { *s = withRead(*s); s.ReadURL = "http://u:S3CRET@198.51.100.11:8008/replica" }, "the read VIP's URL: invalid URL"},
		{"instance blank", func(s *Setup) { s.Instance = "pg a" }, `instance "pg a": want up to 32 letters`},
		{"instance dot", func(s *Setup) { s.Instance = "a.lock" }, "want up to 32 letters"},
		{"instance dash", func(s *Setup) { s.Instance = "-a" }, "starting with a letter or digit"},
		{"instance long", func(s *Setup) { s.Instance = strings.Repeat("a", 33) }, "up to 32"},
		{"instance eligible", func(s *Setup) { s.Instance = "eligible" }, "the track file of patroni-vip-check.service"},
		{"instance replica", func(s *Setup) { s.Instance = "replica" }, "the read VIP watchers'"},
		{"instance x-replica", func(s *Setup) { s.Instance = "pg-replica" }, "the read VIP watchers'"},
		{"template track file", func(s *Setup) { s.Mode, s.Instance, s.TrackFile = Watch, "a", "/run/x/eligible" },
			"patroni-vip-check@a.service keeps /run/keepalived-patroni-vip-check/a, not /run/x/eligible"},
		{"port", func(s *Setup) { s.URL = "http://198.51.100.11:80080/primary" }, "port 80080 is not a number from 1 to 65535"},
		{"quote", func(s *Setup) { s.URL = `http://x/"` }, "cannot pass"},
	}
	for _, tc := range cases {
		s := lab(Oneshot, v)
		tc.change(&s)
		if _, err := Render(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%s: the password shows: %v", tc.name, err)
		}
	}
}

// Addresses a host may hold: reserved names only a subnet's own network
// and broadcast addresses (IPv6: its subnet-router anycast address), and
// none in a /31, /32, /127 or /128.
func TestReserved(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.0/24":    "network address",
		"198.51.100.255/24":  "broadcast address",
		"198.51.100.1/24":    "",
		"198.51.100.254/24":  "",
		"198.51.100.64/26":   "network address",
		"198.51.100.127/26":  "broadcast address",
		"198.51.100.128/26":  "network address",
		"198.51.100.126/26":  "",
		"10.255.255.255/8":   "broadcast address",
		"10.255.0.255/8":     "",
		"198.51.100.4/30":    "network address",
		"198.51.100.7/30":    "broadcast address",
		"198.51.100.0/31":    "",
		"198.51.100.1/31":    "",
		"198.51.100.0/32":    "",
		"2001:db8::/64":      "network address",
		"2001:db8::1/64":     "",
		"2001:db8::ffff/112": "",
		"2001:db8::/127":     "",
		"2001:db8::/128":     "",
	} {
		if got := reserved(netip.MustParsePrefix(in)); got != want {
			t.Errorf("reserved(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderWording(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for want, in := range map[string][]netip.Addr{
		"10.0.0.1, .2 and 10.0.1.3":   addrs("10.0.0.1", "10.0.0.2", "10.0.1.3"),
		"10.0.0.1 and .2":             addrs("10.0.0.1", "10.0.0.2"),
		"2001:db8::1 and 2001:db8::2": addrs("2001:db8::1", "2001:db8::2"),
	} {
		if got := addrList(in); got != want {
			t.Errorf("addrList = %q, want %q", got, want)
		}
	}
	s := lab(Oneshot, keepalived.Version{Major: 2, Minor: 2, Patch: 7})
	s.Node, s.Peers = s.Peers[1], []netip.Addr{s.Peers[0], s.Node}
	s.URL = "http://198.51.100.13:8008/replica"
	data, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"follows a Patroni replica", "Written for node 3 of a three-node cluster"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("no %q in the header", want)
		}
	}
}
