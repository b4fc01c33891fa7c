package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// netnsDir is where `ip netns add` keeps its named namespaces.
const netnsDir = "/run/netns"

// ipCmd runs one iproute2 command and returns its error with the output.
func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNetns runs fn on an OS thread that has joined the named network namespace.
// The thread stays locked and is discarded by the runtime when the goroutine ends,
// so no other goroutine ever runs in that namespace by accident.
// Sockets created by fn belong to the namespace and can be used from any goroutine.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		f, err := os.Open(filepath.Join(netnsDir, name))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		nr, err := sysSetns()
		if err != nil {
			errc <- err
			return
		}
		if _, _, e := syscall.RawSyscall(nr, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
			errc <- fmt.Errorf("setns %s: %w", name, e)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// sysSetns is setns(2)'s number, which package syscall does not define
// (from the kernel's syscall tables: arch/*/entry/syscalls, include/uapi/asm-generic/unistd.h).
func sysSetns() (uintptr, error) {
	switch runtime.GOARCH {
	case "amd64":
		return 308, nil
	case "arm64", "riscv64", "loong64":
		return 268, nil
	case "386":
		return 346, nil
	case "arm":
		return 375, nil
	}
	return 0, errors.New("setns: syscall number unknown on " + runtime.GOARCH)
}

// dialIn returns a DialContext function whose connections start in the named namespace.
func dialIn(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetns(name, func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// netnsInode identifies a named namespace, to find the processes inside it.
func netnsInode(name string) (uint64, error) {
	st, err := os.Stat(filepath.Join(netnsDir, name))
	if err != nil {
		return 0, err
	}
	return st.Sys().(*syscall.Stat_t).Ino, nil
}

// pidsIn lists the processes whose network namespace is one of inodes
// (what `ip netns pids` does, for several namespaces in one pass over /proc).
func pidsIn(inodes map[uint64]bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/ns/net")
		if err != nil {
			continue
		}
		// The link reads "net:[4026532281]".
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
		if err == nil && inodes[ino] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNamespaces SIGKILLs every process inside the named namespaces, by PID, until none is
// left or the deadline passes, then deletes the namespaces. Everything in a namespace this
// package created was started by it, so nothing else is touched.
// slow, if not nil, is told once about the processes still there a second after the
// first SIGKILL (a process in uninterruptible sleep, in an fsync say, dies only when it
// wakes up).
func killNamespaces(names []string, deadline time.Duration, slow func(procs string)) error {
	inodes := map[uint64]bool{}
	for _, n := range names {
		if ino, err := netnsInode(n); err == nil {
			inodes[ino] = true
		}
	}
	start := time.Now()
	end := start.Add(deadline)
	for len(inodes) > 0 {
		pids := pidsIn(inodes)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(end) {
			return fmt.Errorf("processes still running in %v after SIGKILL: %s", names, describePIDs(pids))
		}
		if slow != nil && time.Since(start) > time.Second {
			slow(describePIDs(pids))
			slow = nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var errs []error
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err != nil {
			continue
		}
		if err := ipCmd(context.Background(), "netns", "del", n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// describePIDs names each process with its command and state ("4242 postgres D").
func describePIDs(pids []int) string {
	var out []string
	for _, pid := range pids {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		state := "?"
		if _, after, ok := strings.Cut(string(stat), ") "); ok && after != "" {
			state = after[:1]
		}
		out = append(out, fmt.Sprintf("%d %s %s", pid, strings.TrimSpace(string(comm)), state))
	}
	return strings.Join(out, ", ")
}

// netlinkSock is a NETLINK_ROUTE socket opened inside one network namespace; it answers
// about that namespace whichever thread uses it. It replaces `ip -n NS addr show`, which
// would cost a process per node every 100 ms.
type netlinkSock struct {
	mu  sync.Mutex // one request at a time
	fd  int
	seq uint32
}

func openNetlink(ns string) (*netlinkSock, error) {
	s := &netlinkSock{fd: -1}
	err := inNetns(ns, func() error {
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		s.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket in %s: %w", ns, err)
	}
	tv := syscall.NsecToTimeval(int64(time.Second))
	if err := syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		s.Close()
		return nil, err
	}
	if err := syscall.Bind(s.fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *netlinkSock) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd >= 0 {
		syscall.Close(s.fd)
		s.fd = -1
	}
}

// dump sends one NLM_F_DUMP request and returns the messages of the answer.
func (s *netlinkSock) dump(typ uint16, family uint8) ([]syscall.NetlinkMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil, errors.New("netlink socket closed")
	}
	s.seq++
	seq := s.seq
	req := make([]byte, syscall.NLMSG_HDRLEN+syscall.SizeofRtGenmsg)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], typ)
	binary.NativeEndian.PutUint16(req[6:8], syscall.NLM_F_DUMP|syscall.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:12], seq)
	req[syscall.NLMSG_HDRLEN] = family
	if err := syscall.Sendto(s.fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []syscall.NetlinkMessage
	for {
		// A new buffer each time: the parsed messages point into it.
		buf := make([]byte, 64<<10)
		n, _, err := syscall.Recvfrom(s.fd, buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue // a late answer to an earlier, timed-out request
			}
			switch m.Header.Type {
			case syscall.NLMSG_DONE:
				return out, nil
			case syscall.NLMSG_ERROR:
				return nil, errors.New("netlink: error answer")
			}
			out = append(out, m)
		}
	}
}

// ipv4Addrs lists the IPv4 addresses configured in the namespace (any interface).
func (s *netlinkSock) ipv4Addrs() ([]net.IP, error) {
	msgs, err := s.dump(syscall.RTM_GETADDR, syscall.AF_INET)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFA_LOCAL && len(a.Value) == 4 {
				ips = append(ips, net.IP(a.Value))
			}
		}
	}
	return ips, nil
}

// iffLowerUp is IFF_LOWER_UP from <linux/if.h> (carrier present); package syscall lacks it.
const iffLowerUp = 0x10000

// linksUp reports, for each interface of the namespace, whether it is up with a carrier.
func (s *netlinkSock) linksUp() (map[string]bool, error) {
	msgs, err := s.dump(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		flags := binary.NativeEndian.Uint32(m.Data[8:12]) // ifinfomsg.ifi_flags
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFLA_IFNAME {
				name := strings.TrimRight(string(a.Value), "\x00")
				up[name] = flags&syscall.IFF_UP != 0 && flags&iffLowerUp != 0
			}
		}
	}
	return up, nil
}
