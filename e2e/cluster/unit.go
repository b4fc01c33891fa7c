package cluster

// The shipped unit file, read as systemd reads it, so that the harness runs
// the watch service as the unit says (service.go).

import (
	"bufio"
	"fmt"
	"strings"
)

// Unit is a unit file: for each section, its keys in order, with every
// value a key was given (Exec and EnvironmentFile keys may repeat).
type Unit map[string][]KV

// KV is one assignment.
type KV struct{ Key, Value string }

// parseUnit reads a unit file. Comments (# and ;) and blank lines are skipped,
// a line ending in a backslash continues on the next. Written here rather
// than with go-systemd's unit package, which this module already has:
// unit.Deserialize refuses lines over 2048 bytes, where systemd reads up to
// 1 MB (systemd.syntax(7)), and it has nothing for Exec lines.
func parseUnit(text string) (Unit, error) {
	u := Unit{}
	section := ""
	var pending string
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending != "" && line != "" && (line[0] == '#' || line[0] == ';') {
			// A comment inside a continuation is skipped, and the line
			// goes on after it (systemd.syntax(7)).
			continue
		}
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSuffix(line, "\\")
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section %q", n, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: not a key=value in a section: %q", n, line)
		}
		u[section] = append(u[section], KV{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return u, sc.Err()
}

// Get returns the last value of key in section, as systemd takes it.
func (u Unit) Get(section, key string) string {
	v := ""
	for _, kv := range u[section] {
		if kv.Key == key {
			v = kv.Value
		}
	}
	return v
}

// All returns every value of key in section; an empty value resets the
// list, as systemd does for ExecStopPost= and EnvironmentFile=.
func (u Unit) All(section, key string) []string {
	var vs []string
	for _, kv := range u[section] {
		if kv.Key == key {
			if kv.Value == "" {
				vs = nil
				continue
			}
			vs = append(vs, kv.Value)
		}
	}
	return vs
}

// EnvironmentFiles are the service's EnvironmentFile= paths; optional is
// true for those with a leading "-", which may be missing.
func (u Unit) EnvironmentFiles() (paths []string, optional []bool) {
	for _, v := range u.All("Service", "EnvironmentFile") {
		opt := strings.HasPrefix(v, "-")
		paths = append(paths, strings.TrimPrefix(v, "-"))
		optional = append(optional, opt)
	}
	return paths, optional
}
