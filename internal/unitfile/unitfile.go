// Package unitfile reads a systemd service's command line as systemd
// does: a unit file's settings (systemd.syntax(7)), an Exec line split,
// its specifiers resolved (systemd.unit(5), "Specifiers": %i, %I, %%...)
// and its variables expanded (systemd.service(5), "Command lines") with
// those of its environment files (systemd.exec(5), EnvironmentFile=). The
// doctor reads the watch services' commands with it, template instances
// included, and the end-to-end harness runs the shipped units by it, so
// that both read them as systemd would.
package unitfile

import (
	"fmt"
	"strings"
)

// ParseEnv reads an environment file: KEY=VALUE lines, # and ; comments,
// values in single or double quotes, a backslash continuing a line.
func ParseEnv(text string) map[string]string {
	env := map[string]string{}
	var pending string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if pending != "" {
			line = pending + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSuffix(line, "\\")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimPrefix(strings.TrimSpace(k), "export ")
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// Command splits an Exec line into its prefixes (the characters "-@:+!"
// systemd reads before the path) and its arguments, expanding variables:
// "$NAME" alone as a word is split on whitespace into words (none if
// unset or empty), "${NAME}" is replaced within its word. Double and
// single quotes group words. Specifiers ("%i") are left as written: a
// unit's line is read with Specifiers.Command.
func Command(line string, env map[string]string) (prefix string, argv []string, err error) {
	return command(line, env, nil)
}

// command is Command with each word's specifiers resolved by expand
// first, when it is not nil.
func command(line string, env map[string]string, expand func(string) (string, error)) (prefix string, argv []string, err error) {
	line = strings.TrimSpace(line)
	for len(line) > 0 && strings.ContainsRune("-@:+!", rune(line[0])) {
		prefix += line[:1]
		line = line[1:]
	}
	words, err := split(line)
	if err != nil {
		return "", nil, err
	}
	for _, w := range words {
		if expand != nil {
			if w.text, err = expand(w.text); err != nil {
				return "", nil, err
			}
		}
		if !w.quoted && strings.HasPrefix(w.text, "$") && !strings.HasPrefix(w.text, "${") && isName(w.text[1:]) {
			argv = append(argv, strings.Fields(env[w.text[1:]])...)
			continue
		}
		argv = append(argv, expandBraces(w.text, env))
	}
	if len(argv) == 0 {
		return "", nil, fmt.Errorf("empty command")
	}
	return prefix, argv, nil
}

type word struct {
	text   string
	quoted bool
}

func split(s string) ([]word, error) {
	var out []word
	var cur strings.Builder
	inWord, quoted := false, false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			if c == '\\' && i+1 < len(s) && quote == '"' {
				i++
				c = s[i]
			}
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord, quoted = c, true, true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, word{cur.String(), quoted})
				cur.Reset()
				inWord, quoted = false, false
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, word{cur.String(), quoted})
	}
	return out, nil
}

func expandBraces(s string, env map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(env[s[i+2:i+j]])
		s = s[i+j+1:]
	}
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
