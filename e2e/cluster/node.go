package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
)

// CheckTag is the syslog tag of patroni-vip-check's lines.
const CheckTag = "patroni-vip-check"

// PatroniLogPath is the file receiving the node's Patroni and PostgreSQL output.
func (n *Node) PatroniLogPath() string { return filepath.Join(n.c.logDir, n.Name+"-patroni.log") }

// AgentLogPath is the file receiving the output of the node's keepalived or vip-manager.
func (n *Node) AgentLogPath() string {
	if n.c.opts.Mode == ModeVIPManager {
		return filepath.Join(n.c.logDir, n.Name+"-vip-manager.log")
	}
	return filepath.Join(n.c.logDir, n.Name+"-keepalived.log")
}

// AgentLog returns what the node's keepalived (or vip-manager) has written so far.
func (n *Node) AgentLog() (string, error) {
	b, err := os.ReadFile(n.AgentLogPath())
	return string(b), err
}

// StartPatroni starts the node's Patroni as the stack's postgres, in the node's namespace.
func (n *Node) StartPatroni() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.patroni != nil && n.patroni.running() {
		return fmt.Errorf("patroni on %s is already running", n.Name)
	}
	p, err := startProc("patroni "+n.Name, n.PatroniLogPath(), n.c.command(placement{
		ns: n.NS, user: "postgres",
		env: []string{"PATH=/usr/bin:/bin", "HOME=" + n.pgDir, "LANG=C.UTF-8"},
	}, n.c.opts.Stack.Patroni, filepath.Join(n.dir, "patroni.yml")))
	if err != nil {
		return err
	}
	n.patroni, n.paused = p, false
	return nil
}

func (n *Node) patroniRunning() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.patroni != nil && n.patroni.running()
}

func (n *Node) patroniProc() (*proc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.patroni == nil || !n.patroni.running() {
		return nil, fmt.Errorf("patroni on %s is not running", n.Name)
	}
	return n.patroni, nil
}

// StopPatroni stops the node's Patroni gracefully (SIGTERM: Patroni shuts PostgreSQL
// down and, on the primary, releases the leader key) and waits for it to exit.
func (n *Node) StopPatroni(ctx context.Context) error {
	p, err := n.patroniProc()
	if err != nil {
		return err
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.wait(ctx, 60*time.Second)
}

// KillPatroni crashes the node's database stack: SIGKILL to Patroni and to the postmaster
// (Patroni starts PostgreSQL in a session of its own, so it survives Patroni otherwise).
// It returns once Patroni has exited and no postgres process is left in the node; the
// backends end by themselves when they see the postmaster gone.
func (n *Node) KillPatroni(ctx context.Context) error {
	p, err := n.patroniProc()
	if err != nil {
		return err
	}
	postmaster, pmErr := n.postmasterPID()
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if pmErr == nil {
		_ = syscall.Kill(postmaster, syscall.SIGKILL)
	}
	if err := p.wait(ctx, 10*time.Second); err != nil {
		return err
	}
	return waitFor(ctx, "postgres gone from "+n.Name, 15*time.Second, 50*time.Millisecond, func() (bool, string, error) {
		left := n.postgresPIDs()
		return len(left) == 0, fmt.Sprintf("postgres PIDs %v", left), nil
	})
}

// Reinit rebuilds the member from the primary, as `patronictl reinit` would, but by hand
// so that it also works when Patroni has lost track of a postmaster: Patroni and every
// postgres process of the node are killed, the data directory is removed, and Patroni,
// started again, takes a fresh base backup. Needed after Patroni 3.0.2 started PostgreSQL
// twice while demoting a primary that had lost the DCS (patroni/patroni#3649): the
// orphaned postmaster keeps the port and the data directory is unusable.
func (n *Node) Reinit(ctx context.Context) error {
	if p, err := n.patroniProc(); err == nil {
		_ = p.signal(syscall.SIGKILL)
		if err := p.wait(ctx, 10*time.Second); err != nil {
			return err
		}
	}
	for _, pid := range n.postgresPIDs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := waitFor(ctx, "postgres gone from "+n.Name, 15*time.Second, 50*time.Millisecond, func() (bool, string, error) {
		left := n.postgresPIDs()
		return len(left) == 0, fmt.Sprintf("postgres PIDs %v", left), nil
	}); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(n.pgDir, "data")); err != nil {
		return err
	}
	// The killed postmaster's socket and lock file stay behind. PostgreSQL
	// takes the lock file as stale only if its PID is gone, and a killed
	// postmaster not yet reaped still has one: the rebuilt member then
	// refuses to start ("lock file ... already exists"), Patroni runs crash
	// recovery on the fresh copy, and it never streams (seen in a CI run).
	stale, _ := filepath.Glob(filepath.Join(n.pgDir, "sock", ".s.PGSQL.*"))
	for _, f := range stale {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return n.StartPatroni()
}

func (n *Node) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.pgDir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// postgresPIDs lists the processes named postgres inside the node's namespace.
func (n *Node) postgresPIDs() []int {
	ino, err := netnsInode(n.NS)
	if err != nil {
		return nil
	}
	var out []int
	for _, pid := range pidsIn(map[uint64]bool{ino: true}) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			out = append(out, pid)
		}
	}
	return out
}

// PausePatroni freezes the node's Patroni (SIGSTOP): its REST API accepts connections
// and never answers, while PostgreSQL goes on running.
func (n *Node) PausePatroni() error {
	p, err := n.patroniProc()
	if err != nil {
		return err
	}
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
	return nil
}

// ResumePatroni continues a paused Patroni (SIGCONT); a no-op otherwise.
func (n *Node) ResumePatroni() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.paused {
		return nil
	}
	n.paused = false
	if n.patroni == nil || !n.patroni.running() {
		return nil
	}
	return n.patroni.signal(syscall.SIGCONT)
}

// Cut takes the node off the network: its port on the switch goes down, so its eth0
// loses the carrier and nothing it sends reaches anyone.
func (n *Node) Cut(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := ipCmd(ctx, "-n", n.c.swNS, "link", "set", n.Name, "down"); err != nil {
		return err
	}
	n.cut = true
	return nil
}

// Reconnect undoes Cut and CutFromDCS; a no-op otherwise.
func (n *Node) Reconnect(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.reconnectDCS(ctx); err != nil {
		return err
	}
	if !n.cut {
		return nil
	}
	if err := ipCmd(ctx, "-n", n.c.swNS, "link", "set", n.Name, "up"); err != nil {
		return err
	}
	n.cut = false
	return nil
}

// IsCut reports whether the node is cut off (see Cut).
func (n *Node) IsCut() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut
}

// RunDir is the directory keepalived and its check see as /run.
func (n *Node) RunDir() string { return filepath.Join(n.dir, "run") }

// HoldsVIP reports whether the VIP is configured in the node's namespace right now.
func (n *Node) HoldsVIP() (bool, error) {
	ips, err := n.links.ipv4Addrs()
	if err != nil {
		return false, fmt.Errorf("%s: %w", n.Name, err)
	}
	for _, ip := range ips {
		if ip.String() == VIP {
			return true, nil
		}
	}
	return false, nil
}

// Syslog returns the lines the node's /dev/log received with tag ("" for all) at or
// after since.
func (n *Node) Syslog(tag string, since time.Time) []LogLine {
	if n.syslog == nil {
		return nil
	}
	var out []LogLine
	for _, l := range n.syslog.lines(tag) {
		if !l.At.Before(since) {
			out = append(out, l)
		}
	}
	return out
}

// CheckLog returns patroni-vip-check's syslog lines on this node at or after since.
func (n *Node) CheckLog(since time.Time) []LogLine { return n.Syslog(CheckTag, since) }

// CheckRun is the outcome of running the check by hand.
type CheckRun struct {
	Exit    int
	Elapsed time.Duration
	Output  string
}

// RunCheck runs the installed check by hand in the node's network namespace, as an
// operator would to debug a node: `patroni-vip-check ARGS`. Pass --no-state (or a
// --state-dir) so that the host's state directory is left alone.
func (n *Node) RunCheck(ctx context.Context, args ...string) (CheckRun, error) {
	bin := n.c.opts.CheckBinary
	if bin == "" {
		return CheckRun{}, errors.New("no check binary in this mode")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.NS, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	t := time.Now()
	err := cmd.Run()
	r := CheckRun{Elapsed: time.Since(t), Output: out.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	case err != nil:
		return r, err
	}
	return r, nil
}

// startAgents starts keepalived or vip-manager on every node, and in ModeWatch the
// service that keeps each node's track file, before keepalived as the unit orders it.
func (c *Cluster) startAgents(ctx context.Context) error {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr
	}
	for i, n := range c.nodes {
		if c.opts.Mode == ModeVIPManager {
			if err := n.startVIPManager(); err != nil {
				return err
			}
			continue
		}
		if err := n.applyTmpfiles(); err != nil {
			return err
		}
		if c.opts.Mode.checked() {
			// The set-up commands (keepalived-conf) are in a binary of their own,
			// found beside the check.
			for _, name := range []string{"patroni-vip-check", "patroni-vip-check-setup"} {
				if err := copyFile(filepath.Join(filepath.Dir(c.opts.CheckBinary), name), filepath.Join(n.dir, "bin", name), 0o755); err != nil {
					return err
				}
			}
		}
		conf := NodeKeepalivedConf(c.opts.KeepalivedConf, addrs, i)
		if c.opts.Mode.checked() && i > 0 {
			generated, err := n.generateKeepalivedConf(ctx)
			if err != nil {
				return err
			}
			// The generator, asked on the node, must write what the example says for it.
			if a, b := codeLines(generated), codeLines(conf); a != b {
				return fmt.Errorf("%s: the generator's keepalived.conf differs from the example's for this node:\n%s", n.Name, firstDiff(b, a))
			}
			conf = generated
			if c.opts.Mode == ModeWatch {
				if n.genArgs, err = GeneratedWatchArgs(generated); err != nil {
					return fmt.Errorf("%s: %w", n.Name, err)
				}
				if c.opts.ReadVIP {
					if err := n.setInstanceArgs(ReadInstance, generated, n.ReadURL()); err != nil {
						return err
					}
				}
			}
		}
		if c.opts.Mode == ModeCurl {
			var err error
			if conf, err = ReplaceScript(conf, CurlCommand(n.Addr)); err != nil {
				return err
			}
		}
		if c.opts.EditKeepalived != nil {
			conf = c.opts.EditKeepalived(n.Index, conf)
		}
		if err := c.writeFile(filepath.Join(n.dir, "keepalived.conf"), conf); err != nil {
			return err
		}
		if c.opts.IPv6VIP {
			var err error
			if conf, err = n.addIPv6Conf(ctx, conf); err != nil {
				return err
			}
		}
		c.keepConf = append(c.keepConf, conf)
		if c.opts.Mode == ModeWatch {
			if err := n.startWatch(ctx, c.opts.UnitFile); err != nil {
				return err
			}
			if err := n.startInstances(ctx); err != nil {
				return err
			}
		}
		if err := n.startKeepalived(); err != nil {
			return err
		}
	}
	return nil
}

// applyTmpfiles creates the node's /run directories from the packaged tmpfiles.d entry,
// as systemd-tmpfiles does at boot: the check's state directory, and the track file's,
// which must exist before keepalived starts.
func (n *Node) applyTmpfiles() error {
	dir := filepath.Join(n.dir, "usr", "lib", "tmpfiles.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "patroni-vip-check.conf"), []byte(n.c.opts.tmpfiles), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("systemd-tmpfiles", "--create", "--root="+n.dir, "patroni-vip-check.conf").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: systemd-tmpfiles: %v: %s", n.Name, err, out)
	}
	return nil
}

// generateKeepalivedConf runs `patroni-vip-check keepalived-conf` on the node, as an
// operator would: it reads the node's Patroni configuration, asks Patroni for the
// cluster's members, finds the interface and the stack's keepalived, and writes the
// set-up of node 1's example (oneshot or watch) for keepalived's version.
func (n *Node) generateKeepalivedConf(ctx context.Context) (string, error) {
	mode := "oneshot"
	if n.c.opts.Mode == ModeWatch {
		mode = "watch"
	}
	args := []string{"keepalived-conf", "--vip", VIP + "/24", "--mode", mode,
		"--patroni-config", filepath.Join(n.dir, "patroni.yml"), "--router-id", "51"}
	if v := n.c.opts.KeepalivedFor; v != "" {
		args = append(args, "--keepalived-version", v)
	}
	if n.c.opts.ReadVIP {
		args = append(args, "--replica-vip", ReadVIP+"/24")
	}
	return n.runGenerator(ctx, args)
}

// runGenerator runs `patroni-vip-check ARGS` (keepalived-conf) on the node as an operator
// would, and returns what it wrote on stdout.
func (n *Node) runGenerator(ctx context.Context, args []string) (string, error) {
	argv := n.c.command(placement{
		ns: n.NS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, node: n, overlay: true,
	}, "/usr/bin/patroni-vip-check", args...)
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: patroni-vip-check keepalived-conf: %v: %s", n.Name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// codeLines is a keepalived.conf without its comments and blank lines, its lines
// sorted: the order of peers (and of anything else) is the writer's choice.
func codeLines(conf string) string {
	var lines []string
	for _, l := range strings.Split(conf, "\n") {
		if code, _, _ := strings.Cut(l, "#"); strings.TrimSpace(code) != "" {
			lines = append(lines, strings.TrimRight(code, " "))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("  example:   %s\n  generated: %s", a, b)
		}
	}
	return "(same lines)"
}

// startWatch runs the node's patroni-vip-check.service from unitPath and waits for its
// READY=1, as systemd starts a Type=notify unit before the keepalived it is ordered
// before.
func (n *Node) startWatch(ctx context.Context, unitPath string) error {
	svc, err := n.startService(unitPath, n.watchEnv())
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.service = svc
	n.mu.Unlock()
	return svc.waitReady(ctx)
}

// Service is the node's patroni-vip-check.service in ModeWatch, nil otherwise.
func (n *Node) Service() *Service {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.service
}

// TrackFilePath is the node's track file as the harness sees it.
func (n *Node) TrackFilePath() string {
	return filepath.Join(n.RunDir(), "keepalived-patroni-vip-check", "eligible")
}

// TrackFile is what the node's track file says now: "1", "0", or "" if there is none.
func (n *Node) TrackFile() string {
	b, err := os.ReadFile(n.TrackFilePath())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (n *Node) startKeepalived() error {
	overlay := n.c.opts.Mode.checked()
	file := func(name string) string { return filepath.Join(n.dir, name) }
	p, err := startProc("keepalived "+n.Name, n.AgentLogPath(), n.c.command(placement{
		ns: n.NS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, node: n, overlay: overlay,
	}, n.c.opts.Stack.Keepalived, "--dont-fork", "--log-console", "--log-detail",
		"-f", file("keepalived.conf"), "-p", file("keepalived.pid"), "-r", file("vrrp.pid"),
		"-c", file("checkers.pid"), "-b", file("bfd.pid")))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.agent = p
	n.mu.Unlock()
	return nil
}

func (n *Node) startVIPManager() error {
	p, err := startProc("vip-manager "+n.Name, n.AgentLogPath(), n.c.command(placement{
		ns: n.NS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}, n.c.opts.Stack.VIPManager, "--ip", VIP, "--netmask", "24", "--interface", "eth0",
		"--trigger-key", "/service/"+Scope+"/leader", "--trigger-value", n.Name,
		"--dcs-type", "etcd", "--dcs-endpoints", "http://"+SwitchAddr+":2379",
		"--interval", strconv.FormatInt(n.c.opts.VIPManagerInterval.Milliseconds(), 10)))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.agent = p
	n.mu.Unlock()
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // the umask may have narrowed it
}

// DataDir is the node's PostgreSQL data directory (Patroni's postgresql.data_dir), the
// same path inside every placement and out.
func (n *Node) DataDir() string { return filepath.Join(n.pgDir, "data") }

// watchEnv is the node's environment file for patroni-vip-check.service: Options.WatchArgs,
// then the node's own arguments (see Options.UnitFile).
func (n *Node) watchEnv() string {
	own := n.genArgs
	if n.Index == 1 {
		own = []string{"--pgdata", n.DataDir(), n.PrimaryURL()}
	}
	return n.envFile(own)
}

// envFile is a watcher's environment file: Options.WatchArgs, then own, the watcher's own
// arguments, less --pgdata if Options.WatchPollsAlone.
func (n *Node) envFile(own []string) string {
	args := append([]string(nil), n.c.opts.WatchArgs...)
	for i := 0; i < len(own); i++ {
		if n.c.opts.WatchPollsAlone && own[i] == "--pgdata" && i+1 < len(own) {
			i++
			continue
		}
		args = append(args, own[i])
	}
	return fmt.Sprintf("PATRONI_VIP_CHECK_ARGS=%q\n", strings.Join(args, " "))
}

// generatedArgsLine is the line of a generated keepalived.conf's comments that gives the
// primary VIP's watcher its arguments.
var generatedArgsLine = regexp.MustCompile(`(?m)^\s*#\s*(PATRONI_VIP_CHECK_ARGS=".*")\s*$`)

// GeneratedWatchArgs are the arguments a configuration that keepalived-conf wrote tells
// the operator to give the node's watcher (the first PATRONI_VIP_CHECK_ARGS line of its
// comments: the primary VIP's), split as systemd splits $PATRONI_VIP_CHECK_ARGS.
func GeneratedWatchArgs(conf string) ([]string, error) {
	m := generatedArgsLine.FindStringSubmatch(conf)
	if m == nil {
		return nil, errors.New("the generated keepalived.conf says nothing of PATRONI_VIP_CHECK_ARGS")
	}
	args := strings.Fields(unitfile.ParseEnv(m[1])["PATRONI_VIP_CHECK_ARGS"])
	if len(args) == 0 {
		return nil, fmt.Errorf("the generated keepalived.conf gives the watcher no arguments: %s", m[1])
	}
	return args, nil
}
