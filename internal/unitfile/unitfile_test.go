package unitfile

import (
	"slices"
	"testing"
)

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
	})
}
