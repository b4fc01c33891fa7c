package rootfs

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FallbackMirror is used when the host's apt sources name no Debian mirror.
const FallbackMirror = "http://deb.debian.org/debian"

// HostMirror returns the Debian mirror the host's apt already uses for its own release:
// the first enabled "deb" source, in apt's order (sources.list, then sources.list.d/*.list
// and *.sources by name), whose suite is the host's codename and which has "main". That
// skips the security archive, -updates and third-party repositories, which serve no
// other release. FallbackMirror if there is none.
func HostMirror() string {
	var files []sourceFile
	read := func(path string) {
		if b, err := os.ReadFile(path); err == nil {
			files = append(files, sourceFile{path, string(b)})
		}
	}
	read("/etc/apt/sources.list")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	all := append(lists, deb822...)
	slices.Sort(all)
	for _, p := range all {
		read(p)
	}
	if m := pickMirror(files, osCodename("/etc/os-release")); m != "" {
		return m
	}
	return FallbackMirror
}

type sourceFile struct{ path, text string }

// source is one (type, URI, suite) that apt would use.
type source struct {
	typ, uri, suite string
	components      []string
}

func pickMirror(files []sourceFile, codename string) string {
	if codename == "" {
		return ""
	}
	for _, f := range files {
		var srcs []source
		if strings.HasSuffix(f.path, ".sources") {
			srcs = parseDeb822(f.text)
		} else {
			srcs = parseOneLine(f.text)
		}
		for _, s := range srcs {
			if s.typ == "deb" && s.suite == codename && slices.Contains(s.components, "main") &&
				(strings.HasPrefix(s.uri, "http://") || strings.HasPrefix(s.uri, "https://")) {
				return strings.TrimRight(s.uri, "/")
			}
		}
	}
	return ""
}

// parseOneLine reads the one-line format: "deb [options] URI suite component...".
func parseOneLine(text string) []source {
	var out []source
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		typ := f[0]
		f = f[1:]
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			// Options run up to the token that ends with "]".
			for len(f) > 0 {
				end := strings.HasSuffix(f[0], "]")
				f = f[1:]
				if end {
					break
				}
			}
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, source{typ: typ, uri: f[0], suite: f[1], components: f[2:]})
	}
	return out
}

// parseDeb822 reads the deb822 format: stanzas of "Field: value" separated by blank
// lines, continuation lines indented, '#' lines comments.
func parseDeb822(text string) []source {
	var out []source
	flush := func(st map[string]string) {
		if len(st) == 0 || strings.EqualFold(st["enabled"], "no") {
			return
		}
		for _, typ := range strings.Fields(st["types"]) {
			for _, uri := range strings.Fields(st["uris"]) {
				for _, suite := range strings.Fields(st["suites"]) {
					out = append(out, source{typ: typ, uri: uri, suite: suite, components: strings.Fields(st["components"])})
				}
			}
		}
	}
	st := map[string]string{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush(st)
			st, last = map[string]string{}, ""
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				st[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if ok {
				last = strings.ToLower(strings.TrimSpace(k))
				st[last] = strings.TrimSpace(v)
			}
		}
	}
	flush(st)
	return out
}

// osCodename reads VERSION_CODENAME from an os-release file.
func osCodename(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
