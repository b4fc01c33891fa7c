package cluster

import (
	"strings"
	"testing"
)

func TestFixtureName(t *testing.T) {
	for ep, want := range map[string]string{
		"/primary": "primary", "/standby-leader": "standby-leader", "/standby_leader": "standby_leader",
		"/replica?lag=1MB": "replica_lag=1MB", "/": "root", "/replica?lag=1MB&tag_x=y": "replica_lag=1MB_tag_x=y",
	} {
		if got := FixtureName(ep); got != want {
			t.Errorf("%s: %q, want %q", ep, got, want)
		}
	}
	seen := map[string]string{}
	for _, ep := range HealthEndpoints {
		if other, ok := seen[FixtureName(ep)]; ok {
			t.Errorf("%s and %s share a fixture name", ep, other)
		}
		seen[FixtureName(ep)] = ep
	}
}

// Patroni 4.0.7 answers like this (HTTP/1.0, no Content-Length); 3.0.2 alike but "master".
const answer4 = "HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.13.5\r\nDate: Tue, 01 Dec 2026 17:00:00 GMT\r\nContent-Type: application/json\r\n\r\n" +
	`{"state": "running", "postmaster_start_time": "2026-12-01 17:00:00.1+00:00", "role": "primary", "server_version": 170012, "xlog": {"location": 50331808}, "timeline": 1, "replication": [{"usename": "replicator", "application_name": "n2", "state": "streaming"}], "dcs_last_seen": 1764608400, "patroni": {"version": "4.0.7", "scope": "e2e", "name": "n1"}}`

func TestShapeDiff(t *testing.T) {
	same := strings.NewReplacer("17:00:00", "18:11:11", "50331808", "50331999", "1764608400", "1764608999").Replace(answer4)
	if d := ShapeDiff([]byte(answer4), []byte(same)); len(d) != 0 {
		t.Errorf("volatile values only: %v", d)
	}
	for name, c := range map[string]struct{ got, want string }{
		"status":      {strings.Replace(answer4, "200 OK", "503 Service Unavailable", 1), "status line"},
		"protocol":    {strings.Replace(answer4, "HTTP/1.0", "HTTP/1.1", 1), "status line"},
		"header":      {strings.Replace(answer4, "Content-Type: application/json\r\n", "Content-Type: application/json\r\nContent-Length: 9\r\n", 1), "headers"},
		"role":        {strings.Replace(answer4, `"role": "primary"`, `"role": "master"`, 1), `role "master", fixture "primary"`},
		"nested key":  {strings.Replace(answer4, `"location"`, `"write_location"`, 1), "no key xlog.location"},
		"array key":   {strings.Replace(answer4, `"state": "streaming"`, `"state": "streaming", "sync_state": "async"`, 1), "new key replication[].sync_state"},
		"pause":       {strings.Replace(answer4, `"timeline": 1`, `"timeline": 1, "pause": true`, 1), "pause true, fixture null"},
		"not JSON":    {strings.Replace(answer4, `{"state"`, `<"state"`, 1), "body"},
		"no headers":  {"HTTP/1.0 200 OK", "answer: no end of headers"},
		"bare status": {"HTTP/1.0 200 OK\r\n\r\n", "headers"},
	} {
		d := strings.Join(ShapeDiff([]byte(answer4), []byte(c.got)), "; ")
		if !strings.Contains(d, c.want) {
			t.Errorf("%s: diff %q lacks %q", name, d, c.want)
		}
	}
	bare := "HTTP/1.0 503 Service Unavailable\r\n\r\n"
	if d := ShapeDiff([]byte(bare), []byte(bare)); len(d) != 0 {
		t.Errorf("bare status line: %v", d)
	}
}

func TestParseAnswer(t *testing.T) {
	a, err := ParseAnswer([]byte(answer4))
	if err != nil {
		t.Fatal(err)
	}
	if a.Status() != 200 || strings.Join(a.HeaderNames(), ",") != "Server,Date,Content-Type" || a.JSON()["role"] != "primary" {
		t.Errorf("%+v", a)
	}
}
