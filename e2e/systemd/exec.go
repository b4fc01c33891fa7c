package systemd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// env is the whole environment of a command run inside: nothing of the test's leaks in.
var env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0",
}

// Run runs argv inside the container as root, in all its namespaces, and returns its
// standard output; a failure's error carries standard error.
func (c *Container) Run(ctx context.Context, argv ...string) (string, error) {
	return c.RunAs(ctx, "", argv...)
}

// RunAs runs argv inside the container as user (a name the container knows; "" is root),
// with the user's groups, in all the container's namespaces. The command joins the
// container's PID namespace, so it ends with the container at the latest.
func (c *Container) RunAs(ctx context.Context, user string, argv ...string) (string, error) {
	args := []string{"--target", strconv.Itoa(c.pid), "--all", "--"}
	if user != "" {
		args = append(args, "setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--")
	}
	cmd := exec.CommandContext(ctx, "nsenter", append(args, argv...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		who := ""
		if user != "" {
			who = " as " + user
		}
		return stdout.String(), fmt.Errorf("%s%s in %s: %w: %s", strings.Join(argv, " "), who, c.Name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Systemctl runs systemctl inside.
func (c *Container) Systemctl(ctx context.Context, args ...string) (string, error) {
	return c.Run(ctx, append([]string{"systemctl", "--no-pager"}, args...)...)
}

// Show returns the named properties of unit, as `systemctl show` gives them.
func (c *Container) Show(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	out, err := c.Systemctl(ctx, "show", "--property="+strings.Join(props, ","), "--", unit)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// InstallUnit writes a unit file (or, for a name ending in .d/NAME.conf, a drop-in) into
// /etc/systemd/system and reloads the manager.
func (c *Container) InstallUnit(ctx context.Context, name, text string) error {
	if strings.Contains(name, "..") || filepath.IsAbs(name) {
		return fmt.Errorf("systemd: bad unit file name %q", name)
	}
	if err := c.WriteFile("/etc/systemd/system/"+name, text, 0o644); err != nil {
		return err
	}
	_, err := c.Systemctl(ctx, "daemon-reload")
	return err
}

// WriteFile writes a file inside the running container, as root; its directory must exist.
func (c *Container) WriteFile(path, data string, mode fs.FileMode) error {
	p := c.Path(path)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	return os.Chmod(p, mode)
}

// ReadFile reads a file inside the running container.
func (c *Container) ReadFile(path string) (string, error) {
	b, err := os.ReadFile(c.Path(path))
	return string(b), err
}

// Entry is one journal entry: its fields, as journalctl -o json gives them.
type Entry map[string]string

// Journal returns the journal's entries that journalctl selects with args (e.g. "-u",
// "patroni-vip-check.service", or "-t", "patroni-vip-check"), oldest first.
func (c *Container) Journal(ctx context.Context, args ...string) ([]Entry, error) {
	out, err := c.Run(ctx, append([]string{"journalctl", "--no-pager", "--output=json", "--all"}, args...)...)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("systemd: journalctl: %w", err)
		}
		e := make(Entry, len(raw))
		for k, v := range raw {
			e[k] = journalValue(v)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// journalValue turns a field of journalctl's JSON into text: a string, or an array of
// bytes for a value that is not valid UTF-8 (or, for a repeated field, its first value).
func journalValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b []byte
		for _, x := range v {
			switch x := x.(type) {
			case float64:
				b = append(b, byte(x))
			default:
				return journalValue(x)
			}
		}
		return string(b)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// Messages is the MESSAGE of each entry, one a line.
func Messages(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e["MESSAGE"])
		b.WriteByte('\n')
	}
	return b.String()
}

var overall = regexp.MustCompile(`(?m)^→ Overall exposure level for \S+: ([0-9]+\.[0-9]) `)

// Security runs `systemd-analyze security` on a loaded unit and returns its overall
// exposure (0.0 safest .. 10.0) and the whole table.
func (c *Container) Security(ctx context.Context, unit string) (float64, string, error) {
	out, err := c.Run(ctx, "systemd-analyze", "security", "--no-pager", "--", unit)
	if err != nil {
		return 0, out, err
	}
	m := overall.FindStringSubmatch(out)
	if m == nil {
		return 0, out, fmt.Errorf("systemd: systemd-analyze security %s: no overall exposure in its output", unit)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	return score, out, err
}

// Listen opens a listener in the container's network namespace, from this process: a test
// serves what the container's units connect to. The socket stays in that namespace
// whichever goroutine uses it.
func (c *Container) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := c.inNetns(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Dial connects from the container's network namespace.
func (c *Container) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := c.inNetns(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// inNetns runs fn on a thread that has joined the container's network namespace. The
// thread is never unlocked, so the runtime discards it when fn returns, and no other
// goroutine runs in that namespace by accident.
func (c *Container) inNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(c.NetNS())
		if err != nil {
			errc <- fmt.Errorf("systemd: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("systemd: setns %s: %w", c.NetNS(), err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// IsExit reports whether err is a command's non-zero exit with status code.
func IsExit(err error, code int) bool {
	var e *exec.ExitError
	return errors.As(err, &e) && e.ExitCode() == code
}
