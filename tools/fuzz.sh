#!/bin/sh
# Run every fuzz target of the module for FUZZTIME (default 30s) each. The
# targets are found in the packages' test files, so a new one is fuzzed
# without being listed anywhere. New findings land in the package's
# testdata/fuzz, as `go test -fuzz` leaves them.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
found=0
for dir in $(go list -f '{{.Dir}}' ./...); do
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed 's/^func //; s/($//' | sort -u); do
		found=$((found + 1))
		echo "fuzz: $name in ${dir#"$PWD"/}"
		go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$dir" || exit 1
	done
done
[ "$found" -gt 0 ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
echo "fuzz: $found targets, $fuzztime each"
