package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system/systemtest"
)

func runDoctorOn(t *testing.T, sys system.System, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := doctorCommand(context.Background(), args, &stdout, &stderr, sys, "node1")
	return code, stdout.String(), stderr.String()
}

// watchNode is a node set up for packaging/keepalived-watch.conf, without systemd.
func watchNode(t *testing.T) *systemtest.Fake {
	data, err := os.ReadFile("../../packaging/keepalived-watch.conf")
	if err != nil {
		t.Fatal(err)
	}
	return &systemtest.Fake{
		Files: map[string]*systemtest.File{
			"/etc/keepalived/keepalived.conf":            {Mode: 0o644, Data: data},
			"/run/keepalived-patroni-vip-check":          {Mode: fs.ModeDir | 0o755},
			"/run/keepalived-patroni-vip-check/eligible": {Mode: 0o644, Data: []byte("0\n")},
		},
		Users:  []system.User{{Name: "root"}},
		Ifaces: []system.Interface{{Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}}},
	}
}

// Findings go to stdout, one line each; warnings alone exit 0, a failure 1.
func TestDoctorExitStatus(t *testing.T) {
	sys := watchNode(t)
	code, out, errs := runDoctorOn(t, sys, "--keepalived-version", "2.2.7")
	if code != 0 || errs != "" || !strings.Contains(out, "\nwarning: ") || strings.Contains(out, "failure: ") {
		t.Errorf("warnings only: exit %d, stderr %q\n%s", code, errs, out)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, "ok: ") && !strings.HasPrefix(l, "warning: ") && !strings.HasPrefix(l, "failure: ") {
			t.Errorf("line %q is not a finding", l)
		}
	}
	delete(sys.Files, "/run/keepalived-patroni-vip-check/eligible")
	delete(sys.Files, "/run/keepalived-patroni-vip-check")
	code, out, _ = runDoctorOn(t, sys, "--keepalived-version", "2.2.7")
	line := 1 + strings.Count(strings.Split(string(sys.Files["/etc/keepalived/keepalived.conf"].Data), "    file /run/keepalived-patroni-vip-check/eligible")[0], "\n")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("failure: /etc/keepalived/keepalived.conf:%d: track_file patroni_primary: the directory /run/keepalived-patroni-vip-check does not exist", line)) {
		t.Errorf("missing directory: exit %d\n%s", code, out)
	}
	code, out, _ = runDoctorOn(t, sys, "--keepalived-conf", "/etc/keepalived/missing.conf", "--keepalived-version", "2.2.7")
	if code != 1 || !strings.Contains(out, "failure: cannot read the keepalived configuration: /etc/keepalived/missing.conf: file does not exist; give the file keepalived reads with --keepalived-conf") {
		t.Errorf("missing file: exit %d\n%s", code, out)
	}
}

func TestDoctorUsage(t *testing.T) {
	code, out, _ := runDoctorOn(t, watchNode(t), "--help")
	if code != 0 || !strings.HasPrefix(out, "usage: patroni-vip-check doctor") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	for args, want := range map[string]string{
		"--bogus":                  "patroni-vip-check: error: doctor: unknown flag --bogus (see --help)\n",
		"extra":                    "patroni-vip-check: error: doctor: unexpected argument \"extra\" (see --help)\n",
		"--keepalived-version 2.x": "patroni-vip-check: error: doctor: --keepalived-version: invalid keepalived version \"2.x\" (want for example 2.2.7)\n",
		"--keepalived-conf":        "patroni-vip-check: error: doctor: --keepalived-conf needs a value (see --help)\n",
	} {
		code, out, errs := runDoctorOn(t, watchNode(t), strings.Fields(args)...)
		if code != 1 || out != "" || errs != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, want %q", args, code, out, errs, want)
		}
	}
}
