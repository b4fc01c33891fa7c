package main

// The commands a person runs to set a node up, keepalived-conf and doctor,
// live in a binary of their own, the way git runs git-foo: the check that
// keepalived starts every second then carries none of their code (a
// keepalived parser, a YAML library, the generator, the doctor), which
// made it 0.9 MB larger and its start slower (README, "Layout").

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
)

// setupName is the set-up binary's name. The packages install it in
// /usr/libexec/patroni-vip-check; a build from source leaves it beside
// this binary.
const setupName = "patroni-vip-check-setup"

// setupPaths are where the set-up binary is looked for, relative to this
// binary: beside it (a build tree), then in its libexec directory.
func setupPaths(self string) []string {
	dir := filepath.Dir(self)
	return []string{
		filepath.Join(dir, setupName),
		filepath.Join(dir, "..", "libexec", "patroni-vip-check", setupName),
	}
}

// runSetup replaces this process with the set-up binary, the same
// arguments and standard streams; it returns only if that fails.
func runSetup(args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "patroni-vip-check: error: %s: cannot find this binary: %s\n", args[0], sink.Clean(err.Error(), sink.MaxMessage))
		return 1
	}
	var tried []string
	for _, p := range setupPaths(self) {
		err := syscall.Exec(p, append([]string{setupName}, args...), os.Environ())
		if errors.Is(err, syscall.ENOENT) {
			tried = append(tried, p)
			continue
		}
		fmt.Fprintf(stderr, "patroni-vip-check: error: %s: running %s: %s\n", args[0], sink.Clean(p, 512), sink.Clean(err.Error(), sink.MaxMessage))
		return 1
	}
	fmt.Fprintf(stderr, "patroni-vip-check: error: %s is in %s, which is not installed (looked for %s)\n",
		args[0], setupName, sink.Clean(fmt.Sprint(tried), 1024))
	return 1
}
