package check

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// endpoints names each fixture file (testdata/patroni/README.md) by the
// URL path it answers.
var endpoints = map[string]string{
	"primary": "/primary", "master": "/master", "read-write": "/read-write", "root": "/",
	"leader": "/leader", "standby-leader": "/standby-leader", "standby_leader": "/standby_leader",
	"replica": "/replica", "replica_lag=1MB": "/replica?lag=1MB", "read-only": "/read-only",
	"sync": "/sync", "synchronous": "/synchronous", "async": "/async", "asynchronous": "/asynchronous",
	"health": "/health", "liveness": "/liveness", "readiness": "/readiness",
}

// eligibleOn says which endpoints make each member eligible: the leader of
// a plain cluster, and an asynchronous replica streaming from it. Pausing
// the cluster changes none of it.
var eligibleOn = map[string]map[string]bool{
	"primary": {"primary": true, "master": true, "read-write": true, "root": true, "leader": true,
		"read-only": true, "health": true, "liveness": true, "readiness": true},
	"replica": {"replica": true, "replica_lag=1MB": true, "async": true, "asynchronous": true,
		"read-only": true, "health": true, "liveness": true, "readiness": true},
}

// capturedVersions are the Patroni versions whose answers the end-to-end suite
// captured, one per stack it runs: Debian 12's, Debian 13's and unstable's.
var capturedVersions = []string{"3.0.2", "4.0.7", "4.1.5"}

// TestRealAnswers replays every answer captured from real Patroni 3.0.2, 4.0.7
// and 4.1.5, byte for byte, from a raw listener that writes it and closes, as
// Patroni's HTTP/1.0 server does: the verdict is what the member is.
func TestRealAnswers(t *testing.T) {
	for _, v := range capturedVersions {
		// Every endpoint, on a primary and a replica, normal and paused.
		files, err := filepath.Glob(filepath.Join("testdata/patroni", v, "*/*/*.http"))
		if err != nil || len(files) != 2*2*len(endpoints) {
			t.Errorf("Patroni %s: %d fixtures (%v), want %d", v, len(files), err, 2*2*len(endpoints))
		}
	}
	files, err := filepath.Glob("testdata/patroni/*/*/*/*.http")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel("testdata/patroni", f)
		parts := strings.Split(strings.TrimSuffix(rel, ".http"), string(filepath.Separator))
		version, member, mode, name := parts[0], parts[1], parts[2], parts[3]
		path, ok := endpoints[name]
		if !ok {
			t.Errorf("%s: no endpoint is named %q", rel, name)
			continue
		}
		answer, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			addr, _ := rawPeer(t, func(n int, c net.Conn) {
				readRequest(c)
				c.Write(answer)
				c.Close()
			})
			c, err := New(defaults("http://" + addr + path))
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(context.Background())
			want := NotEligible
			if eligibleOn[member][name] {
				want = Eligible
			}
			if res.Class != want {
				t.Errorf("class %s (%v), want %s", res.Class, res.Err, want)
			}
			if res.HasBody {
				if res.Patroni.Version != version {
					t.Errorf("patroni.version %q in a %s answer", res.Patroni.Version, version)
				}
				if res.Patroni.Pause != (mode == "paused") {
					t.Errorf("pause %v in a %s answer", res.Patroni.Pause, mode)
				}
				role := "primary" // Patroni 4 and later
				if strings.HasPrefix(version, "3.") {
					role = "master"
				}
				if member == "replica" {
					role = "replica"
				}
				if res.Patroni.Role != role || res.Patroni.State != "running" {
					t.Errorf("role %q state %q, want %q running", res.Patroni.Role, res.Patroni.State, role)
				}
			} else if name != "liveness" && name != "readiness" {
				t.Errorf("no Patroni body read (%v)", res.Err)
			}
			if len(res.Attempts) != 1 {
				t.Errorf("%d attempts: an answer was retried", len(res.Attempts))
			}
		})
	}
}
