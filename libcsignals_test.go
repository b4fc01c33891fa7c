//go:build linux && (amd64 || arm64)

package main

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLibcSignalsIgnored: after ignoreLibcSignals, the kernel holds SIG_IGN
// for signals 32 and 34, and each sent to this very thread is delivered
// and ignored (with the default action this test binary would die). It runs
// natively and, for arm64, under qemu (make unit-arm64), which checks the
// struct's layout on each architecture the packages ship.
func TestLibcSignalsIgnored(t *testing.T) {
	ignoreLibcSignals()
	for _, sig := range []int{32, 34} {
		var old struct {
			handler, flags, restorer uintptr
			mask                     uint64
		}
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			t.Fatalf("rt_sigaction(%d): %v", sig, e)
		}
		if old.handler != 1 {
			t.Errorf("signal %d: handler %#x, want SIG_IGN", sig, old.handler)
		}
		if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.Signal(sig)); err != nil {
			t.Fatalf("tgkill %d: %v", sig, err)
		}
	}
}
