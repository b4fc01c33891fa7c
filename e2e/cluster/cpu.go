package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU is the processor time the processes of one node have used, by kind, as the kernel
// counts it (/proc/PID/stat: user and system time, and that of the children each has
// waited for). A check keepalived runs every second lives a few milliseconds: its time
// shows in keepalived's children's time once keepalived has reaped it.
type CPU struct {
	At    time.Time
	Procs map[int]procCPU // by PID
}

type procCPU struct {
	kind  string
	ticks uint64 // utime + stime + cutime + cstime
}

// The kinds a node's processes are counted as.
const (
	CPUPatroni    = "patroni"    // Patroni (Python)
	CPUPostgres   = "postgres"   // the postmaster and its backends, Patroni's own included
	CPUKeepalived = "keepalived" // keepalived, and the checks (or curl) it runs
	CPUWatcher    = "watcher"    // patroni-vip-check watch
	CPUOther      = "other"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// architecture Linux runs on today.
const clockTicks = 100

// CPU reads the node's processes' times now.
func (n *Node) CPU() (CPU, error) {
	ino, err := netnsInode(n.NS)
	if err != nil {
		return CPU{}, err
	}
	u := CPU{At: time.Now(), Procs: map[int]procCPU{}}
	for _, pid := range pidsIn(map[uint64]bool{ino: true}) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm := s[open+1 : end]
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		// After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		var ticks uint64
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			ticks += v
		}
		u.Procs[pid] = procCPU{kind: cpuKind(pid, comm), ticks: ticks}
	}
	return u, nil
}

func cpuKind(pid int, comm string) string {
	switch {
	case comm == "postgres":
		return CPUPostgres
	case strings.HasPrefix(comm, "keepalived") || strings.HasPrefix(comm, "Keepalived"):
		return CPUKeepalived
	case strings.HasPrefix(comm, "patroni-vip-ch"): // comm is cut at 15 bytes
		return CPUWatcher
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), "/patroni\x00") {
		return CPUPatroni
	}
	return CPUOther
}

// Since is the processor time used between earlier and u, per second of wall time, by
// kind and in all. Processes that lived through the whole span count their difference;
// a process that ended meanwhile counts through its parent's children's time, one that
// began meanwhile from zero.
func (u CPU) Since(earlier CPU) (perSecond map[string]time.Duration, total time.Duration) {
	wall := u.At.Sub(earlier.At).Seconds()
	perSecond = map[string]time.Duration{}
	if wall <= 0 {
		return perSecond, 0
	}
	for pid, now := range u.Procs {
		before := earlier.Procs[pid] // zero for a process that began meanwhile
		if before.ticks > now.ticks {
			continue // another process that took a reused PID
		}
		d := time.Duration(float64(now.ticks-before.ticks) * float64(time.Second) / clockTicks / wall)
		perSecond[now.kind] += d
		total += d
	}
	return perSecond, total
}
