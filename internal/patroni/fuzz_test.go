package patroni

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse: any bytes as a Patroni configuration file. Seeds:
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("/etc/patroni/x.yml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if hosts, _, err := c.PostgreSQL.ListenHosts(); err == nil {
			Covers(hosts, netip.MustParseAddr("198.51.100.100"))
		}
		SplitList(c.PostgreSQL.ListenAddresses)
		SplitHostPort(c.RestAPI.ConnectAddress)
	})
}

// FuzzParseCluster: any bytes as a /cluster answer. Seeds:
// testdata/fuzz/FuzzParseCluster.
func FuzzParseCluster(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := ParseCluster(body)
		if err == nil && len(ms) == 0 {
			t.Fatal("no members and no error")
		}
	})
}
