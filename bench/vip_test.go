package main

import (
	"os"
	"strings"
	"testing"
)

// The timing edits must change what they mean to and nothing else: a
// regular expression that silently matches nothing would measure the
// shipped configuration under another name.
func TestTimingEdits(t *testing.T) {
	b, err := os.ReadFile("../packaging/keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	if c := settings(conf); !strings.Contains(c, "version 3") || !strings.Contains(c, "advert_int 0.02") || !strings.Contains(c, "\n    check_unicast_src\n") {
		t.Fatal("the example configuration is not what these edits expect")
	}
	v2 := settings(vrrp2(1, conf))
	for _, want := range []string{"advert_int 1\n", "auth_type PASS", "auth_pass pg-vip-1"} {
		if !strings.Contains(v2, want) {
			t.Errorf("vrrp2: no %q", want)
		}
	}
	for _, gone := range []string{"version 3", "advert_int 0.02", "\n    check_unicast_src\n"} {
		if strings.Contains(v2, gone) {
			t.Errorf("vrrp2: %q is still there", gone)
		}
	}
	v3 := settings(vrrp3("0.2")(1, vrrp2(1, conf)))
	for _, want := range []string{"version 3\n    advert_int 0.2\n"} {
		if !strings.Contains(v3, want) {
			t.Errorf("vrrp3: no %q", want)
		}
	}
	if strings.Contains(v3, "auth_type") {
		t.Error("vrrp3: authentication left in a version 3 instance")
	}
	timed := settings(scriptEvery("0.1")(1, conf))
	for _, want := range []string{"patroni-vip-check --interval 100ms --timeout 80ms http://", "\n    interval 0.1\n", "\n    timeout 0.4\n"} {
		if !strings.Contains(timed, want) {
			t.Errorf("scriptEvery: no %q in\n%s", want, timed)
		}
	}
	if strings.Count(timed, "interval") != 2 || strings.Count(timed, "timeout") != 2 {
		t.Errorf("scriptEvery: a timer twice or not at all:\n%s", timed)
	}
}

// settings is conf without its comments and blank lines.
func settings(conf string) string {
	var b strings.Builder
	for _, line := range strings.Split(conf, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// Trigger names travel in the comma-separated -triggers flag: none may hold a
// comma, and every outage trigger and every trigger of the default list must
// exist.
func TestTriggerNames(t *testing.T) {
	for name := range triggers {
		if got := splitList(name); len(got) != 1 || got[0] != name {
			t.Errorf("trigger %q does not survive -triggers: %q", name, got)
		}
	}
	for _, name := range outageTriggers {
		if triggers[name] == nil {
			t.Errorf("outage trigger %q is not a trigger", name)
		}
	}
}

func TestPick(t *testing.T) {
	all := []setup{{name: "watch --pgdata --interval 1s, advert_int 0.02"}, {name: "watch --pgdata --interval 1s, advert_int 0.01"}, {name: "curl, every 1 s"}}
	names := func(ss []setup) (n []string) {
		for _, s := range ss {
			n = append(n, s.name)
		}
		return n
	}
	if got := names(pick(all, "")); len(got) != 3 {
		t.Errorf("no filter: %q", got)
	}
	if got := names(pick(all, "advert_int 0.01 | curl")); len(got) != 2 || got[0] != all[1].name || got[1] != all[2].name {
		t.Errorf("two parts: %q", got)
	}
	if got := pick(all, "nothing"); len(got) != 0 {
		t.Errorf("no match: %v", got)
	}
}
