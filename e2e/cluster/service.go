package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
)

// No systemd runs on these machines, so the harness runs patroni-vip-check.service the
// way systemd runs it, by what the shipped unit file says, and nothing else: ExecStart,
// expanded with the unit's EnvironmentFile; Type=notify, with the READY=1 and
// WATCHDOG=1 that the service sends to a NOTIFY_SOCKET the harness reads; WatchdogSec
// and WatchdogSignal, which end a service that stops answering; ExecStopPost, run after
// the service ends for whatever reason (a stop, a crash, kill -9, the watchdog);
// Restart=always with RestartSec; TimeoutStartSec and TimeoutStopSec. So the unit
// tested is the unit shipped: a change to it changes what the suite runs.

// Service is one node's supervised service.
type Service struct {
	n    *Node
	name string

	argv                      []string   // ExecStart, expanded
	stopPost                  [][]string // ExecStopPost, expanded
	restartAlways             bool
	restartDelay, watchdog    time.Duration
	startTimeout, stopTimeout time.Duration
	watchdogSignal            syscall.Signal
	env                       []string
	bounding                  string // CapabilityBoundingSet=, in setpriv's words; "" for all

	notify *net.UnixConn
	pings  chan []string // notifications, a datagram's lines each

	mu      sync.Mutex
	proc    *proc
	stop    chan struct{}
	stopped chan struct{} // closed when the supervisor is done
	events  []ServiceEvent
}

// ServiceEvent is something the supervisor saw or did, with when.
type ServiceEvent struct {
	At   time.Time
	What string // start, ready, watchdog, exit, stop-post, restart, stop
	PID  int
	Note string
}

func (e ServiceEvent) String() string {
	return fmt.Sprintf("%s %s pid %d %s", e.At.Format("15:04:05.000"), e.What, e.PID, e.Note)
}

// notifyName is where the service finds NOTIFY_SOCKET: in the node's /run, which the
// harness sees as the node's run directory.
const notifyName = "pvc-e2e-notify.sock"

// envFilePath is the host path a unit's EnvironmentFile stands for on node n: each
// node's /etc is its own file in the node directory, since the host's /etc is not the
// harness's to write.
func (n *Node) envFilePath(unitPath string) string {
	return filepath.Join(n.dir, "etc", strings.ReplaceAll(strings.TrimPrefix(unitPath, "/"), "/", "-"))
}

// startService runs the unit at unitPath on the node. env is the content of the node's
// environment file (the first EnvironmentFile of the unit).
func (n *Node) startService(unitPath string, envFile string) (*Service, error) {
	return n.startUnit(unitPath, "", envFile)
}

// startUnit runs the unit at unitPath on the node, or its instance when unitPath is a
// template (NAME@.service) and instance is not "": its specifiers (%i...) are resolved
// as systemd resolves them for the instance's name, in its EnvironmentFile paths and its
// commands. env is the content of the node's environment file (the first
// EnvironmentFile of the unit, as resolved).
func (n *Node) startUnit(unitPath, instance, envFile string) (*Service, error) {
	unit := filepath.Base(unitPath)
	if instance != "" {
		unit = strings.Replace(unit, "@.", "@"+instance+".", 1)
	}
	spec := unitfile.Specifiers{Unit: unit, Fragment: unitPath}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		return nil, err
	}
	u, err := parseUnit(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", unitPath, err)
	}
	if t := u.Get("Service", "Type"); t != "notify" {
		return nil, fmt.Errorf("%s: Type=%s; the harness runs only Type=notify services", unitPath, t)
	}
	vars := map[string]string{}
	paths, optional := u.EnvironmentFiles()
	for i, p := range paths {
		if paths[i], err = spec.Expand(p); err != nil {
			return nil, fmt.Errorf("%s: EnvironmentFile=%s: %w", unitPath, p, err)
		}
	}
	if len(paths) > 0 {
		if err := os.MkdirAll(filepath.Join(n.dir, "etc"), 0o755); err != nil {
			return nil, err
		}
		if err := n.c.writeFile(n.envFilePath(paths[0]), envFile); err != nil {
			return nil, err
		}
	}
	for i, p := range paths {
		b, err := os.ReadFile(n.envFilePath(p))
		if err != nil && !optional[i] {
			return nil, fmt.Errorf("EnvironmentFile %s: %w", p, err)
		}
		for k, v := range unitfile.ParseEnv(string(b)) {
			vars[k] = v
		}
	}
	s := &Service{n: n, name: strings.TrimSuffix(unit, ".service"),
		pings: make(chan []string, 16), stop: make(chan struct{}), stopped: make(chan struct{})}
	if _, s.argv, err = spec.Command(u.Get("Service", "ExecStart"), vars); err != nil {
		return nil, fmt.Errorf("%s: ExecStart: %w", unitPath, err)
	}
	for _, line := range u.All("Service", "ExecStopPost") {
		_, argv, err := spec.Command(line, vars)
		if err != nil {
			return nil, fmt.Errorf("%s: ExecStopPost: %w", unitPath, err)
		}
		s.stopPost = append(s.stopPost, argv)
	}
	s.restartAlways = u.Get("Service", "Restart") == "always"
	if s.bounding, err = boundingSet(u); err != nil {
		return nil, fmt.Errorf("%s: %w", unitPath, err)
	}
	for _, d := range []struct {
		key string
		def time.Duration
		to  *time.Duration
	}{
		{"RestartSec", 100 * time.Millisecond, &s.restartDelay},
		{"WatchdogSec", 0, &s.watchdog},
		{"TimeoutStartSec", 90 * time.Second, &s.startTimeout},
		{"TimeoutStopSec", 90 * time.Second, &s.stopTimeout},
	} {
		*d.to = d.def
		if v := u.Get("Service", d.key); v != "" {
			if *d.to, err = parseSystemdTime(v); err != nil {
				return nil, fmt.Errorf("%s: %s=%s: %w", unitPath, d.key, v, err)
			}
		}
	}
	s.watchdogSignal = syscall.SIGABRT
	if v := u.Get("Service", "WatchdogSignal"); v != "" {
		sig, ok := signalNames[v]
		if !ok {
			return nil, fmt.Errorf("%s: WatchdogSignal=%s: unknown to the harness", unitPath, v)
		}
		s.watchdogSignal = sig
	}
	// systemd has one notify socket and tells services apart by their PIDs; the
	// harness gives each service a socket of its own.
	notify := notifyName
	if instance != "" {
		notify = strings.Replace(notifyName, ".sock", "@"+instance+".sock", 1)
	}
	sock := filepath.Join(n.RunDir(), notify)
	_ = os.Remove(sock)
	if s.notify, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"}); err != nil {
		return nil, err
	}
	s.env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=/run/" + notify}
	if s.watchdog > 0 {
		s.env = append(s.env, fmt.Sprintf("WATCHDOG_USEC=%d", s.watchdog.Microseconds()))
	}
	go s.readNotifications()
	if err := s.launch(); err != nil {
		s.notify.Close()
		return nil, err
	}
	go s.supervise()
	return s, nil
}

var signalNames = map[string]syscall.Signal{
	"SIGKILL": syscall.SIGKILL, "SIGABRT": syscall.SIGABRT, "SIGTERM": syscall.SIGTERM,
	"SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT, "SIGHUP": syscall.SIGHUP,
}

// parseSystemdTime reads the time spans the unit uses: "1s", "500ms", "2", "1min".
func parseSystemdTime(v string) (time.Duration, error) {
	v = strings.ReplaceAll(strings.TrimSpace(v), " ", "")
	if v == "infinity" {
		return 0, nil
	}
	if strings.HasSuffix(v, "min") {
		v = strings.TrimSuffix(v, "min") + "m"
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		v += "s" // a bare number is seconds
	}
	return time.ParseDuration(v)
}

func (s *Service) readNotifications() {
	buf := make([]byte, 4096)
	for {
		n, err := s.notify.Read(buf)
		if err != nil {
			return
		}
		s.pings <- strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	}
}

func (s *Service) launch() error {
	p, err := startProc(s.name+" "+s.n.Name, s.logPath(), s.n.c.command(placement{
		ns: s.n.NS, env: s.env, node: s.n, overlay: true, bounding: s.bounding,
	}, s.argv[0], s.argv[1:]...))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	s.event("start", p.pid(), strings.Join(s.argv, " "))
	return nil
}

func (s *Service) logPath() string {
	return filepath.Join(s.n.c.logDir, s.n.Name+"-"+s.name+".log")
}

func (s *Service) event(what string, pid int, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ServiceEvent{At: time.Now(), What: what, PID: pid, Note: note})
}

// supervise is systemd's part: readiness, the watchdog, the command after stop and the
// restarts, until Stop.
func (s *Service) supervise() {
	defer close(s.stopped)
	defer s.notify.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		started, ready, lastPing := time.Now(), false, time.Time{}
		stopping := false
	running:
		for {
			select {
			case <-p.done:
				break running
			case lines := <-s.pings:
				for _, l := range lines {
					switch l {
					case "READY=1":
						if !ready {
							ready = true
							s.event("ready", p.pid(), "")
						}
						lastPing = time.Now()
					case "WATCHDOG=1":
						lastPing = time.Now()
					case "STOPPING=1":
						s.event("stopping", p.pid(), "")
					}
				}
			case <-tick.C:
				switch {
				case !ready && time.Since(started) > s.startTimeout:
					s.event("start-timeout", p.pid(), "")
					_ = p.signal(syscall.SIGKILL)
				case ready && s.watchdog > 0 && time.Since(lastPing) > s.watchdog:
					s.event("watchdog", p.pid(), fmt.Sprintf("no WATCHDOG=1 for %v; %v", time.Since(lastPing).Round(time.Millisecond), s.watchdogSignal))
					_ = p.signal(s.watchdogSignal)
					lastPing = time.Now() // one signal per timeout, as systemd
				}
			case <-s.stop:
				if !stopping {
					stopping = true
					s.event("stop", p.pid(), "SIGTERM")
					_ = p.stop(syscall.SIGTERM, s.stopTimeout)
				}
			}
		}
		s.event("exit", p.pid(), exitText(p))
		for _, argv := range s.stopPost {
			s.runStopPost(argv)
		}
		select {
		case <-s.stop:
			return
		default:
		}
		if !s.restartAlways {
			return
		}
		select {
		case <-s.stop:
			return
		case <-time.After(s.restartDelay):
		}
		if err := s.launch(); err != nil {
			s.event("restart-failed", 0, err.Error())
			return
		}
	}
}

func exitText(p *proc) string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// runStopPost runs one ExecStopPost command in the service's place and waits for it.
func (s *Service) runStopPost(argv []string) {
	p, err := startProc(s.name+" stop-post "+s.n.Name, s.logPath(), s.n.c.command(placement{
		ns: s.n.NS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, node: s.n, overlay: true, bounding: s.bounding,
	}, argv[0], argv[1:]...))
	if err != nil {
		s.event("stop-post", 0, err.Error())
		return
	}
	_ = p.wait(context.Background(), 10*time.Second)
	s.event("stop-post", p.pid(), strings.Join(argv, " ")+": "+exitText(p))
}

// Stop stops the service as systemctl stop does (SIGTERM, SIGKILL after TimeoutStopSec),
// runs its ExecStopPost, and returns when all of it is done.
func (s *Service) Stop() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.stopped
}

// Signal sends sig to the service's main process, as kill(1) would: the supervisor then
// does what systemd would (restart after a kill -9, the watchdog after a SIGSTOP).
func (s *Service) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	return p.signal(sig)
}

// PID is the service's main process now.
func (s *Service) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.pid()
}

// Events returns what the supervisor saw and did at or after since.
func (s *Service) Events(since time.Time) []ServiceEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ServiceEvent
	for _, e := range s.events {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// KillWatcher SIGKILLs the primary's patroni-vip-check watch (ModeWatch): the unit's
// command after stop removes the track file, keepalived puts the node in FAULT, and the
// service brings a new watcher up RestartSec later. The primary stays the same.
func KillWatcher() Trigger {
	return Trigger{Name: "kill -9 of the watcher", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.signalService(syscall.SIGKILL) }}
}

// StopWatcher SIGSTOPs the primary's watcher: it hangs, stops answering the watchdog, and
// the service kills it WatchdogSec after its last answer; then as after KillWatcher.
func StopWatcher() Trigger {
	return Trigger{Name: "watcher hung", Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.signalService(syscall.SIGSTOP) }}
}

func (n *Node) signalService(sig syscall.Signal) error {
	svc := n.Service()
	if svc == nil {
		return fmt.Errorf("%s runs no service (the cluster is not in ModeWatch)", n.Name)
	}
	return svc.Signal(sig)
}

// boundingSet is the service's CapabilityBoundingSet= in setpriv's words: "" when the
// unit does not set it (every capability), else "-all" and each capability it keeps.
// As systemd: several lines add up, and an empty one empties the set
// (systemd.exec(5)); the "~" form, which the shipped unit does not use, is refused.
func boundingSet(u Unit) (string, error) {
	var keep []string
	set := false
	for _, kv := range u["Service"] {
		if kv.Key != "CapabilityBoundingSet" {
			continue
		}
		set = true
		if kv.Value == "" {
			keep = nil
			continue
		}
		if strings.HasPrefix(kv.Value, "~") {
			return "", fmt.Errorf("CapabilityBoundingSet=%s: the harness takes a list of capabilities to keep, not ~", kv.Value)
		}
		for _, c := range strings.Fields(kv.Value) {
			name := strings.ToLower(strings.TrimPrefix(c, "CAP_"))
			if !strings.HasPrefix(c, "CAP_") || name == "" {
				return "", fmt.Errorf("CapabilityBoundingSet=%s: %q is not a capability", kv.Value, c)
			}
			if !slices.Contains(keep, name) {
				keep = append(keep, name)
			}
		}
	}
	if !set {
		return "", nil
	}
	spec := "-all"
	for _, c := range keep {
		spec += ",+" + c
	}
	return spec, nil
}

// Command is the service's ExecStart, expanded: what its main process runs.
func (s *Service) Command() []string { return append([]string(nil), s.argv...) }

// RestartWatch stops the node's patroni-vip-check.service as systemctl stop does (its
// ExecStopPost removes the track file: on the primary the VIP leaves) and starts it again
// from unit, the text of a unit file (the shipped unit with a drop-in's lines added, say),
// with the same environment file; it returns once the new watcher is ready.
func (n *Node) RestartWatch(ctx context.Context, unit string) error {
	if svc := n.Service(); svc != nil {
		svc.Stop()
	}
	path := filepath.Join(n.dir, "patroni-vip-check.service")
	if err := n.c.writeFile(path, unit); err != nil {
		return err
	}
	return n.startWatch(ctx, path)
}

// waitReady waits for the service's READY=1, as systemd waits for a Type=notify unit
// before it starts what is ordered after it.
func (s *Service) waitReady(ctx context.Context) error {
	return waitFor(ctx, s.n.Name+": "+s.name+" ready", 15*time.Second, 10*time.Millisecond, func() (bool, string, error) {
		for _, e := range s.Events(time.Time{}) {
			if e.What == "ready" {
				return true, "", nil
			}
		}
		return false, "no READY=1 yet", nil
	})
}
