//go:build e2e

package doctor

// keepalived's own samples (testdata/wild/samples) in keepalived -t:
// what each version says of each is what keepalived-t.txt records, the
// table TestSamplesReadClean reads to require that the doctor's reader
// says nothing of a sample keepalived accepts.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestSamplesKeepalivedT(t *testing.T) {
	want := keepalivedT(t)
	eachKeepalived(t, func(t *testing.T, l *lab) {
		// The interfaces the samples name, beside the lab's eth0.
		for _, name := range []string{"eth1", "eth2", "eth3", "eth0.1"} {
			ip(t, "-n", l.ns, "link", "add", name, "type", "veth", "peer", "name", "p"+name)
			ip(t, "-n", l.ns, "link", "set", name, "up")
		}
		column := 0
		if l.f.root != "" {
			column = 1
		}
		for name, exits := range want {
			data, err := os.ReadFile(filepath.Join("testdata/wild/samples", name))
			must(t, err)
			l.write(name, string(data), 0o644)
			got := l.configTestPlain(l.path(name))
			if strconv.Itoa(got) != exits[column] {
				t.Errorf("keepalived %s -t %s: exit %d, keepalived-t.txt says %s", l.f.version, name, got, exits[column])
			}
		}
	})
}

// configTestPlain is keepalived -t on conf in the lab's namespace (and
// root), with no other mounts: its exit status, 124 if it still runs
// after 20 s (then it is killed with its process group).
func (l *lab) configTestPlain(conf string) int {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := l.wrap(l.ns, "", "/usr/sbin/keepalived", "-t", "-f", conf)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = setpgid()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return 124
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		l.t.Fatalf("keepalived -t %s: %v", conf, err)
	}
	return 0
}
