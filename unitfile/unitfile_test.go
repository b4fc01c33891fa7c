package unitfile

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The shipped unit, read as systemd reads it.
func TestShippedUnit(t *testing.T) {
	b, err := os.ReadFile("../packaging/patroni-vip-check.service")
	if err != nil {
		t.Fatal(err)
	}
	u, err := Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"Type": "notify", "Restart": "always", "WatchdogSec": "1s", "WatchdogSignal": "SIGKILL"} {
		if got := u.Get("Service", key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if got := u.Get("Unit", "Before"); got != "keepalived.service" {
		t.Errorf("Before=%q", got)
	}
	paths, optional := u.EnvironmentFiles()
	if !slices.Equal(paths, []string{"/etc/default/patroni-vip-check", "/etc/sysconfig/patroni-vip-check"}) || !optional[0] || !optional[1] {
		t.Errorf("EnvironmentFile %v %v", paths, optional)
	}
	env := ParseEnv("# the node's own URL\nPATRONI_VIP_CHECK_ARGS=\"--interval 200ms http://198.51.100.11:8008/primary\"\n")
	_, argv, err := Command(u.Get("Service", "ExecStart"), env)
	if err != nil || !slices.Equal(argv, []string{"/usr/bin/patroni-vip-check", "watch", "--interval", "200ms", "http://198.51.100.11:8008/primary"}) {
		t.Errorf("ExecStart %q (%v)", argv, err)
	}
	_, argv, _ = Command(u.Get("Service", "ExecStart"), nil)
	if !slices.Equal(argv, []string{"/usr/bin/patroni-vip-check", "watch"}) {
		t.Errorf("ExecStart without the variable: %q", argv)
	}
	post := u.All("Service", "ExecStopPost")
	if len(post) != 1 {
		t.Fatalf("ExecStopPost %q", post)
	}
	if _, argv, _ := Command(post[0], nil); !slices.Equal(argv, []string{"/usr/bin/rm", "-f", "/run/keepalived-patroni-vip-check/eligible"}) {
		t.Errorf("ExecStopPost %q", argv)
	}
}

func TestCommand(t *testing.T) {
	env := map[string]string{"A": "one two", "B": "x"}
	for line, want := range map[string][]string{
		`/bin/x $A`:           {"/bin/x", "one", "two"},
		`/bin/x "$A"`:         {"/bin/x", "$A"},
		`/bin/x ${A}`:         {"/bin/x", "one two"},
		`/bin/x pre${B}post`:  {"/bin/x", "prexpost"},
		`-/bin/x $UNSET y`:    {"/bin/x", "y"},
		`/bin/x 'a b' "c\"d"`: {"/bin/x", "a b", `c"d`},
		`/bin/x a\ b`:         {"/bin/x", "a b"},
	} {
		_, got, err := Command(line, env)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Command(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	if p, _, _ := Command(`-@/bin/x`, nil); p != "-@" {
		t.Errorf("prefix %q", p)
	}
	if _, _, err := Command(`/bin/x "open`, nil); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestParseEnv(t *testing.T) {
	env := ParseEnv("A=1\n# c\n; c\nB='two words'\nexport C=\"3\"\nD=a\\\nb\nbogus\n")
	for k, want := range map[string]string{"A": "1", "B": "two words", "C": "3", "D": "ab"} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q (%v)", k, env[k], want, env)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, text := range []string{"[Service\nA=1", "A=1", "[Service]\nno equals sign"} {
		if _, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) accepted", text)
		}
	}
}

// FuzzCommand: any Exec line splits or fails; nothing panics, and no word
// holds a variable that was to be split.
func FuzzCommand(f *testing.F) {
	f.Add(`/usr/bin/patroni-vip-check watch $PATRONI_VIP_CHECK_ARGS`, "--interval 200ms http://198.51.100.11:8008/primary")
	f.Add(`-/usr/bin/rm -f "/run/a b" ${X}`, "")
	f.Add(`"unterminated`, "x")
	f.Fuzz(func(t *testing.T, line, value string) {
		_, argv, err := Command(line, map[string]string{"PATRONI_VIP_CHECK_ARGS": value, "X": value})
		if err == nil && len(argv) == 0 {
			t.Fatal("no error and no command")
		}
		u, err := Parse("[Service]\nExecStart=" + line + "\n")
		if err == nil && strings.ContainsRune(line, '\n') && u == nil {
			t.Fatal("nil unit")
		}
	})
}

// TestContinuation: a backslash continues a line with a space, and a comment
// block inside the continuation is skipped (systemd.syntax(7)'s example).
func TestContinuation(t *testing.T) {
	u, err := Parse("[Service]\nExecStart=/usr/bin/patroni-vip-check watch \\\n# the node's URL:\n; (or another)\n    http://198.51.100.11:8008/primary\nRestart=always\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Get("Service", "ExecStart"); got != "/usr/bin/patroni-vip-check watch  http://198.51.100.11:8008/primary" {
		t.Errorf("ExecStart=%q", got)
	}
	if got := u.Get("Service", "Restart"); got != "always" {
		t.Errorf("Restart=%q", got)
	}
}
