// Command pvc-probe tries, from inside a unit's sandbox, what its arguments name and
// prints one line for each, "OP ARG: ok" or "OP ARG: error: ...", so that a test can
// compare what the sandbox allows with what the service needs. Run as an ExecStartPre=
// of the unit under test, it runs with the same sandbox as the service's ExecStart=.
// It exits 0 whatever it finds, so that the service then starts.
//
//	read:FILE           open and read the file
//	list:DIR            read the directory
//	write:FILE          create the file, write to it, remove it
//	inotify:DIR         watch the directory, say "watching", and wait (10 s at most)
//	                    for one event in it
//	connect:HOST:PORT   open a TCP connection
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	for _, arg := range os.Args[1:] {
		op, target, _ := strings.Cut(arg, ":")
		if err := probe(op, target); err != nil {
			fmt.Printf("%s %s: error: %v\n", op, target, err)
		} else {
			fmt.Printf("%s %s: ok\n", op, target)
		}
	}
}

func probe(op, target string) error {
	switch op {
	case "read":
		_, err := os.ReadFile(target)
		return err
	case "list":
		_, err := os.ReadDir(target)
		return err
	case "write":
		if err := os.WriteFile(target, []byte("probe\n"), 0o644); err != nil {
			return err
		}
		return os.Remove(target)
	case "inotify":
		return inotify(target)
	case "connect":
		c, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
	return errors.New("unknown probe")
}

func inotify(dir string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVED_TO|unix.IN_ATTRIB); err != nil {
		return err
	}
	fmt.Printf("inotify %s: watching\n", dir)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 10_000)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("no event within 10s")
	}
	buf := make([]byte, 4096)
	if n, err = unix.Read(fd, buf); err != nil {
		return err
	}
	if n < unix.SizeofInotifyEvent {
		return fmt.Errorf("short inotify read: %d bytes", n)
	}
	nameLen := int(binary.NativeEndian.Uint32(buf[12:16]))
	name := bytes.TrimRight(buf[unix.SizeofInotifyEvent:min(n, unix.SizeofInotifyEvent+nameLen)], "\x00")
	fmt.Printf("inotify %s: event %s\n", dir, name)
	return nil
}
