package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// hostEnv is the environment of the host commands that place a program (ip, unshare,
// sh, mount, chroot, setpriv); the program itself gets the one its placement says.
var hostEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// proc is one long-running program started inside a namespace, its output in a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// startProc starts argv, a Cluster.command (whose every step execs the next, so the PID
// is the program's), appending its output to logPath.
func startProc(name, logPath string, argv []string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s start: %s\n", time.Now().Format(time.RFC3339Nano), describeArgv(argv))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = hostEnv
	// Its own process group: a Ctrl-C meant for the harness reaches it only through the
	// harness's own teardown, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return syscall.Kill(p.pid(), sig)
}

// wait waits for the process to end, up to timeout.
func (p *proc) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("%s (pid %d) still running after %v", p.name, p.pid(), timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends sig, waits up to grace, then SIGKILLs. A stopped (SIGSTOP) process is
// continued first so that it can act on the signal.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = syscall.Kill(p.pid(), sig)
	_ = syscall.Kill(p.pid(), syscall.SIGCONT)
	if p.wait(context.Background(), grace) == nil {
		return nil
	}
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	return p.wait(context.Background(), 5*time.Second)
}

// waitFor polls cond every interval until it returns true, an error, or timeout passes.
// The last reason cond gave for not being ready is part of the timeout error.
func waitFor(ctx context.Context, what string, timeout, interval time.Duration, cond func() (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		ok, why, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: not ready after %v: %s", what, timeout, last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// describeArgv is argv for a log line, the placement script named rather than quoted.
func describeArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == placeScript {
			a = "PLACE_SCRIPT"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
