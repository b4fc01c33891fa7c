//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/cluster"
)

// fixtureDir holds the raw answers of every Patroni version the suite runs, as
// <version>/<primary|replica>/<normal|paused>/<endpoint>.http (README.md there).
const fixtureDir = "check/testdata/patroni"

// healthEndpoints: the raw answer of every Patroni health endpoint, on the primary and on
// a replica, with the cluster normal and paused (maintenance mode), asked exactly as the
// check asks. With PVC_UPDATE_FIXTURES=1 they are written to fixtureDir; otherwise each
// must have the shape of the committed one (cluster.ShapeDiff), so that a Patroni
// release that changes its answers fails here before it fails a user.
func (s *suite) healthEndpoints(t *testing.T) {
	s.requireHealthy(t)
	ctx := context.Background()
	c := s.c
	leader, err := c.Leader(ctx)
	if err != nil || leader == "" {
		t.Fatalf("no primary (%q, %v)", leader, err)
	}
	primary := c.Node(leader)
	replica := c.Node(fmt.Sprintf("n%d", primary.Index%3+1))
	st, err := primary.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	version := st.Patroni.Version
	if version == "" || !strings.HasPrefix(version, fmt.Sprint(s.stack.PatroniMajor)+".") {
		t.Fatalf("%s runs Patroni %q, want %d.x", s.stack.Name, version, s.stack.PatroniMajor)
	}
	dir := filepath.Join(s.repo, fixtureDir, version)
	update := os.Getenv("PVC_UPDATE_FIXTURES") != ""
	if update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	} else if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no fixtures for Patroni %s in %s: capture them with PVC_UPDATE_FIXTURES=1 make e2e STACK=%s", version, fixtureDir, s.stack.Name)
	}

	capture := func(state string) {
		for _, m := range []struct {
			role string
			n    *cluster.Node
		}{{"primary", primary}, {"replica", replica}} {
			sub := filepath.Join(dir, m.role, state)
			if update {
				if err := os.MkdirAll(sub, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, ep := range cluster.HealthEndpoints {
				raw, err := m.n.RawGet(ctx, ep, s.userAgent)
				if err != nil {
					t.Errorf("%s %s (%s): %v", m.role, ep, state, err)
					continue
				}
				s.checkAnswer(t, m.role, state, ep, raw)
				file := filepath.Join(sub, cluster.FixtureName(ep)+".http")
				rel, _ := filepath.Rel(s.repo, file)
				if update {
					if err := os.WriteFile(file, raw, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Errorf("%s: %v (PVC_UPDATE_FIXTURES=1 captures it)", rel, err)
					continue
				}
				if d := cluster.ShapeDiff(want, raw); len(d) > 0 {
					t.Errorf("%s: Patroni %s's answer changed shape:\n    %s\nanswer:\n%s", rel, version, strings.Join(d, "\n    "), raw)
				}
			}
			if !update {
				// Nothing committed that the suite no longer asks.
				files, _ := filepath.Glob(filepath.Join(sub, "*.http"))
				for _, f := range files {
					name := strings.TrimSuffix(filepath.Base(f), ".http")
					if !slices.ContainsFunc(cluster.HealthEndpoints, func(ep string) bool { return cluster.FixtureName(ep) == name }) {
						t.Errorf("%s: a fixture of no endpoint the suite asks", f)
					}
				}
			}
		}
	}

	capture("normal")
	if _, err := c.Patronictl(ctx, "pause", "--wait", cluster.Scope); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		if _, err := c.Patronictl(ctx, "resume", "--wait", cluster.Scope); err != nil {
			s.broken = t.Name()
			t.Errorf("leaving maintenance mode: %v", err)
		}
	}
	defer resume()
	capture("paused")
	resume()
	if _, err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
		s.broken = t.Name()
		t.Fatalf("after resume: %v", err)
	}
	if update {
		t.Logf("wrote Patroni %s's answers to %s", version, dir)
	}
}

// checkAnswer asserts what an answer must say whatever the fixtures hold: the status
// Patroni's api.py gives each endpoint on a healthy, asynchronous, non-standby cluster,
// the stack's role names, and the pause flag.
func (s *suite) checkAnswer(t *testing.T, role, state, ep string, raw []byte) {
	t.Helper()
	a, err := cluster.ParseAnswer(raw)
	if err != nil {
		t.Errorf("%s %s (%s): %v: %q", role, ep, state, err, raw)
		return
	}
	path, _, _ := strings.Cut(ep, "?")
	want := 503
	switch path {
	case "/", "/primary", "/master", "/read-write", "/leader":
		if role == "primary" {
			want = 200
		}
	case "/replica", "/async", "/asynchronous":
		if role == "replica" {
			want = 200
		}
	case "/read-only", "/health", "/liveness", "/readiness":
		want = 200
	case "/standby-leader", "/standby_leader", "/sync", "/synchronous":
		// 503: no standby cluster, no synchronous replication.
	}
	if a.Status() != want {
		t.Errorf("%s %s (%s): %s, want %d", role, ep, state, a.StatusLine, want)
	}
	if path == "/liveness" || path == "/readiness" {
		// A bare status line, in Patroni 3.0 and 4.0 alike: the check can read only that.
		if len(a.Headers) != 0 || len(a.Body) != 0 {
			t.Errorf("%s %s (%s): want a bare status line, got %q", role, ep, state, raw)
		}
		return
	}
	j := a.JSON()
	if j == nil {
		t.Errorf("%s %s (%s): no JSON body: %q", role, ep, state, a.Body)
		return
	}
	wantRole := "replica"
	if role == "primary" {
		wantRole = s.stack.PrimaryRole
	}
	if j["role"] != wantRole || j["state"] != "running" {
		t.Errorf("%s %s (%s): role %v state %v, want %s running", role, ep, state, j["role"], j["state"], wantRole)
	}
	if paused, _ := j["pause"].(bool); paused != (state == "paused") {
		t.Errorf("%s %s (%s): pause %v", role, ep, state, j["pause"])
	}
}
