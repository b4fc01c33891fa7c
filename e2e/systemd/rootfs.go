package systemd

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/rootfs"
)

//go:embed bookworm.packages
var bookwormPackages string

// Bookworm is the root the units boot in: Debian 12's systemd 252 and what
// bookworm.packages adds. Built by debootstrap once, then found in rootfs's cache (keyed
// by the package list) by every later run.
func Bookworm() (rootfs.Spec, error) {
	pkgs, err := rootfs.ParsePackages(bookwormPackages)
	if err != nil {
		return rootfs.Spec{}, fmt.Errorf("systemd: bookworm.packages: %w", err)
	}
	return rootfs.Spec{Name: "systemd-bookworm", Suite: "bookworm", Variant: "minbase", Packages: pkgs}, nil
}

// EnsureRoot returns the root of spec, building it first if the cache has none. Close the
// root when no container uses it any more.
func EnsureRoot(ctx context.Context, spec rootfs.Spec, logf func(string, ...any)) (*rootfs.Root, error) {
	return rootfs.Ensure(ctx, spec, rootfs.Options{Logf: logf})
}
