package unitfile

import (
	"os"
	"slices"
	"strings"
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

// FuzzCommand: any Exec line splits or fails; nothing panics, and a line
// without specifiers reads the same as a unit's line.
func FuzzCommand(f *testing.F) {
	f.Add(`/usr/bin/patroni-vip-check watch $PATRONI_VIP_CHECK_ARGS`, "--interval 200ms http://198.51.100.11:8008/primary")
	f.Add(`-/usr/bin/rm -f "/run/a b" ${X}`, "")
	f.Add(`"unterminated`, "x")
	f.Fuzz(func(t *testing.T, line, value string) {
		env := map[string]string{"PATRONI_VIP_CHECK_ARGS": value, "X": value}
		_, argv, err := Command(line, env)
		if err == nil && len(argv) == 0 {
			t.Fatal("no error and no command")
		}
		// A unit's line: the same where it holds no specifier.
		_, unit, uerr := Specifiers{Unit: "patroni-vip-check@replica.service"}.Command(line, env)
		if uerr == nil && len(unit) == 0 {
			t.Fatal("no error and no command")
		}
		if !strings.Contains(line, "%") && (!slices.Equal(argv, unit) || (err == nil) != (uerr == nil)) {
			t.Fatalf("%q: %q, %v without specifiers, %q, %v with", line, argv, err, unit, uerr)
		}
	})
}

func TestSpecifiers(t *testing.T) {
	inst := Specifiers{Unit: "patroni-vip-check@pg-a-replica.service", Fragment: "/usr/lib/systemd/system/patroni-vip-check@.service",
		Host: map[byte]string{'H': "node1.example", 'l': "node1"}}
	plain := Specifiers{Unit: "patroni-vip-check.service"}
	for _, tc := range []struct {
		sp       Specifiers
		in, want string
	}{
		{inst, "/run/keepalived-patroni-vip-check/%i", "/run/keepalived-patroni-vip-check/pg-a-replica"},
		{inst, "%I", "pg/a/replica"},
		{inst, "%n %N %p %P", "patroni-vip-check@pg-a-replica.service patroni-vip-check@pg-a-replica patroni-vip-check patroni/vip/check"},
		{inst, "%j %J %f", "check check /pg/a/replica"},
		{inst, "%y %Y", "/usr/lib/systemd/system/patroni-vip-check@.service /usr/lib/systemd/system"},
		{inst, "%t/x %S %C %L %E %T %V %h %u %U %g %G", "/run/x /var/lib /var/cache /var/log /etc /tmp /var/tmp /root root 0 root 0"},
		{inst, "%d", "/run/credentials/patroni-vip-check@pg-a-replica.service"},
		{inst, "%H %l", "node1.example node1"},
		{inst, "100%% %-x %", "100% %-x %"},
		{inst, "a%%i", "a%i"},
		{plain, "/etc/default/x@%i", "/etc/default/x@"}, // a unit that is no instance has an empty one
		{plain, "%f", "/patroni/vip/check"},
		{Specifiers{Unit: "x@a\\x2db.service"}, "%i %I", `a\x2db a-b`},
	} {
		got, err := tc.sp.Expand(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: Expand(%q) = %q, %v; want %q", tc.sp.Unit, tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"%H", "%m", "%b", "%Z", "%9", "%y"} {
		if got, err := plain.Expand(in); err == nil {
			t.Errorf("Expand(%q) = %q, want an error", in, got)
		}
	}
}

// The template unit's command lines, for an instance, are what systemd
// runs: %i is the instance's name, in the track file and the options' file.
func TestTemplateCommand(t *testing.T) {
	b, err := os.ReadFile("../../packaging/patroni-vip-check@.service")
	if err != nil {
		t.Fatal(err)
	}
	u := Parse(string(b))
	sp := Specifiers{Unit: "patroni-vip-check@replica.service"}
	env := map[string]string{"PATRONI_VIP_CHECK_ARGS": "--pgdata /var/lib/postgresql/15/main http://198.51.100.11:8008/replica?lag=16MB"}
	_, argv, err := sp.Command(u.Value("Service", "ExecStart"), env)
	want := []string{"/usr/bin/patroni-vip-check", "watch", "--track-file=/run/keepalived-patroni-vip-check/replica",
		"--pgdata", "/var/lib/postgresql/15/main", "http://198.51.100.11:8008/replica?lag=16MB"}
	if err != nil || !slices.Equal(argv, want) {
		t.Errorf("ExecStart: %q, %v; want %q", argv, err, want)
	}
	var files []string
	for _, f := range u.Values("Service", "EnvironmentFile") {
		x, err := sp.Expand(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, x)
	}
	if !slices.Equal(files, []string{"-/etc/default/patroni-vip-check@replica", "-/etc/sysconfig/patroni-vip-check@replica"}) {
		t.Errorf("EnvironmentFile: %q", files)
	}
	if _, _, err := sp.Command(`/bin/x %Q`, nil); err == nil {
		t.Error("an unknown specifier is accepted")
	}
}

func TestParse(t *testing.T) {
	u := Parse("# c\n[Unit]\nDescription=x\n[Service]\nExecStart=/bin/a \\\n  --long\nEnvironmentFile=-/etc/a\n; c\nEnvironmentFile=/etc/b\n[Other]\nExecStart=/bin/other\nnonsense\n")
	u.Add("[Service]\nExecStart=\nExecStart=/bin/b\n")
	if got := u.Values("Service", "ExecStart"); !slices.Equal(got, []string{"/bin/b"}) {
		t.Errorf("ExecStart %q: a drop-in's empty assignment clears what came before", got)
	}
	if got := u.Values("Service", "EnvironmentFile"); !slices.Equal(got, []string{"-/etc/a", "/etc/b"}) {
		t.Errorf("EnvironmentFile %q", got)
	}
	if got := Parse("[Service]\nExecStart=/bin/a \\\n  --long\n").Value("Service", "ExecStart"); got != "/bin/a  --long" {
		t.Errorf("a continued line: %q", got)
	}
	if got := u.Value("Unit", "Description"); got != "x" {
		t.Errorf("Description %q", got)
	}
}

// FuzzSpecifiers: any text and unit name expand or fail; nothing panics,
// and text without a "%" comes back as it is.
func FuzzSpecifiers(f *testing.F) {
	f.Fuzz(func(t *testing.T, unit, text string) {
		got, err := Specifiers{Unit: unit}.Expand(text)
		if !strings.Contains(text, "%") && (err != nil || got != text) {
			t.Fatalf("Expand(%q) = %q, %v", text, got, err)
		}
	})
}

// FuzzParse: any text reads as a unit file without a panic, and every
// value Value gives is one Values lists.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		u := Parse(text)
		for _, s := range u.settings {
			if v := u.Value(s.Section, s.Key); v != "" && !slices.Contains(u.Values(s.Section, s.Key), v) {
				t.Fatalf("%s.%s: Value %q not in Values %q", s.Section, s.Key, v, u.Values(s.Section, s.Key))
			}
		}
	})
}
