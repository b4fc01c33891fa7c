//go:build e2e

package doctor

// The lab the root tests run in: real keepalived, 2.2.7 from this
// machine and, when PVC_DEBIAN13_ROOT names a Debian 13 root, 2.3.3 from
// it, each in a network namespace of its own (addresses in
// 198.51.100.0/24 only: the node 198.51.100.11 on eth0, one end of a
// veth pair whose other end stays in the namespace, or goes to a client
// namespace), with a Patroni stand-in served by this test process on the
// node's address, the check built from this repository, and the doctor
// run in the same namespace (and root) as keepalived. Everything started
// is stopped by its process group, namespaces are deleted and the work
// directory removed, also after a crash of an earlier run.
//
//	go test -tags e2e ./doctor/                 # as root; skips without
//	PVC_REQUIRE_ROOT=1 go test -tags e2e ./doctor/   # fails instead of skipping
//	PVC_DEBIAN13_ROOT=/srv/trixie ...           # also keepalived 2.3.3
//	PVC_BIN=/abs/patroni-vip-check ...          # test that build of the check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

const (
	labPrefix = "pvc-doctor-" // namespaces and work directories
	nodeAddr  = "198.51.100.11"
	vipAddr   = "198.51.100.100"
	client    = "198.51.100.50"
)

// helperEnv, when set, makes TestDoctorHelper run the doctor with these
// options and print its findings: the lab runs the test binary itself in
// keepalived's namespace and root.
const helperEnv = "PVC_DOCTOR_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" && os.Geteuid() == 0 {
		if unlock, err := lock(); err == nil {
			removeLeftovers()
			code := m.Run()
			if checkDir != "" {
				os.RemoveAll(checkDir)
			}
			unlock()
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// lock keeps two runs of these tests apart: each removes the other's
// namespaces as leftovers.
func lock() (func(), error) {
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, "pvc-doctor-e2e.lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// leftover reports whether name (a namespace or a work directory, named
// labPrefix, the PID of the test process that made it, "-") belongs to a
// run that is gone. Anything else is not this harness's to remove.
func leftover(name string) bool {
	rest, ok := strings.CutPrefix(name, labPrefix)
	if !ok {
		return false
	}
	digits, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// removeLeftovers deletes what a crashed run left: namespaces, the
// processes still in them (by PID), and work directories, of test
// processes that no longer run.
func removeLeftovers() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && leftover(f[0]) {
			deleteNetns(f[0])
		}
	}
	dirs := []string{os.TempDir()}
	if root := os.Getenv("PVC_DEBIAN13_ROOT"); root != "" {
		dirs = append(dirs, filepath.Join(root, "tmp"))
	}
	for _, d := range dirs {
		old, _ := filepath.Glob(filepath.Join(d, labPrefix+"*"))
		for _, o := range old {
			if leftover(filepath.Base(o)) {
				os.RemoveAll(o)
			}
		}
	}
}

func deleteNetns(name string) {
	pids := func() []int {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		var ps []int
		for _, f := range strings.Fields(string(out)) {
			// This process is listed when the thread that joined the
			// namespace for a listener was its main one (which Go parks
			// rather than ends): never signal it.
			if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
				ps = append(ps, p)
			}
		}
		return ps
	}
	for _, p := range pids() {
		syscall.Kill(p, syscall.SIGTERM)
	}
	for i := 0; i < 20 && len(pids()) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range pids() {
		syscall.Kill(p, syscall.SIGKILL)
	}
	exec.Command("ip", "netns", "delete", name).Run()
}

// requireRoot skips a test that needs root, or fails it when
// PVC_REQUIRE_ROOT=1 says the run must not skip.
func requireRoot(t *testing.T) {
	t.Helper()
	need := os.Getenv("PVC_REQUIRE_ROOT") == "1"
	miss := func(format string, args ...any) {
		t.Helper()
		if need {
			t.Fatalf(format+" (PVC_REQUIRE_ROOT=1)", args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		miss("needs root: network namespaces and keepalived")
	}
	for _, tool := range []string{"ip", "unshare", "mount", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			miss("needs %s", tool)
		}
	}
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		miss("needs keepalived (/usr/sbin/keepalived)")
	}
}

// flavour is one keepalived to test with.
type flavour struct {
	name    string
	root    string // "" for this machine's, else a Debian 13 root it runs chrooted in
	version keepalived.Version
}

func flavours(t *testing.T) []flavour {
	t.Helper()
	v, err := keepalivedVersion("")
	if err != nil {
		t.Fatalf("keepalived on this machine: %v", err)
	}
	fs := []flavour{{name: "keepalived-" + v.String(), version: v}}
	if root := os.Getenv("PVC_DEBIAN13_ROOT"); root != "" {
		v, err := keepalivedVersion(root)
		if err != nil {
			t.Fatalf("PVC_DEBIAN13_ROOT=%s: %v", root, err)
		}
		fs = append(fs, flavour{name: "keepalived-" + v.String() + "-debian13", root: root, version: v})
	}
	return fs
}

func keepalivedVersion(root string) (keepalived.Version, error) {
	cmd := exec.Command("/usr/sbin/keepalived", "--version")
	if root != "" {
		cmd = exec.Command("chroot", root, "/usr/sbin/keepalived", "--version")
	}
	out, _ := cmd.CombinedOutput()
	return keepalived.VersionFromOutput(out)
}

// eachKeepalived runs fn for every flavour, in a fresh lab.
func eachKeepalived(t *testing.T, fn func(t *testing.T, l *lab)) {
	requireRoot(t)
	for _, f := range flavours(t) {
		t.Run(f.name, func(t *testing.T) { fn(t, newLab(t, f)) })
	}
}

var (
	checkOnce sync.Once
	checkBin  string
	checkDir  string // removed by TestMain
	checkErr  error
)

// checkBinary is the check to test: $PVC_BIN, or a static build of this
// repository's command (it must run inside a Debian 13 root too).
func checkBinary(t *testing.T) string {
	t.Helper()
	checkOnce.Do(func() {
		if p := os.Getenv("PVC_BIN"); p != "" {
			checkBin, checkErr = p, nil
			if !filepath.IsAbs(p) {
				checkErr = fmt.Errorf("PVC_BIN must be absolute, not %q", p)
			}
			return
		}
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-build-", labPrefix, os.Getpid()))
		if err != nil {
			checkErr = err
			return
		}
		checkDir = dir
		checkBin = filepath.Join(dir, "patroni-vip-check")
		for _, pkg := range []string{"../..", "../../cmd/patroni-vip-check-setup"} {
			cmd := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", dir+"/", pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				checkErr = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	if checkErr != nil {
		t.Fatal(checkErr)
	}
	return checkBin
}

// lab is one node: a namespace, keepalived, a Patroni stand-in.
type lab struct {
	t      *testing.T
	f      flavour
	ns     string
	work   string // the work directory, as this process sees it
	inside string // the same directory as keepalived sees it
	patr   *standin
	ka     *exec.Cmd
	kalog  *syncBuffer
	client string // the client namespace, once made
	confs  int    // configurations written
}

var labSeq struct {
	sync.Mutex
	n int
}

func newLab(t *testing.T, f flavour) *lab {
	t.Helper()
	labSeq.Lock()
	labSeq.n++
	n := labSeq.n
	labSeq.Unlock()
	l := &lab{t: t, f: f, ns: fmt.Sprintf("%s%d-%d", labPrefix, os.Getpid(), n), kalog: &syncBuffer{}}
	base := os.TempDir()
	if f.root != "" {
		base = filepath.Join(f.root, "tmp")
	}
	work, err := os.MkdirTemp(base, fmt.Sprintf("%s%d-", labPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	l.work, l.inside = work, strings.TrimPrefix(work, f.root)
	t.Cleanup(func() { os.RemoveAll(work) })
	must(t, os.Chmod(work, 0o755)) // keepalived's script security judges it
	for _, d := range []string{"bin", "unsafe"} {
		must(t, os.Mkdir(filepath.Join(work, d), 0o755))
	}
	must(t, os.Chmod(filepath.Join(work, "unsafe"), 0o777)) // not 1777: a sticky directory passes
	must(t, os.Mkdir(filepath.Join(work, "state"), 0o700))
	l.install("bin/patroni-vip-check", checkBinary(t))
	l.write("patroni.yml", "name: node1\nrestapi:\n  listen: "+nodeAddr+":8008\n  connect_address: "+nodeAddr+":8008\n"+
		"postgresql:\n  listen: 0.0.0.0:5432\n  connect_address: "+nodeAddr+":5432\n", 0o644)

	t.Cleanup(func() { deleteNetns(l.ns) })
	for _, args := range [][]string{
		{"netns", "add", l.ns},
		{"-n", l.ns, "link", "set", "lo", "up"},
		{"-n", l.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"},
		{"-n", l.ns, "link", "set", "eth0", "up"},
		{"-n", l.ns, "link", "set", "eth0peer", "up"},
		{"-n", l.ns, "addr", "add", nodeAddr + "/24", "dev", "eth0"},
	} {
		ip(t, args...)
	}
	l.patr = newStandin(t, l.ns, nodeAddr+":8008")
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// path is a work file as keepalived sees it.
func (l *lab) path(rel string) string { return filepath.Join(l.inside, rel) }

func (l *lab) write(rel, data string, mode os.FileMode) {
	l.t.Helper()
	p := filepath.Join(l.work, rel)
	must(l.t, os.WriteFile(p, []byte(data), mode))
	must(l.t, os.Chmod(p, mode))
}

func (l *lab) install(rel, from string) {
	l.t.Helper()
	data, err := os.ReadFile(from)
	must(l.t, err)
	l.write(rel, string(data), 0o755)
}

// withClient moves the veth's other end into a client namespace at
// 198.51.100.50, to reach the VIP from outside the node.
func (l *lab) withClient() string {
	l.t.Helper()
	l.client = l.ns + "-c"
	l.t.Cleanup(func() { deleteNetns(l.client) })
	ip(l.t, "netns", "add", l.client)
	ip(l.t, "-n", l.ns, "link", "set", "eth0peer", "netns", l.client)
	ip(l.t, "-n", l.client, "link", "set", "lo", "up")
	ip(l.t, "-n", l.client, "link", "set", "eth0peer", "up")
	ip(l.t, "-n", l.client, "addr", "add", client+"/24", "dev", "eth0peer")
	return l.client
}

// setup is the configuration the generator writes for this lab's node
// and keepalived, with the check where the lab installed it.
func (l *lab) setup(mode vipconf.Mode, v keepalived.Version) vipconf.Setup {
	return vipconf.Setup{
		Mode: mode, Keepalived: v,
		Binary:     l.path("bin/patroni-vip-check"),
		URL:        "http://" + nodeAddr + ":8008/primary",
		CheckFlags: []string{"--state-dir", l.path("state"), "--log", "none"},
		Node:       netip.MustParseAddr(nodeAddr), Peers: []netip.Addr{netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")},
		Interface: "eth0", VIP: netip.MustParsePrefix(vipAddr + "/24"), Label: "eth0:1",
		RouterID: 51, Priority: 100,
		TrackFile: l.path("run/eligible"),
	}
}

// conf renders the generated configuration for this keepalived, each
// old text replaced by its new one, into a new file of the work
// directory; its path as keepalived sees it.
func (l *lab) conf(mode vipconf.Mode, v keepalived.Version, edits ...string) string {
	l.t.Helper()
	data, err := vipconf.Render(l.setup(mode, v))
	must(l.t, err)
	text := string(data)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			l.t.Fatalf("no %q in the generated configuration", edits[i])
		}
		text = strings.ReplaceAll(text, edits[i], edits[i+1])
	}
	l.confs++
	name := fmt.Sprintf("keepalived-%d.conf", l.confs)
	l.write(name, text, 0o644)
	return l.path(name)
}

// wrap is argv run in the lab's namespace (and root, with /proc and any
// extra mounts in a private mount namespace).
func (l *lab) wrap(ns string, mounts string, argv ...string) []string {
	if l.f.root == "" && mounts == "" {
		return append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	script := mounts
	if l.f.root != "" {
		script += fmt.Sprintf("mount -t proc pvc-proc %q/proc && exec chroot %q", l.f.root, l.f.root)
	} else {
		script += "exec"
	}
	script += ` "$@"`
	return append([]string{"ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "sh"}, argv...)
}

// start runs keepalived in the foreground with the lab's pid files.
func (l *lab) start(conf string) { l.startIn("", conf) }

// startIn is start with extra mounts (shell commands, as wrap takes them).
func (l *lab) startIn(mounts, conf string) {
	l.t.Helper()
	l.stop()
	l.kalog = &syncBuffer{}
	pid := func(n string) string { return l.path(n + ".pid") }
	argv := l.wrap(l.ns, mounts, "/usr/sbin/keepalived", "-n", "-l", "-D", "-f", conf,
		"-p", pid("keepalived"), "-r", pid("vrrp"), "-c", pid("checkers"), "-b", pid("bfd"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = l.kalog, l.kalog
	cmd.SysProcAttr = setpgid()
	must(l.t, cmd.Start())
	l.ka = cmd
	l.t.Cleanup(l.stop)
}

// setpgid puts a process in a group of its own, to end it with all it started.
func setpgid() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// stop ends keepalived by its process group: SIGTERM, SIGKILL 5 s later.
func (l *lab) stop() {
	if l.ka == nil {
		return
	}
	cmd := l.ka
	l.ka = nil
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (l *lab) vipHeld() bool {
	out, _ := exec.Command("ip", "-n", l.ns, "-4", "addr", "show", "dev", "eth0").Output()
	return strings.Contains(string(out), "inet "+vipAddr+"/")
}

// eventually waits up to d for cond.
func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// never watches for d that cond stays false.
func never(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return false
		}
	}
	return true
}

func (l *lab) logHas(s string) bool { return strings.Contains(l.kalog.String(), s) }

// expectLog waits for keepalived to log s.
func (l *lab) expectLog(s string) {
	l.t.Helper()
	if !eventually(10*time.Second, func() bool { return l.logHas(s) }) {
		l.t.Errorf("keepalived %s did not log %q:\n%s", l.f.version, s, l.kalog.String())
	}
}

// expectVIP: keepalived takes the VIP within 10 s.
func (l *lab) expectVIP(why string) {
	l.t.Helper()
	if !eventually(10*time.Second, l.vipHeld) {
		l.t.Errorf("keepalived %s did not take the VIP (%s):\n%s", l.f.version, why, l.kalog.String())
	}
}

// expectVIPGone: keepalived gives the VIP up within 5 s.
func (l *lab) expectVIPGone(why string) {
	l.t.Helper()
	if !eventually(5*time.Second, func() bool { return !l.vipHeld() }) {
		l.t.Errorf("keepalived %s kept the VIP (%s):\n%s", l.f.version, why, l.kalog.String())
	}
}

// expectNoVIP: keepalived does not take the VIP for 3 s (three runs of
// a 1 s check, and a 0.07 s master-down timer many times over).
func (l *lab) expectNoVIP(why string) {
	l.t.Helper()
	if !never(3*time.Second, l.vipHeld) {
		l.t.Errorf("keepalived %s took the VIP (%s):\n%s", l.f.version, why, l.kalog.String())
	}
}

// gated shows a configuration working: while Patroni says 503 the VIP
// stays away, when it says 200 the VIP comes.
func (l *lab) gated(conf string) {
	l.t.Helper()
	l.patr.set(http.StatusServiceUnavailable, 0)
	l.start(conf)
	l.expectLog("VRRP_Script(patroni_primary) failed")
	l.expectNoVIP("Patroni says 503")
	l.patr.set(http.StatusOK, 0)
	l.expectVIP("Patroni says 200")
}

// doctor runs the doctor in keepalived's namespace and root, on conf.
func (l *lab) doctor(conf string) []Finding {
	l.t.Helper()
	return l.doctorWith(conf, "", l.path("bin/patroni-vip-check"))
}

// doctorWith runs it after the mounts, with installed as the check the
// packages install ("" for theirs).
func (l *lab) doctorWith(conf, mounts, installed string) []Finding {
	l.t.Helper()
	exe, err := os.Executable()
	must(l.t, err)
	if l.f.root != "" {
		l.install("doctor.test", exe)
		exe = l.path("doctor.test")
	}
	opts, _ := json.Marshal(Options{
		KeepalivedConf:    conf,
		PatroniConfig:     l.path("patroni.yml"),
		KeepalivedVersion: l.f.version,
		InstalledBinary:   installed,
	})
	argv := l.wrap(l.ns, mounts, exe, "-test.run=^TestDoctorHelper$", "-test.count=1")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(opts))
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("doctor: %v: %s", err, out)
	}
	var fs []Finding
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var f Finding
		if line, ok := strings.CutPrefix(sc.Text(), "FINDING "); ok && json.Unmarshal([]byte(line), &f) == nil {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		l.t.Fatalf("the doctor said nothing: %s", out)
	}
	return fs
}

// TestDoctorHelper is the doctor run by lab.doctor; it does nothing in
// an ordinary run.
func TestDoctorHelper(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("run by the lab only")
	}
	var opts Options
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		t.Fatal(err)
	}
	for _, f := range Run(context.Background(), system.Host{}, opts) {
		line, _ := json.Marshal(f)
		fmt.Printf("FINDING %s\n", line)
	}
}

// expectFinding asserts a finding of that level with every part.
func (l *lab) expectFinding(fs []Finding, level Level, parts ...string) {
	l.t.Helper()
	want(l.t, fs, level, parts...)
}

// expectPasses: the doctor finds no failure.
func (l *lab) expectPasses(fs []Finding) {
	l.t.Helper()
	none(l.t, fs, Failure)
}

// standin answers like a Patroni REST API: GET /primary gets status with
// the JSON a running primary sends, after delay. It counts requests and
// records how long clients that hung up had waited.
type standin struct {
	mu       sync.Mutex
	status   int
	delay    time.Duration
	requests int
	hangups  []time.Duration
}

func newStandin(t *testing.T, ns, addr string) *standin {
	t.Helper()
	s := &standin{status: http.StatusOK}
	ln := listenIn(t, ns, addr)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *standin) set(status int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.delay = status, delay
}

func (s *standin) counts() (int, []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, append([]time.Duration(nil), s.hangups...)
}

func (s *standin) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.hangups = 0, nil
}

const patroniBody = `{"state": "running", "role": "master", "server_version": 150000, "timeline": 1,
 "xlog": {"location": 67108864}, "dcs_last_seen": 1764000000,
 "patroni": {"version": "3.0.2", "scope": "lab", "name": "node1"}}`

func (s *standin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	status, delay := s.status, s.delay
	s.mu.Unlock()
	start := time.Now()
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		s.mu.Lock()
		s.hangups = append(s.hangups, time.Since(start))
		s.mu.Unlock()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, patroniBody)
}

// listenIn listens on addr inside the named network namespace: the
// socket is made by a thread that joined it, and serves from anywhere.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// inNetns runs fn on a thread in the namespace; the thread is never
// given back to the scheduler, so nothing else runs there by accident.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dialFrom connects to addr from inside ns, within timeout.
func dialFrom(ns, addr string, timeout time.Duration) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		return nil
	})
}

// serveIn answers every connection to addr in ns with "ok" (PostgreSQL,
// as far as reaching it goes).
func serveIn(t *testing.T, ns, addr string) {
	ln := listenIn(t, ns, addr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
