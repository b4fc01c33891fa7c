package cluster

// Events, to the millisecond, beside the timeline's samples: when the VIP was added to
// or removed from each node (the kernel's own notifications, read as they come), and
// when each PostgreSQL said it was ready to accept connections (its own log line). The
// timeline samples every PollInterval, which blurs a delay of a few tens of
// milliseconds by as much; these do not.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AddrEvent is the VIP added to (Added) or removed from a node's interface.
type AddrEvent struct {
	At    time.Time
	Node  string
	Added bool
}

// rtmgrpIPv4Ifaddr is RTMGRP_IPV4_IFADDR from <linux/rtnetlink.h>: the multicast group
// of IPv4 address changes.
const rtmgrpIPv4Ifaddr = 0x10

// addrWatch reads each node's IPv4 address notifications and keeps those of the VIP.
type addrWatch struct {
	mu     sync.Mutex
	events []AddrEvent
	fds    []int
	stopc  chan struct{}
	wg     sync.WaitGroup
}

// watchAddrs subscribes, in each node's namespace, to its address changes.
func (c *Cluster) watchAddrs() (*addrWatch, error) {
	w := &addrWatch{stopc: make(chan struct{})}
	for _, n := range c.nodes {
		fd := -1
		err := inNetns(n.NS, func() error {
			var err error
			fd, err = syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
			return err
		})
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("netlink socket in %s: %w", n.NS, err)
		}
		w.fds = append(w.fds, fd)
		// A bounded wait, so that stop is noticed.
		tv := syscall.NsecToTimeval(int64(200 * time.Millisecond))
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			w.stop()
			return nil, err
		}
		if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpIPv4Ifaddr}); err != nil {
			w.stop()
			return nil, fmt.Errorf("netlink in %s: %w", n.NS, err)
		}
		w.wg.Add(1)
		go w.read(fd, n.Name)
	}
	return w, nil
}

func (w *addrWatch) read(fd int, node string) {
	defer w.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-w.stopc:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		at := time.Now()
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.ENOBUFS) {
				// Notifications were lost: the record would lie about this node.
				w.add(AddrEvent{At: at, Node: node + "?"})
				continue
			}
			return
		}
		for _, ev := range vipEvents(buf[:n]) {
			ev.At, ev.Node = at, node
			w.add(ev)
		}
	}
}

// vipEvents reads a buffer of rtnetlink messages: the VIP's additions and removals.
func vipEvents(buf []byte) []AddrEvent {
	msgs, err := syscall.ParseNetlinkMessage(buf)
	if err != nil {
		return nil
	}
	var out []AddrEvent
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR && m.Header.Type != syscall.RTM_DELADDR {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFA_LOCAL && net.IP(a.Value).String() == VIP {
				out = append(out, AddrEvent{Added: m.Header.Type == syscall.RTM_NEWADDR})
			}
		}
	}
	return out
}

func (w *addrWatch) add(e AddrEvent) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

func (w *addrWatch) stop() {
	if w == nil {
		return
	}
	select {
	case <-w.stopc:
		return
	default:
		close(w.stopc)
	}
	w.wg.Wait()
	for _, fd := range w.fds {
		syscall.Close(fd)
	}
}

// VIPEvents are the VIP's additions and removals on every node, oldest first, since the
// cluster's network came up. A Node ending in "?" says notifications were lost there.
func (c *Cluster) VIPEvents() []AddrEvent {
	if c.addrs == nil {
		return nil
	}
	c.addrs.mu.Lock()
	defer c.addrs.mu.Unlock()
	return append([]AddrEvent(nil), c.addrs.events...)
}

// readyLine is what PostgreSQL logs when it starts to accept read-write connections: at
// the end of a promotion, or when a primary starts. A replica says "ready to accept
// read-only connections".
const readyLine = "database system is ready to accept connections"

// ReadyTimes are the times at which the node's PostgreSQL logged that it was ready to
// accept connections as a primary, from its log (Patroni's, which carries PostgreSQL's
// output; stamped by PostgreSQL to the millisecond, log_line_prefix '%m [%p] ').
func (n *Node) ReadyTimes() ([]time.Time, error) {
	f, err := os.Open(n.PatroniLogPath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasSuffix(line, readyLine) {
			continue
		}
		at, err := pgLogTime(line)
		if err != nil {
			return nil, err
		}
		out = append(out, at)
	}
	return out, sc.Err()
}

// pgLogTime reads the time PostgreSQL stamps a log line with: "2026-12-04 17:00:47.832
// UTC [18079] LOG: ...". The harness's programs run with the machine's clock and, in
// every stack here, log in UTC; another zone is refused rather than guessed.
func pgLogTime(line string) (time.Time, error) {
	f := strings.Fields(line)
	if len(f) < 3 || (f[2] != "UTC" && f[2] != "GMT") {
		return time.Time{}, fmt.Errorf("PostgreSQL log line without a UTC time: %q", line)
	}
	return time.ParseInLocation("2006-01-02 15:04:05.000", f[0]+" "+f[1], time.UTC)
}

// Exact is what the events say of a movement, where the timeline's samples would blur
// it.
type Exact struct {
	// Ready: from the trigger until the new primary's PostgreSQL logged that it accepts
	// connections (the last time it did before the VIP came to stay), -1 if it did not.
	Ready time.Duration
	// Gone: until the VIP was first removed from the old primary, -1 if it was not.
	Gone time.Duration
	// VIPOn: until the VIP was added to the new primary, to stay; -1 if it was not.
	VIPOn time.Duration
	// NoVIP and Double: time with the VIP on no node and on two or more, from the
	// trigger to the end of the movement's record (reachable or not).
	NoVIP, Double time.Duration
	// Lost: the kernel dropped notifications meanwhile, so the figures are unsure.
	Lost bool
}

// Follow is (c)−(a) from the events: from PostgreSQL ready on the new primary to the
// VIP added there; -1 if either did not happen.
func (e Exact) Follow() time.Duration {
	if e.Ready < 0 || e.VIPOn < 0 {
		return -1
	}
	return e.VIPOn - e.Ready
}

// Exact measures m again from the events, over the same record: from its trigger to its
// last sample.
func (c *Cluster) Exact(m Movement) (Exact, error) {
	e := Exact{Ready: -1, Gone: -1, VIPOn: -1}
	if len(m.Timeline) == 0 {
		return e, errors.New("no record")
	}
	end := m.Timeline[len(m.Timeline)-1].At
	holders := map[string]bool{}
	var last time.Time
	span := func(to time.Time) {
		from := last
		if from.Before(m.Trigger) {
			from = m.Trigger
		}
		if to.After(from) {
			switch {
			case len(holders) == 0:
				e.NoVIP += to.Sub(from)
			case len(holders) > 1:
				e.Double += to.Sub(from)
			}
		}
		last = to
	}
	var vipOn time.Time
	for _, ev := range c.VIPEvents() {
		if ev.At.After(end) {
			break
		}
		if strings.HasSuffix(ev.Node, "?") {
			e.Lost = e.Lost || !ev.At.Before(m.Trigger)
			continue
		}
		span(ev.At)
		if ev.Added {
			holders[ev.Node] = true
		} else {
			delete(holders, ev.Node)
		}
		if ev.Node == m.Old && !ev.Added && e.Gone < 0 && !ev.At.Before(m.Trigger) {
			e.Gone = ev.At.Sub(m.Trigger)
		}
		if ev.Node == m.New && !ev.At.Before(m.Trigger) {
			if ev.Added {
				vipOn = ev.At
			} else {
				vipOn = time.Time{}
			}
		}
	}
	span(end)
	if !vipOn.IsZero() {
		e.VIPOn = vipOn.Sub(m.Trigger)
	}
	if m.New == "" {
		return e, nil
	}
	ready, err := c.Node(m.New).ReadyTimes()
	if err != nil {
		return e, err
	}
	for _, at := range ready {
		if at.Before(m.Trigger) || at.After(end) || (!vipOn.IsZero() && at.After(vipOn)) {
			continue
		}
		e.Ready = at.Sub(m.Trigger)
	}
	return e, nil
}
