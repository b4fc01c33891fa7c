package doctor

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
)

// FuzzCheckLine: the doctor reads a check's command line as the check
// does, and the command it runs to ask Patroni asks the same question.
//   - checkLine agrees with the check's own dispatch and parse (main.run:
//     cmdline.Split, then cmdline.Parse for the subcommand's lifecycle);
//   - for a single run that parses, the command the doctor runs
//     (cfg.CheckArgs) parses to the same check options, and to the same
//     URL, whatever flags or flag-like URL the line held.
func FuzzCheckLine(f *testing.F) {
	f.Add("--timeout\x00150ms\x00--interval=200ms\x00http://198.51.100.11:8008/primary")
	f.Add("watch\x00--track-file\x00/run/x/eligible\x00http://[2001:db8::1]:8008/primary")
	f.Add("--\x00--timeout=5s")
	f.Add("--state-dir\x00/run/x\x00--no-state")
	f.Add("--cacert=/etc/p/ca.pem\x00--insecure\x00--status-only\x00https://198.51.100.11:8008/replica?lag=16MB")
	f.Add("doctor\x00--keepalived-conf\x00/x")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		sub, cfg, err := checkLine(append([]string{"/usr/bin/patroni-vip-check"}, args...))

		wantSub, rest := cmdline.Split(args)
		mode := cmdline.Once
		if wantSub == cmdline.SubWatch {
			mode = cmdline.Watch
		}
		want, wantErr := cmdline.Parse(mode, rest)
		if sub != wantSub || (err == nil) != (wantErr == nil) || !reflect.DeepEqual(cfg, want) {
			t.Fatalf("doctor read %q as %q %+v (%v), the check as %q %+v (%v)", args, sub, cfg, err, wantSub, want, wantErr)
		}
		if err != nil || cfg.Help || cfg.Version || sub != "" && sub != cmdline.SubWatch {
			return
		}
		again, err := cmdline.Parse(cmdline.Once, cfg.CheckArgs())
		if err != nil {
			t.Fatalf("the doctor's command %q does not parse: %v", cfg.CheckArgs(), err)
		}
		if a, b := again.CheckOptions("x"), cfg.CheckOptions("x"); !reflect.DeepEqual(a, b) || again.Timeout != cfg.Timeout {
			t.Fatalf("the doctor asks %+v (timeout %v), the line %+v (timeout %v)", a, again.Timeout, b, cfg.Timeout)
		}
	})
}

// The doctor runs the check with the line's question and timing, and only
// its own logging flags.
func TestDoctorAsksWhatTheLineAsks(t *testing.T) {
	n := newNode(t, "keepalived.conf", keepalived.Version{Major: 2, Minor: 2, Patch: 7})
	n.edit(t, `script "/usr/bin/patroni-vip-check http://198.51.100.11:8008/primary"`,
		`script "/usr/bin/patroni-vip-check --log=syslog --state-dir /run/x --retries 0 --timeout 600ms --servername pg1 https://198.51.100.11:8008/primary"`)
	n.run()
	want := []string{"--json", "--no-state", "--log", "none", "--timeout=600ms", "--connect-timeout=300ms", "--retries=0",
		"--servername=pg1", "--", "https://198.51.100.11:8008/primary"}
	if !slices.Equal(n.check.args, want) {
		t.Errorf("the doctor ran the check with %q, want %q", n.check.args, want)
	}
}
