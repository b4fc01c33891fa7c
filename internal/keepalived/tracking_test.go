package keepalived

import (
	"fmt"
	"strings"
	"testing"
)

// summary lists what an instance tracks as "kind name weight W [reverse]
// [group G]", then the lines ignored as "ignored: WHY".
func summary(m *Model, in *Instance) []string {
	ts, ig := m.Tracking(in)
	var out []string
	for _, t := range ts {
		s := fmt.Sprintf("%s %s weight %d", t.Kind(), t.Name(), t.Weight)
		if t.Reverse {
			s += " reverse"
		}
		if t.Group != nil {
			s += " group " + t.Group.Name
		}
		out = append(out, s)
	}
	for _, i := range ig {
		out = append(out, "ignored: "+i.Why)
	}
	return out
}

const scripts = `vrrp_script plain {
    script /bin/true
}
vrrp_script rev {
    script /bin/true
    weight 0 reverse
}
vrrp_script weighted {
    script /bin/true
    weight -20
}
track_file tf {
    file /run/x/eligible
    weight 0 reverse
}
track_file tf1 {
    file /run/x/other
}
`

// TestTracking: weights, reverse and their overrides, as keepalived reads
// them (SEMANTICS of the corpus, and keepalived's vrrp_track.c).
func TestTracking(t *testing.T) {
	cases := []struct {
		name, conf string
		want       []string
	}{
		{"inherited reverse", scripts + "vrrp_instance vi {\ntrack_script {\nrev\n}\n}\n",
			[]string{"vrrp_script rev weight 0 reverse"}},
		{"weight override keeps the script's reverse", scripts + "vrrp_instance vi {\ntrack_script {\nrev weight 0\n}\n}\n",
			[]string{"vrrp_script rev weight 0 reverse"}},
		{"noreverse", scripts + "vrrp_instance vi {\ntrack_script {\nrev weight 0 noreverse\n}\n}\n",
			[]string{"vrrp_script rev weight 0"}},
		{"reverse on the reference", scripts + "vrrp_instance vi {\ntrack_script {\nplain weight 0 reverse\n}\n}\n",
			[]string{"vrrp_script plain weight 0 reverse"}},
		{"the man page's no_reverse is unknown: inherited", scripts + "vrrp_instance vi {\ntrack_script {\nrev weight 0 no_reverse\n}\n}\n",
			[]string{"vrrp_script rev weight 0 reverse"}},
		{"reverse alone is an unknown option", scripts + "vrrp_instance vi {\ntrack_script {\nplain reverse\n}\n}\n",
			[]string{"ignored: (vi) unknown track script option reverse - ignoring"}},
		{"two names on a line", scripts + "vrrp_instance vi {\ntrack_script {\nplain rev\n}\n}\n",
			[]string{"ignored: (vi) unknown track script option rev - ignoring"}},
		{"weight without a value", scripts + "vrrp_instance vi {\ntrack_script {\nplain weight\n}\n}\n",
			[]string{"ignored: (vi) weight without value specified for track script plain - ignoring"}},
		{"an invalid weight is the script's", scripts + "vrrp_instance vi {\ntrack_script {\nweighted weight 300\n}\n}\n",
			[]string{"vrrp_script weighted weight -20"}},
		{"254 is 253", scripts + "vrrp_instance vi {\ntrack_script {\nplain weight -254\n}\n}\n",
			[]string{"vrrp_script plain weight -253"}},
		{"duplicate", scripts + "vrrp_instance vi {\ntrack_script {\nplain\nplain weight 5\n}\n}\n",
			[]string{"vrrp_script plain weight 0", "ignored: (vi) duplicate track_script plain - ignoring"}},
		{"not defined", scripts + "vrrp_instance vi {\ntrack_script {\nnone\n}\n}\n",
			[]string{"ignored: (vi) track script none not found, ignoring..."}},
		{"defined after the instance", "vrrp_instance vi {\ntrack_script {\nlate\n}\n}\nvrrp_script late {\nscript /bin/true\n}\n",
			[]string{"ignored: (vi) track script late not found, ignoring...: vrrp_script late comes after this line (/k.conf:6), and keepalived looks it up where it reads the line"}},
		{"no script line", "vrrp_script empty {\ninterval 1\n}\nvrrp_instance vi {\ntrack_script {\nempty\n}\n}\n",
			[]string{`ignored: (vi) track script empty not found, ignoring...: vrrp_script empty has no script line, and keepalived removed it ("No script set")`}},
		{"a script's weight is kept out of range", "vrrp_script s {\nscript /bin/true\nweight 300\n}\nvrrp_instance vi {\ntrack_script {\ns\n}\n}\n",
			[]string{"vrrp_script s weight 300"}},
		{"a script's garbage weight is 0", "vrrp_script s {\nscript /bin/true\nweight abc\n}\nvrrp_instance vi {\ntrack_script {\ns\n}\n}\n",
			[]string{"vrrp_script s weight 0"}},
		{"a script's reverse sticks", "vrrp_script s {\nscript /bin/true\nweight 0 reverse\nweight 0\n}\nvrrp_instance vi {\ntrack_script {\ns\n}\n}\n",
			[]string{"vrrp_script s weight 0 reverse"}},
		{"track_file", scripts + "vrrp_instance vi {\ntrack_file {\ntf\ntf1\ntf weight 0\n}\n}\n",
			[]string{"track_file tf weight 0 reverse", "track_file tf1 weight 1", "ignored: (vi) duplicate track_file tf - ignoring"}},
		{"track_file with an unknown option", scripts + "vrrp_instance vi {\ntrack_file {\ntf weight 0 reversed\n}\n}\n",
			[]string{"ignored: (vi) unknown track file tf weight option reversed - ignoring"}},
		{"track_file weight: the first other than 1 wins", "track_file t {\nfile /x/y\nweight 1\nweight 0 reverse\nweight 5\n}\nvrrp_instance vi {\ntrack_file {\nt\n}\n}\n",
			[]string{"track_file t weight 0 reverse"}},
		{"sync group", scripts + "vrrp_instance vi {\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\ntrack_script {\nplain\n}\ntrack_file {\ntf\n}\n}\n",
			[]string{"vrrp_script plain weight 0 group g", "track_file tf weight 0 reverse group g"}},
		{"sync group member: weighted checks dropped, weight 1 files cleared", scripts + "vrrp_instance vi {\ntrack_script {\nweighted\n}\ntrack_file {\ntf1\n}\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\n}\n",
			[]string{"track_file tf1 weight 0", "ignored: (vi) ignoring tracked script weighted with weights due to SYNC group"}},
		{"sync_group_tracking_weight keeps them", scripts + "vrrp_instance vi {\ntrack_script {\nweighted\n}\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\nsync_group_tracking_weight\n}\n",
			[]string{"vrrp_script weighted weight -20"}},
		{"address owner by state MASTER", scripts + "vrrp_instance vi {\nstate MASTER\ntrack_script {\nweighted\nplain\n}\n}\n",
			[]string{"vrrp_script plain weight 0", "ignored: (vi) ignoring tracked script weighted with weights due to address_owner"}},
		{"group and instance track the same gate: the instance's 0 stays", scripts + "vrrp_instance vi {\ntrack_script {\nplain\n}\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\ntrack_script {\nplain weight 0 reverse\n}\n}\n",
			[]string{"vrrp_script plain weight 0", "ignored: (vi) track_script plain is configured on VRRP instance and sync group. Remove vrrp instance config"}},
		{"a group's weight is cleared with an owner among its members", scripts + "vrrp_instance vi {\npriority 255\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\ntrack_script {\nweighted\n}\n}\n",
			[]string{"vrrp_script weighted weight 0 group g"}},
		{"the first group holds the instance", scripts + "vrrp_instance vi {\n}\nvrrp_sync_group g1 {\ngroup {\nvi\n}\n}\nvrrp_sync_group g2 {\ngroup {\nvi\n}\ntrack_script {\nplain\n}\n}\n",
			nil},
		{"a group's script must come before the group", "vrrp_instance vi {\n}\nvrrp_sync_group g {\ngroup {\nvi\n}\ntrack_script {\nlate\n}\n}\nvrrp_script late {\nscript /bin/true\n}\n",
			[]string{"ignored: (g) track script late not found, ignoring...: vrrp_script late comes after this line (/k.conf:11), and keepalived looks it up where it reads the line"}},
	}
	for _, tc := range cases {
		m := load(t, mapFS(map[string]string{"/k.conf": tc.conf}), "/k.conf").Model()
		got := summary(m, m.Instances[0])
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestGateAndInverted(t *testing.T) {
	m := load(t, mapFS(map[string]string{"/k.conf": scripts + "vrrp_instance vi {\ntrack_script {\nplain\nrev\n}\ntrack_file {\ntf\ntf weight 0 noreverse\n}\n}\n"}), "/k.conf").Model()
	ts, _ := m.Tracking(m.Instances[0])
	var got []string
	for _, t := range ts {
		got = append(got, fmt.Sprintf("%s %t %t", t.Name(), t.Gate(), t.Inverted()))
	}
	if want := "plain true false|rev false true|tf true false"; strings.Join(got, "|") != want {
		t.Errorf("gate, inverted: %q, want %q", got, want)
	}
}

func TestVersionAcceptRouterID(t *testing.T) {
	cases := []struct {
		global, inst string
		version      int
		accept       bool
	}{
		{"", "", 2, true},
		{"vrrp_version 3", "", 3, true},
		{"vrrp_version 3\nvrrp_strict", "accept", 3, true},
		{"vrrp_strict", "accept", 2, false},
		{"vrrp_version 3\nvrrp_strict", "", 3, false},
		{"", "virtual_ipaddress {\n2001:db8::100/64\n}", 3, true},
		{"vrrp_version 2", "virtual_ipaddress {\n2001:db8::100/64\n}", 3, true},
		{"", "native_ipv6\nversion 2", 3, true},
		{"", "version 3\nversion 2", 3, true},
		{"vrrp_version 3", "version 2", 2, true},
		{"vrrp_version 4", "", 2, true},
		{"vrrp_strict", "strict_mode maybe\naccept", 2, false},
		{"vrrp_strict", "strict_mode off\nno_accept", 2, false},
		{"vrrp_strict", "state MASTER", 2, true},
	}
	for _, tc := range cases {
		text := "global_defs {\n" + tc.global + "\n}\nvrrp_instance vi {\n" + tc.inst + "\n}\n"
		m := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf").Model()
		in := m.Instances[0]
		v, _ := in.VRRPVersion(m.Global)
		acc, _ := in.AcceptMode(m.Global)
		if v != tc.version || acc != tc.accept {
			t.Errorf("%q / %q: version %d accept %t, want %d %t", tc.global, tc.inst, v, acc, tc.version, tc.accept)
		}
	}
	for lines, want := range map[string]int{
		"":                        0,
		"virtual_router_id 51":    51,
		"virtual_router_id 0":     0,
		"virtual_router_id 256":   0,
		"virtual_router_id 51abc": 0,
		"virtual_router_id -1":    0,
		"virtual_router_id 51\nvirtual_router_id 52": 52,
		"virtual_router_id 51\nvirtual_router_id x":  51,
	} {
		m := load(t, mapFS(map[string]string{"/k.conf": "vrrp_instance vi {\n" + lines + "\n}\n"}), "/k.conf").Model()
		id, ok, _ := m.Instances[0].RouterID()
		if id != want || ok != (want != 0) {
			t.Errorf("%q: router id %d %t, want %d", lines, id, ok, want)
		}
	}
}

func TestAuthentication(t *testing.T) {
	auth := "authentication {\nauth_type PASS\nauth_pass %s\n}\n"
	cases := []struct {
		global, inst string
		want         Auth
	}{
		{"", fmt.Sprintf(auth, "secret"), Auth{Type: "PASS", Pass: "secret"}},
		{"", fmt.Sprintf(auth, "123456789"), Auth{Type: "PASS", Pass: "12345678", Truncated: true}},
		{"vrrp_version 3", fmt.Sprintf(auth, "secret"), Auth{Pass: "secret", Dropped: "VRRP version 3 does not support authentication"}},
		{"vrrp_strict", fmt.Sprintf(auth, "secret"), Auth{Pass: "secret", Dropped: "Strict mode does not support authentication"}},
		{"", "authentication {\nauth_type pass\nauth_pass x\n}\n", Auth{Pass: "x"}},
		{"", "", Auth{}},
	}
	for _, tc := range cases {
		text := "global_defs {\n" + tc.global + "\n}\nvrrp_instance vi {\n" + tc.inst + "}\n"
		m := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf").Model()
		if got := m.Instances[0].Authentication(m.Global); got != tc.want {
			t.Errorf("%q / %q: %+v, want %+v", tc.global, tc.inst, got, tc.want)
		}
	}
}

func TestSkippedBlocks(t *testing.T) {
	c := load(t, mapFS(map[string]string{"/k.conf": "vrrp_instance a {\n}\nvrrp_instance a {\n}\nvrrp_instance {\n}\nvrrp_sync_group g x {\n}\n"}), "/k.conf")
	m := c.Model()
	var got []string
	for _, p := range m.Skipped {
		got = append(got, p.String())
	}
	want := []string{"/k.conf:3: vrrp instance a already defined - its block is skipped", "/k.conf:5: vrrp_instance must have a name - its block is skipped",
		"/k.conf:7: vrrp_sync_group must have a name - its block is skipped"}
	if len(m.Instances) != 1 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%d instances, skipped %q", len(m.Instances), got)
	}
}
