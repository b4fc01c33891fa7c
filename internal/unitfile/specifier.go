package unitfile

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Specifiers are what a unit's "%x" specifiers stand for, as the system
// manager resolves them when it loads the unit (systemd.unit(5),
// "Specifiers"; src/core/unit-printf.c and src/shared/specifier.c): the
// unit's own name, its fragment, and the host's values, which only the
// caller knows.
type Specifiers struct {
	// Unit is the unit's full name: "patroni-vip-check@replica.service".
	Unit string
	// Fragment is the unit file's path (%y, %Y), "" if unknown.
	Fragment string
	// Host holds the values of the host's specifiers that the caller
	// knows (%H, %l, %m, %b, %v, %a, %o, %w...), by letter. One that is
	// used and not given is an error: systemd would resolve it.
	Host map[byte]string
}

// maxExpanded bounds an expanded word, as systemd bounds a line
// (PATH_MAX for a command's path, LONG_LINE_MAX for the rest).
const maxExpanded = 1 << 20

// Expand resolves the specifiers of s as systemd does: "%%" is "%", a
// known letter its value, an unknown letter or digit an error (systemd
// refuses the line), "%" before any other character or at the end is
// kept as written.
func (sp Specifiers) Expand(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			b.WriteByte('%') // a stray % at the end stays
			break
		}
		i++
		c = s[i]
		switch {
		case c == '%':
			b.WriteByte('%')
		case isAlnum(c):
			v, err := sp.value(c)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		default:
			b.WriteByte('%')
			b.WriteByte(c)
		}
		if b.Len() > maxExpanded {
			return "", fmt.Errorf("%q expands to more than %d bytes", clip(s), maxExpanded)
		}
	}
	return b.String(), nil
}

// value is what the specifier letter c stands for in a system unit.
func (sp Specifiers) value(c byte) (string, error) {
	prefix, instance, _ := splitName(sp.Unit)
	switch c {
	case 'n':
		return sp.Unit, nil
	case 'N':
		return strings.TrimSuffix(sp.Unit, path.Ext(sp.Unit)), nil
	case 'p':
		return prefix, nil
	case 'P':
		return Unescape(prefix), nil
	case 'i':
		return instance, nil
	case 'I':
		return Unescape(instance), nil
	case 'j':
		return lastComponent(prefix), nil
	case 'J':
		return Unescape(lastComponent(prefix)), nil
	case 'f':
		// The instance (else the prefix) as a path: unescaped, with a
		// leading slash.
		name := instance
		if name == "" {
			name = prefix
		}
		return "/" + strings.TrimPrefix(Unescape(name), "/"), nil
	case 'y':
		if sp.Fragment == "" {
			return "", fmt.Errorf("specifier %%y: the unit's file is not known")
		}
		return sp.Fragment, nil
	case 'Y':
		if sp.Fragment == "" {
			return "", fmt.Errorf("specifier %%Y: the unit's file is not known")
		}
		return path.Dir(sp.Fragment), nil
	}
	// The system manager's directories and user (root), the same on
	// every host.
	if v, ok := systemValues[c]; ok {
		if c == 'd' {
			return v + "/" + sp.Unit, nil
		}
		return v, nil
	}
	if v, ok := sp.Host[c]; ok {
		return v, nil
	}
	if strings.IndexByte(hostLetters, c) >= 0 {
		return "", fmt.Errorf("specifier %%%c: the host's value is not known here", c)
	}
	return "", fmt.Errorf("unknown specifier %%%c (systemd refuses the line)", c)
}

// systemValues are what the system manager (not a user's) gives the
// specifiers that do not depend on the unit or the host.
var systemValues = map[byte]string{
	't': "/run",
	'S': "/var/lib",
	'C': "/var/cache",
	'L': "/var/log",
	'E': "/etc",
	'T': "/tmp",
	'V': "/var/tmp",
	'D': "/usr/share",
	'd': "/run/credentials", // then "/" and the unit's name
	'h': "/root",
	's': "/bin/sh",
	'u': "root",
	'U': "0",
	'g': "root",
	'G': "0",
}

// hostLetters are the specifiers whose values only the host knows:
// architecture, OS release fields, boot and machine ids, host names,
// kernel release, and the deprecated cgroup ones.
const hostLetters = "aAbBHlmMoqvwWcrR"

// splitName splits "prefix@instance.type" into its prefix and instance
// ("" for a unit that is no template's instance).
func splitName(unit string) (prefix, instance, typ string) {
	name := unit
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name, typ = name[:i], name[i+1:]
	}
	prefix, instance, _ = strings.Cut(name, "@")
	return prefix, instance, typ
}

// lastComponent is what follows the prefix's last dash, the prefix if
// it has none.
func lastComponent(prefix string) string {
	if i := strings.LastIndexByte(prefix, '-'); i >= 0 {
		return prefix[i+1:]
	}
	return prefix
}

// Unescape undoes systemd-escape on a unit name's part: "-" is "/",
// "\xNN" the byte NN; anything else is itself.
func Unescape(s string) string {
	if !strings.ContainsAny(s, `-\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-':
			b.WriteByte('/')
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x':
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Command is Command for a line of this unit: each word is split and
// unquoted, its specifiers resolved (systemd does so when it loads the
// unit), then its variables expanded (when it starts the command).
func (sp Specifiers) Command(line string, env map[string]string) (prefix string, argv []string, err error) {
	return command(line, env, sp.Expand)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// clip bounds a value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
