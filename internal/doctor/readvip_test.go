package doctor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

// TestReadVIPGate: a read VIP gated by an endpoint Patroni answers 200 on
// the primary goes to the primary.
func TestReadVIPGate(t *testing.T) {
	for _, tc := range []struct{ endpoint, says string }{
		{"/read-only", "which Patroni answers 200 on the primary too: while no replica qualifies the read VIP goes to the primary, and stays there once one does"},
		{"/health", "which Patroni answers 200 on the primary too"},
		{"/primary", "which Patroni answers 200 on the primary: the read VIP follows the primary, never a replica"},
		{"/leader", "which Patroni answers 200 on the leader: the read VIP follows the primary"},
	} {
		n := newNode(t, "keepalived-read-vip.conf", v227)
		n.addWatcher(t, "replica", "--pgdata "+pgdata+" http://198.51.100.11:8008"+tc.endpoint)
		want(t, n.run(), Warning, fmt.Sprintf("keepalived.conf:%d: vrrp_instance patroni_read_vip holds a read VIP, but patroni-vip-check@replica.service asks http://198.51.100.11:8008%s, %s", n.line(t, "        patroni_replica\n"), tc.endpoint, tc.says),
			"gate it on /replica?lag=16MB", "target_session_attrs=prefer-standby")
	}
	// The one-shot set-up: the script's URL.
	// (keepalived-conf refuses to write one, so it is edited in.)
	n := generatedNode(t, withRead(nodeOne(vipconf.Oneshot, v233, "ipv4")))
	n.edit(t, `8008/replica?lag=16MB"`, `8008/read-only"`)
	fs := n.run()
	want(t, fs, Warning, "vrrp_instance patroni_read_vip holds a read VIP, but vrrp_script patroni_replica asks http://198.51.100.11:8008/read-only, which Patroni answers 200 on the primary too")
	for _, f := range fs {
		if strings.Contains(f.Msg, "vrrp_instance patroni_vip holds a read VIP") {
			t.Errorf("the primary's VIP is no read VIP: %s", f)
		}
	}
	// A VIP not meant for reads may ask what it likes.
	n = newNode(t, "keepalived-watch.conf", v227)
	n.sys.Files["/etc/default/patroni-vip-check"].Data = []byte(`PATRONI_VIP_CHECK_ARGS="--pgdata ` + pgdata + ` http://198.51.100.11:8008/read-only"` + "\n")
	for _, f := range n.run() {
		if strings.Contains(f.Msg, "read VIP") {
			t.Errorf("the primary's VIP is no read VIP: %s", f)
		}
	}
}
