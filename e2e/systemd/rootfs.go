package systemd

import (
	"context"
	"embed"
	"fmt"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/rootfs"
)

//go:embed *.packages
var packageLists embed.FS

// suites maps each stack, the systemd of a Debian release, to its suite.
var suites = map[string]string{
	"debian12": "bookworm", // systemd 252, the major version of RHEL 9's too
	"debian13": "trixie",   // systemd 257
}

// Stacks is every stack the units can boot on, oldest first.
var Stacks = []string{"debian12", "debian13"}

// Lookup returns the Spec of the root for stack: its Debian suite with systemd and what
// STACK.packages adds. Built by debootstrap once, then found in rootfs's cache (keyed by
// the package list) by every later run.
func Lookup(stack string) (rootfs.Spec, error) {
	suite, ok := suites[stack]
	if !ok {
		return rootfs.Spec{}, fmt.Errorf("systemd: no root for stack %q (have %v)", stack, Stacks)
	}
	b, err := packageLists.ReadFile(stack + ".packages")
	if err != nil {
		return rootfs.Spec{}, fmt.Errorf("systemd: %w", err)
	}
	pkgs, err := rootfs.ParsePackages(string(b))
	if err != nil {
		return rootfs.Spec{}, fmt.Errorf("systemd: %s.packages: %w", stack, err)
	}
	return rootfs.Spec{Name: "systemd-" + stack, Suite: suite, Variant: "minbase", Packages: pkgs}, nil
}

// EnsureRoot returns the root of spec, building it first if the cache has none. Close the
// root when no container uses it any more.
func EnsureRoot(ctx context.Context, spec rootfs.Spec, logf func(string, ...any)) (*rootfs.Root, error) {
	return rootfs.Ensure(ctx, spec, rootfs.Options{Logf: logf})
}
