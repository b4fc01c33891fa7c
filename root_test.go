package main

import (
	"os"
	"testing"
)

// needRoot skips a test that needs root (namespaces, mounts, other users),
// unless PVC_REQUIRE_ROOT is set: CI runs the tests as root with it, so
// that a root-only test that did not run is a failure, not a skip.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("PVC_REQUIRE_ROOT") != "" {
		t.Fatal("needs root, and PVC_REQUIRE_ROOT is set")
	}
	t.Skip("needs root")
}
