package vipconf

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/unitfile"
)

// setting is one line of a unit file: its section, key and value.
type setting struct{ section, key, value string }

// readUnit reads packaging's unit file name: its settings, in order. The
// shipped units continue no line.
func readUnit(t *testing.T, name string) []setting {
	t.Helper()
	b, err := os.ReadFile("../../packaging/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []setting
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.HasSuffix(l, `\`) {
				t.Fatalf("%s: %q", name, l)
			}
			out = append(out, setting{section, k, v})
		}
	}
	return out
}

// The template unit is the plain unit, but for what makes an instance its
// own: its options' file, its track file (in its command and its command
// after stop), its description, and that it asserts its options. Whatever
// else the plain unit sets (the sandbox, the watchdog, the restarts) it
// sets the same, in the same order.
func TestTemplateUnitIsThePlainOne(t *testing.T) {
	own := []string{"Description", "AssertPathExists", "EnvironmentFile", "ExecStart", "ExecStopPost"}
	strip := func(ss []setting) []setting {
		return slices.DeleteFunc(ss, func(s setting) bool { return slices.Contains(own, s.key) })
	}
	plain, tmpl := readUnit(t, UnitName+".service"), readUnit(t, UnitName+"@.service")
	if p, q := strip(slices.Clone(plain)), strip(slices.Clone(tmpl)); !slices.Equal(p, q) {
		t.Errorf("the template's settings differ from the plain unit's:\nplain    %v\ntemplate %v", p, q)
	}
	var asserts, envs []string
	for _, s := range tmpl {
		switch s.key {
		case "AssertPathExists":
			asserts = append(asserts, s.value)
		case "EnvironmentFile":
			envs = append(envs, s.value)
		}
	}
	want := []string{envFile("%i"), "/etc/sysconfig/" + UnitName + "@%i"}
	if !slices.Equal(asserts, []string{"|" + want[0], "|" + want[1]}) || !slices.Equal(envs, []string{"-" + want[0], "-" + want[1]}) {
		t.Errorf("AssertPathExists %q, EnvironmentFile %q: want each of %q", asserts, envs, want)
	}
}

// What the generator says each watcher runs is what its unit runs: the
// template's command lines, expanded by systemd for an instance, with the
// options the generator writes, are the generator's own, track file
// included. So keepalived.conf names the file the unit keeps.
func TestUnitsRunWhatTheGeneratorSays(t *testing.T) {
	get := func(ss []setting, key string) string {
		for _, s := range ss {
			if s.key == key {
				return s.value
			}
		}
		t.Fatalf("no %s", key)
		return ""
	}
	for _, instance := range []string{"", "pg-a"} {
		s := withRead(lab(Watch, keepalived.Version{Major: 2, Minor: 2, Patch: 7}))
		s.Instance = instance
		if _, err := Render(s); err != nil {
			t.Fatal(err)
		}
		for _, g := range s.gates() {
			unit := readUnit(t, UnitName+".service")
			if g.unit != "" {
				unit = readUnit(t, UnitName+"@.service")
			}
			// systemd's %i is the instance's name, as it appears in the unit's.
			expand := func(line string) string { return strings.ReplaceAll(line, "%i", g.unit) }
			env := unitfile.ParseEnv(`PATRONI_VIP_CHECK_ARGS="` + strings.Join(s.watchArgs(g), " ") + `"`)
			_, start, err := unitfile.Command(expand(get(unit, "ExecStart")), env)
			if err != nil || !slices.Equal(start, s.command(g)) {
				t.Errorf("%s runs %q (%v), the generator says %q", unitName(g.unit), start, err, s.command(g))
			}
			_, post, err := unitfile.Command(expand(get(unit, "ExecStopPost")), env)
			release := append([]string{s.binary(), "watch", "--release"}, s.unitArgs(g)...)
			if err != nil || !slices.Equal(post, release) {
				t.Errorf("%s releases with %q (%v), want %q", unitName(g.unit), post, err, release)
			}
			envs := []string{}
			for _, st := range unit {
				if st.key == "EnvironmentFile" {
					envs = append(envs, expand(st.value))
				}
			}
			if envs[0] != "-"+envFile(g.unit) {
				t.Errorf("%s reads %q, the generator says %s", unitName(g.unit), envs, envFile(g.unit))
			}
		}
	}
}
