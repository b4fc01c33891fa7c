package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetupCommands: `patroni-vip-check doctor` and `keepalived-conf` run
// patroni-vip-check-setup, found beside the binary (a build tree) or in
// its libexec directory (the packages), with the same arguments and
// streams, and its exit status; without it, one line says what is missing.
func TestSetupCommands(t *testing.T) {
	self, err := exec.LookPath("patroni-vip-check")
	if err != nil {
		t.Fatal(err)
	}
	// A stand-in set-up binary that says how it was called and exits 1.
	const standin = "#!/bin/sh\necho \"ran $0 $*\"\necho \"stderr too\" >&2\nexit 1\n"
	for _, layout := range []struct{ bin, setup string }{
		{"bin/patroni-vip-check", "bin/patroni-vip-check-setup"},
		{"usr/bin/patroni-vip-check", "usr/libexec/patroni-vip-check/patroni-vip-check-setup"},
	} {
		root := t.TempDir()
		bin, setup := filepath.Join(root, layout.bin), filepath.Join(root, layout.setup)
		for _, dir := range []string{filepath.Dir(bin), filepath.Dir(setup)} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		copyFile(t, self, bin, 0o755)
		if err := os.WriteFile(setup, []byte(standin), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, sub := range []string{"doctor", "keepalived-conf"} {
			out, err := exec.Command(bin, sub, "--vip", "198.51.100.100/24").CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("%s %s: %v, want the set-up binary's exit 1", layout.bin, sub, err)
			}
			// A #! script's $0 is the path the kernel ran: which one was found.
			if want := "ran " + setup + " " + sub + " --vip 198.51.100.100/24\nstderr too\n"; string(out) != want {
				t.Errorf("%s %s printed %q, want %q", layout.bin, sub, out, want)
			}
		}
	}

	root := t.TempDir()
	bin := filepath.Join(root, "patroni-vip-check")
	copyFile(t, self, bin, 0o755)
	out, err := exec.Command(bin, "doctor").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("doctor without the set-up binary: %v, want exit 1", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "patroni-vip-check: error: doctor is in patroni-vip-check-setup, which is not installed") {
		t.Errorf("doctor without the set-up binary printed %q", out)
	}
}
