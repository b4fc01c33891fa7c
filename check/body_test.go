package check

import (
	"net/http"
	"testing"
)

func TestEndpointFor(t *testing.T) {
	cases := []struct {
		path  string
		name  string
		roles []string
		json  bool
	}{
		{"", "primary", primaryRoles, true},
		{"/", "primary", primaryRoles, true},
		{"/primary", "primary", primaryRoles, true},
		{"/master", "primary", primaryRoles, true},
		{"/read-write", "primary", primaryRoles, true},
		{"/leader", "leader", leaderRoles, true},
		{"/standby-leader", "standby leader", standbyLeaderRoles, true},
		{"/standby_leader", "standby leader", standbyLeaderRoles, true},
		{"/replica", "replica", replicaRoles, true},
		{"/read-only", "read-only", nil, true},
		{"/read-only-sync", "read-only", nil, true},
		{"/health", "healthy", nil, true},
		{"/sync", "sync replica", replicaRoles, true},
		{"/synchronous", "sync replica", replicaRoles, true},
		{"/async", "async replica", replicaRoles, true},
		{"/asynchronous", "async replica", replicaRoles, true},
		{"/liveness", "alive", nil, false},
		{"/readiness", "ready", nil, false},
		{"/patroni", "eligible", nil, true},
	}
	for _, tc := range cases {
		ep := EndpointFor(tc.path)
		if ep.Name != tc.name || ep.JSON != tc.json || len(ep.Roles) != len(tc.roles) {
			t.Errorf("EndpointFor(%q) = %+v, want %s %v json=%t", tc.path, ep, tc.name, tc.roles, tc.json)
			continue
		}
		for i := range ep.Roles {
			if ep.Roles[i] != tc.roles[i] {
				t.Errorf("EndpointFor(%q) roles %v, want %v", tc.path, ep.Roles, tc.roles)
			}
		}
	}
}

func TestJudge(t *testing.T) {
	primary, replica, leader, health := EndpointFor("/primary"), EndpointFor("/replica"), EndpointFor("/leader"), EndpointFor("/health")
	live := EndpointFor("/liveness")
	cases := []struct {
		name       string
		ep         Endpoint
		status     int
		body       string
		statusOnly bool
		want       Class
	}{
		{"primary master", primary, 200, `{"state":"running","role":"master"}`, false, Eligible},
		{"primary primary", primary, 200, `{"state":"running","role":"primary"}`, false, Eligible},
		{"primary standby_leader", primary, 200, `{"state":"running","role":"standby_leader"}`, false, NotEligible},
		{"leader standby_leader", leader, 200, `{"state":"running","role":"standby_leader"}`, false, Eligible},
		{"leader replica", leader, 200, `{"state":"running","role":"replica"}`, false, NotEligible},
		{"replica replica", replica, 200, `{"state":"running","role":"replica"}`, false, Eligible},
		{"replica master", replica, 200, `{"state":"running","role":"master"}`, false, NotEligible},
		{"starting", primary, 200, `{"state":"starting","role":"master"}`, false, NotEligible},
		{"no role on /primary", primary, 200, `{"state":"running"}`, false, NotEligible},
		{"no role on /health", health, 200, `{"state":"running"}`, false, Eligible},
		{"health stopped", health, 200, `{"state":"stopped","role":"master"}`, false, NotEligible},
		{"no state", primary, 200, `{"role":"master"}`, false, BadResponse},
		{"state not a string", primary, 200, `{"state":1,"role":"master"}`, false, BadResponse},
		{"array", primary, 200, `[]`, false, BadResponse},
		{"null", primary, 200, `null`, false, BadResponse},
		{"trailing garbage", primary, 200, `{"state":"running","role":"master"} x`, false, BadResponse},
		{"empty", primary, 200, ``, false, BadResponse},
		{"keys match exactly: ROLE is not role", primary, 200, `{"state":"running","ROLE":"master"}`, false, NotEligible},
		{"keys match exactly: STATE is not state", primary, 200, `{"STATE":"running","role":"master"}`, false, BadResponse},
		{"two roles are none", primary, 200, `{"state":"running","role":"replica","role":"master"}`, false, BadResponse},
		{"two states are none", primary, 200, `{"state":"stopped","role":"master","state":"running"}`, false, BadResponse},
		{"role not a string", primary, 200, `{"state":"running","role":["master"]}`, false, BadResponse},
		{"an explaining field of another type is skipped", primary, 200, `{"state":"running","role":"master","pause":"no","patroni":{"version":4}}`, false, Eligible},
		{"odd timeline is ignored", primary, 200, `{"state":"running","role":"master","timeline":1.5}`, false, Eligible},
		{"status only", primary, 200, `garbage`, true, Eligible},
		{"liveness has no body", live, 200, ``, false, Eligible},
		{"503 with master", primary, 503, `{"state":"running","role":"master"}`, false, NotEligible},
		{"503 status only", primary, 503, ``, true, NotEligible},
		{"403", primary, http.StatusForbidden, ``, false, Auth},
		{"301", primary, 301, ``, false, BadResponse},
		{"204", primary, 204, ``, false, BadResponse},
		{"502", primary, 502, ``, false, BadResponse},
	}
	for _, tc := range cases {
		class, _, err := Judge(tc.ep, tc.status, []byte(tc.body), tc.statusOnly)
		if class != tc.want {
			t.Errorf("%s: class %s (%v), want %s", tc.name, class, err, tc.want)
		}
		if (class == Eligible) != (err == nil) {
			t.Errorf("%s: class %s with error %v", tc.name, class, err)
		}
	}
}

func TestParseBodyFields(t *testing.T) {
	p, err := ParseBody([]byte(patroniBody("running", "master", 12)))
	if err != nil {
		t.Fatal(err)
	}
	want := Patroni{State: "running", Role: "master", Timeline: 12, Version: "3.0.2", Scope: "demo"}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

// FuzzJudge feeds any status and body to the parser and the judge: no
// panic, and a verdict that is consistent with what was fed.
func FuzzJudge(f *testing.F) {
	f.Add(200, []byte(patroniBody("running", "master", 4)), "/primary", false)
	f.Add(503, []byte(patroniBody("running", "replica", 4)), "/primary", false)
	f.Add(200, []byte(`{"state":"running","role":"replica","timeline":"x"}`), "/replica?lag=1MB", false)
	f.Add(200, []byte(`{"state":"running","patroni":{"version":1}}`), "/health", false)
	f.Add(302, []byte(``), "/leader", true)
	f.Fuzz(func(t *testing.T, status int, body []byte, path string, statusOnly bool) {
		ep := EndpointFor(path)
		class, p, err := Judge(ep, status, body, statusOnly)
		if (class == Eligible) != (err == nil) {
			t.Fatalf("class %s with error %v", class, err)
		}
		if class == Eligible {
			if status != 200 {
				t.Fatalf("eligible with status %d", status)
			}
			if !statusOnly && ep.JSON && (p.State != "running" || !ep.fits(p.Role)) {
				t.Fatalf("eligible with %+v on %q", p, path)
			}
		}
		if _, perr := ParseBody(body); perr == nil && status == 200 && !statusOnly && ep.JSON && class == BadResponse {
			t.Fatalf("parsable body judged bad: %q", body)
		}
	})
}
