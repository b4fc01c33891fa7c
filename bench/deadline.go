package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// A hostile peer: a listener that misbehaves in one way.
type peer struct {
	name string
	addr string
	stop func()
}

// acceptLoop runs handle on every connection until the listener closes.
func acceptLoop(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

func readHead(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(time.Second))
	c.Read(make([]byte, 4096))
	c.SetReadDeadline(time.Time{})
}

func dripForever(c net.Conn, s string) {
	defer c.Close()
	for i := 0; ; i = (i + 1) % len(s) {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostilePeers() ([]peer, error) {
	var peers []peer
	add := func(name string, handle func(net.Conn)) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go acceptLoop(ln, handle)
		peers = append(peers, peer{name, ln.Addr().String(), func() { ln.Close() }})
		return nil
	}
	held := make(chan net.Conn, 1024)
	if err := add("accepts, never answers", func(c net.Conn) { held <- c }); err != nil {
		return nil, err
	}
	if err := add("drips headers (1 byte/50ms)", func(c net.Conn) {
		readHead(c)
		dripForever(c, "HTTP/1.1 200 OK\r\nX-Padding: "+strings.Repeat("a", 200)+"\r\n")
	}); err != nil {
		return nil, err
	}
	if err := add("drips a 200 body (1 byte/50ms)", func(c net.Conn) {
		readHead(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
		dripForever(c, `{"state": "running", "role": "master", "timeline": 4}`)
	}); err != nil {
		return nil, err
	}
	bh, err := blackhole()
	if err != nil {
		return nil, err
	}
	return append(peers, bh), nil
}

// blackhole is a loopback port whose accept queue is full, so that a new
// connect hangs in SYN-SENT as on a firewalled port: a listener with
// backlog 0, never accepting, filled with connections.
func blackhole() (peer, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return peer{}, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return peer{}, err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return peer{}, err
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	var fill []net.Conn
	for i := 0; i < 64; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break // the queue is full: connects now hang
		}
		fill = append(fill, c)
	}
	return peer{"blackholed connect (full accept queue)", addr, func() {
		for _, c := range fill {
			c.Close()
		}
		syscall.Close(fd)
	}}, nil
}

// runDeadline measures the time to exit against each hostile peer, for
// the check with its default deadline and with --timeout 200ms, and for
// curl as configured in the wild (no --max-time), capped.
func runDeadline(ctx context.Context, w io.Writer, bin, curl string, reps int, curlCap time.Duration) error {
	peers, err := hostilePeers()
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()
	type variant struct {
		name     string
		deadline time.Duration // 0: none
		reps     int
		argv     func(url string) []string
	}
	variants := []variant{
		{"patroni-vip-check (default 800ms)", 800 * time.Millisecond, reps, func(u string) []string {
			return []string{bin, "--log", "none", "--no-state", u}
		}},
		{"patroni-vip-check --timeout 200ms", 200 * time.Millisecond, reps, func(u string) []string {
			return []string{bin, "--log", "none", "--no-state", "--timeout", "200ms", u}
		}},
		{"curl -X GET -I --fail", 0, 1, func(u string) []string {
			return []string{curl, "-s", "-o", "/dev/null", "-X", "GET", "-I", "--fail", u}
		}},
	}
	fmt.Fprintf(w, "Time to exit against hostile peers (target: deadline + 20 ms, exit 1). curl is killed at %v.\n\n", curlCap)
	fmt.Fprintf(w, "| peer | command | runs | median ms | max ms | exit statuses | within deadline+20ms |\n|---|---|---:|---:|---:|---|---|\n")
	for _, p := range peers {
		url := "http://" + p.addr + "/primary"
		for _, v := range variants {
			var s series
			codes := map[int]int{}
			for i := 0; i < v.reps; i++ {
				x, err := measure(ctx, v.argv(url), curlCap)
				if err != nil {
					return err
				}
				s = append(s, x)
				codes[x.code]++
			}
			worst := time.Duration(0)
			for _, x := range s {
				worst = max(worst, x.wall)
			}
			within := "n/a (no deadline)"
			if v.deadline > 0 {
				within = "yes"
				if worst > v.deadline+20*time.Millisecond || codes[1] != len(s) {
					within = "NO"
				}
			}
			fmt.Fprintf(w, "| %s | %s | %d | %.1f | %.1f | %s | %s |\n", p.name, v.name, len(s),
				s.median(func(x sample) float64 { return ms(x.wall) }), ms(worst), fmtCodes(codes), within)
		}
	}
	return nil
}

func fmtCodes(codes map[int]int) string {
	var parts []string
	for code := -1; code < 256; code++ {
		if n := codes[code]; n > 0 {
			if code == -1 {
				parts = append(parts, fmt.Sprintf("killed at the cap ×%d", n))
			} else {
				parts = append(parts, fmt.Sprintf("%d ×%d", code, n))
			}
		}
	}
	return strings.Join(parts, ", ")
}
