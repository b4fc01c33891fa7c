package doctor

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// The doctor's parsers of what the machine says: tmpfiles.d files,
// systemctl's ExecStart and show, keepalived's command line, a track file.
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

// FuzzParseShow: whatever systemctl show prints, the unit's settings are
// read without a panic, and a unit read as loaded has options' files.
func FuzzParseShow(f *testing.F) {
	f.Fuzz(func(t *testing.T, out string) {
		p := parseShow(out, "patroni-vip-check@replica.service")
		if p.loaded && len(p.envFiles) == 0 {
			t.Fatalf("loaded, no options' files: %+v", p)
		}
		if !p.loaded && p.state == "" && strings.Contains(out, "LoadState=") {
			t.Fatalf("neither loaded nor in a state: %+v", p)
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

// FuzzReadCommand: any script command, as keepalived splits it (words
// separated by NUL here): reading it never panics, and what it finds is
// made of the command's own words.
func FuzzReadCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		c := readCommand(args)
		if c.script != "" && !slices.Contains(args, c.script) {
			t.Fatalf("sh -c text %q is not a word of %q", c.script, args)
		}
		if c.script == "" {
			for _, a := range c.argv {
				if !slices.Contains(args, a) {
					t.Fatalf("argv word %q is not a word of %q", a, args)
				}
			}
		}
		for _, cmd := range shellCommands(line) {
			if len(cmd) == 0 {
				t.Fatalf("an empty command from %q", line)
			}
		}
		for _, u := range urls(args) {
			readURL(u)
		}
	})
}
