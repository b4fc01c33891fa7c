package unitfile

import "strings"

// File is a unit file's settings, in order (systemd.syntax(7)): its
// fragment's, then its drop-ins', as Add reads them.
type File struct {
	settings []Setting
}

// Setting is one KEY=VALUE line of a section.
type Setting struct {
	Section, Key, Value string
}

// maxUnitText bounds what is read of one unit file.
const maxUnitText = 1 << 20

// Parse reads a unit file.
func Parse(text string) *File {
	f := &File{}
	f.Add(text)
	return f
}

// Add reads a further file of the unit (a drop-in), whose settings come
// after those read so far: "[Section]" headers, KEY=VALUE lines, # and ;
// comments, a backslash at the end of a line joining the next one with a
// space.
func (f *File) Add(text string) {
	if len(text) > maxUnitText {
		text = text[:maxUnitText]
	}
	section := ""
	var pending string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if pending != "" {
			if line != "" && (line[0] == '#' || line[0] == ';') {
				continue // a comment inside a continued line
			}
			line = pending + " " + line
			pending = ""
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, `\`):
			pending = strings.TrimSuffix(line, `\`)
			continue
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		f.settings = append(f.settings, Setting{section, strings.TrimSpace(k), strings.TrimSpace(v)})
	}
}

// Values are a list setting's values in order; an empty assignment
// ("ExecStart=") clears those before it, as in systemd.
func (f *File) Values(section, key string) []string {
	var out []string
	for _, s := range f.settings {
		if s.Section != section || s.Key != key {
			continue
		}
		if s.Value == "" {
			out = nil
			continue
		}
		out = append(out, s.Value)
	}
	return out
}

// Value is a single setting's value: the last one, "" if unset.
func (f *File) Value(section, key string) string {
	v := ""
	for _, s := range f.settings {
		if s.Section == section && s.Key == key {
			v = s.Value
		}
	}
	return v
}
