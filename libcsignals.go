//go:build linux && (amd64 || arm64)

package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ignoreLibcSignals ignores signals 32 and 34, which os/signal cannot: the
// runtime leaves them to C libraries (glibc's cancellation signal, musl's
// synccall), so it neither installs a handler nor honours signal.Ignore for
// them, and their default action ends the process. A static Go binary uses
// neither. (Signal 33 is the runtime's own, and harmless.)
//
// The struct is the kernel's struct sigaction as amd64 and arm64 lay it
// out (handler, flags, restorer, mask: arch/x86/include/uapi/asm/signal.h
// and include/uapi/asm-generic/signal.h with SA_RESTORER); other
// architectures differ (no restorer, or another order), hence the build
// constraint. TestLibcSignalsIgnored runs on both, arm64 under qemu
// (make unit-arm64).
func ignoreLibcSignals() {
	act := struct {
		handler, flags, restorer uintptr
		mask                     uint64
	}{handler: 1} // SIG_IGN
	for _, sig := range []uintptr{32, 34} {
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	}
}
