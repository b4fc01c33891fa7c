package doctor

import (
	"path"
	"strings"
	"testing"
)

// The doctor's parsers of what the machine says: tmpfiles.d files,
// systemctl's ExecStart, keepalived's command line, a track file.
// Seeds: testdata/fuzz.

func FuzzTmpfilesDirectories(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range TmpfilesDirectories(data) {
			if !path.IsAbs(d) || path.Clean(d) != d {
				t.Fatalf("directory %q is not a clean absolute path", d)
			}
		}
	})
}

func FuzzExecStartArgv(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		for _, a := range ExecStartArgv(value) {
			if a == "" || strings.ContainsAny(a, " \t\n") {
				t.Fatalf("argument %q", a)
			}
		}
	})
}

func FuzzConfigArg(f *testing.F) {
	f.Fuzz(func(t *testing.T, cmdline string) {
		if ConfigArg(strings.Split(cmdline, "\x00")) == "" && !strings.Contains(cmdline, "-f") && !strings.Contains(cmdline, "--use-file") {
			t.Fatal("empty configuration path without -f")
		}
	})
}

func FuzzStrtol(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		strtol(data)
	})
}
