package cluster

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A movement measured again from the events: the VIP's additions and removals, and
// PostgreSQL's "ready" lines.
func TestExact(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 17, 0, 47, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	dir := t.TempDir()
	c := &Cluster{logDir: dir, addrs: &addrWatch{}}
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, &Node{Name: nodeName(i), Index: i, c: c})
	}
	// n2's PostgreSQL: ready as a replica before the trigger, ready as a primary 800 ms
	// after it, and ready again long after the record (not this movement's).
	log := strings.Join([]string{
		"2026-12-04 17:00:40.100 UTC [18079] LOG:  database system is ready to accept read-only connections",
		"2026-12-04 17:00:47.802 UTC [18098] LOG:  selected new timeline ID: 2",
		"2026-12-04 17:00:47.800 UTC [18079] LOG:  database system is ready to accept connections",
		"2026-12-04 17:01:30.000 UTC [18079] LOG:  database system is ready to accept connections",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "n2-patroni.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	c.addrs.events = []AddrEvent{
		{At: at(-5000), Node: "n1", Added: true},
		{At: at(300), Node: "n1", Added: false},
		{At: at(850), Node: "n2", Added: true},
		{At: at(860), Node: "n3", Added: true}, // 20 ms on two nodes
		{At: at(880), Node: "n3", Added: false},
	}
	m := Movement{Trigger: t0, Old: "n1", New: "n2", Timeline: Timeline{{At: at(-100)}, {At: at(2000)}}}
	e, err := c.Exact(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][2]time.Duration{
		"ready":  {e.Ready, 800 * time.Millisecond},
		"gone":   {e.Gone, 300 * time.Millisecond},
		"VIP on": {e.VIPOn, 850 * time.Millisecond},
		"follow": {e.Follow(), 50 * time.Millisecond},
		"no VIP": {e.NoVIP, 550 * time.Millisecond},
		"double": {e.Double, 20 * time.Millisecond},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if e.Lost {
		t.Error("lost, with nothing lost")
	}
	// Notifications lost in the record make it unsure.
	c.addrs.events = append(c.addrs.events, AddrEvent{At: at(900), Node: "n3?"})
	if e, _ := c.Exact(m); !e.Lost {
		t.Error("not lost, with a loss in the record")
	}
	// The VIP removed from the new primary after it was added: it did not stay.
	c.addrs.events = append(c.addrs.events, AddrEvent{At: at(1500), Node: "n2", Added: false})
	if e, _ := c.Exact(m); e.VIPOn != -1 || e.Follow() != -1 {
		t.Errorf("VIP on %v, follow %v, after it left the new primary", e.VIPOn, e.Follow())
	}
}

func nodeName(i int) string { return "n" + string(rune('0'+i)) }

func TestPGLogTime(t *testing.T) {
	got, err := pgLogTime("2026-12-04 17:00:47.832 UTC [18079] LOG:  database system is ready to accept connections")
	if want := time.Date(2026, 12, 4, 17, 0, 47, 832e6, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("got %v (%v), want %v", got, err, want)
	}
	for _, bad := range []string{"2026-12-04 17:00:47.832 CET [1] LOG:  x", "LOG: x", "2026-12-04 17:00:47 UTC [1] LOG:  x"} {
		if _, err := pgLogTime(bad); err == nil {
			t.Errorf("pgLogTime(%q) accepted", bad)
		}
	}
}

// vipEvents reads the kernel's notifications: the VIP's, added or removed, and no other
// address's.
func TestVIPEvents(t *testing.T) {
	msg := func(typ uint16, ip string) []byte {
		attr := make([]byte, 8)
		binary.NativeEndian.PutUint16(attr[0:2], 8)
		binary.NativeEndian.PutUint16(attr[2:4], syscall.IFA_LOCAL)
		copy(attr[4:], net.ParseIP(ip).To4())
		body := append(make([]byte, syscall.SizeofIfAddrmsg), attr...)
		b := make([]byte, syscall.NLMSG_HDRLEN, syscall.NLMSG_HDRLEN+len(body))
		binary.NativeEndian.PutUint32(b[0:4], uint32(syscall.NLMSG_HDRLEN+len(body)))
		binary.NativeEndian.PutUint16(b[4:6], typ)
		return append(b, body...)
	}
	var buf []byte
	buf = append(buf, msg(syscall.RTM_NEWADDR, VIP)...)
	buf = append(buf, msg(syscall.RTM_NEWADDR, NodeAddr(1))...)
	buf = append(buf, msg(syscall.RTM_DELADDR, VIP)...)
	got := vipEvents(buf)
	var added []bool
	for _, e := range got {
		added = append(added, e.Added)
	}
	if !slices.Equal(added, []bool{true, false}) {
		t.Errorf("got %v, want the VIP added then removed", got)
	}
}
