package keepalived

import (
	"io/fs"
	"path"
	"strings"
)

// What keepalived's read_line (lib/parser.c) does to a configuration before
// any keyword is looked at, in its order: fgets into a 1024-byte buffer,
// line ends stripped, comments removed (decomment), "@id" conditionals,
// "$NAME=value" definitions and "$NAME" substitution, "include", and every
// '{' or '}' outside double quotes cut off onto a line of its own. The
// result is a stream of logical lines, each with the file and line it came
// from.

// maxBuf is keepalived's MAXBUF: fgets reads at most maxBuf-1 bytes of a
// line, and the rest becomes the next line.
const maxBuf = 1024

// maxSubstitutions bounds "$NAME" expansion on one line: keepalived loops
// forever on $A=$A.
const maxSubstitutions = 256

// frame is one include: the files its pattern matched, read in order.
type frame struct {
	files []string
	next  int // index of the next file to open
	name  string
	open  bool   // a file is being read
	data  string // what is left of the current file
	line  int    // the number of the line the next piece is on
}

// logical is one logical line.
type logical struct {
	text string
	pos  Pos
}

type definition struct {
	value     string // lines separated by "\n"
	multiline bool
}

type lexer struct {
	fsys     fs.FS
	limits   Limits
	configID string

	stack   []*frame
	pending []logical // lines to hand out before reading more, the next one last
	defs    map[string]*definition
	files   []string
	bytes   int64
	probs   []Problem
	stopped bool // a limit was hit: read nothing more
	steps   int  // lines looked at, read or made

	// collecting a multi-line definition: its value so far, in a builder
	// (appending to a string copies it at every line)
	collecting *definition
	collected  strings.Builder
}

// endDefinition ends the multi-line definition being collected.
func (lx *lexer) endDefinition() {
	if d := lx.collecting; d != nil {
		d.value = lx.collected.String()
		lx.collected.Reset()
		lx.collecting = nil
	}
}

func (lx *lexer) problem(pos Pos, format string, args ...any) {
	if len(lx.probs) < lx.limits.MaxProblems {
		lx.probs = append(lx.probs, Problem{Pos: pos, Msg: sprintf(format, args...)})
	}
}

// open pushes the files pattern matches as a new include frame. pattern
// is absolute.
func (lx *lexer) open(pattern string, from Pos, top bool) {
	if lx.stopped {
		return
	}
	if len(lx.stack) >= lx.limits.MaxDepth {
		lx.problem(from, "include %s: more than %d nested includes (an include loop?) - not read", pattern, lx.limits.MaxDepth)
		return
	}
	var names []string
	if top {
		names = []string{pattern}
	} else {
		var truncated bool
		names, truncated = glob(lx.fsys, pattern, lx.limits.MaxFiles)
		if truncated {
			lx.problem(from, "include %s matches more than %d files - not all read", pattern, lx.limits.MaxFiles)
		}
		if len(names) == 0 {
			// keepalived's plain include says nothing when nothing matches.
			lx.problem(from, "include %s: no file matched", pattern)
			return
		}
	}
	lx.stack = append(lx.stack, &frame{files: names})
}

// nextFile opens the next file of the top frame; false when there is none.
func (lx *lexer) nextFile(f *frame) bool {
	for f.next < len(f.files) {
		name := f.files[f.next]
		f.next++
		if lx.including(name) {
			lx.problem(Pos{File: name}, "%s includes itself - not read again", name)
			continue
		}
		if strings.HasSuffix(name, "/") {
			lx.problem(Pos{File: name}, "configuration file '%s' is a directory - skipping", name)
			continue
		}
		fi, err := fs.Stat(lx.fsys, fsName(name))
		if err != nil {
			lx.problem(Pos{File: name}, "configuration file '%s': %s", name, errText(err))
			continue
		}
		if !fi.Mode().IsRegular() || fi.Mode()&0o111 != 0 {
			// keepalived's check_glob_file
			lx.problem(Pos{File: name}, "configuration file '%s' is not a regular non-executable file - skipping", name)
			continue
		}
		if len(lx.files) >= lx.limits.MaxFiles {
			lx.problem(Pos{File: name}, "more than %d configuration files - %s not read", lx.limits.MaxFiles, name)
			lx.stopped = true
			return false
		}
		if lx.bytes+fi.Size() > lx.limits.MaxBytes {
			lx.problem(Pos{File: name}, "more than %d bytes of configuration - %s not read", lx.limits.MaxBytes, name)
			lx.stopped = true
			return false
		}
		data, err := readFile(lx.fsys, name, fi.Size(), lx.limits.MaxBytes-lx.bytes)
		if err != nil {
			lx.problem(Pos{File: name}, "configuration file '%s': %s", name, errText(err))
			continue
		}
		lx.bytes += int64(len(data))
		lx.files = append(lx.files, name)
		f.name, f.open, f.data, f.line = name, true, data, 1
		return true
	}
	return false
}

// piece is what one fgets call returns: a line, or part of an overlong one.
type piece struct {
	text string
	line int  // the line number keepalived reports for it
	cut  bool // the line went on past keepalived's buffer
}

// including reports whether name is being read by an include below the top.
func (lx *lexer) including(name string) bool {
	for _, g := range lx.stack[:len(lx.stack)-1] {
		if g.name == name {
			return true
		}
	}
	return false
}

// piece returns what the next fgets call with a maxBuf buffer returns,
// without its "\n": a line, or the next maxBuf-1 bytes of a longer one
// (then the rest, even a lone "\n", comes as the next piece). The file is
// cut as it is read, so that a file of empty lines costs no more memory
// than its bytes.
func (f *frame) piece() (piece, bool) {
	if f.data == "" {
		return piece{}, false
	}
	chunk := f.data[:min(len(f.data), maxBuf-1)]
	p := piece{line: f.line}
	if k := strings.IndexByte(chunk, '\n'); k >= 0 {
		p.text, f.data = chunk[:k], f.data[k+1:]
		f.line++ // keepalived counts a line when fgets returns its "\n"
		return p, true
	}
	p.text, f.data = chunk, f.data[len(chunk):]
	p.cut = f.data != ""
	return p, true
}

// physical returns the next non-empty physical line, decommented.
func (lx *lexer) physical() (logical, bool) {
	for len(lx.stack) > 0 && !lx.stopped {
		f := lx.stack[len(lx.stack)-1]
		p, ok := f.piece()
		if !f.open || !ok {
			f.open = false
			if !lx.nextFile(f) {
				lx.stack = lx.stack[:len(lx.stack)-1]
			}
			continue
		}
		pos := Pos{File: f.name, Line: p.line}
		if p.cut {
			lx.problem(pos, "line longer than %d bytes: keepalived reads the rest as a new line", maxBuf-1)
		}
		raw := strings.TrimRight(p.text, "\r\n")
		if raw == "" {
			lx.endDefinition() // a blank line ends a multi-line definition
			continue
		}
		text, unterminated := decomment(raw)
		if unterminated {
			lx.problem(pos, "unterminated quote '%s'", text)
		}
		if text == "" {
			continue
		}
		return logical{text: text, pos: pos}, true
	}
	return logical{}, false
}

// decomment is keepalived's decomment(): leading blanks, and everything
// from the first '#' or '!' outside double quotes, removed; "\#" and "\!"
// outside quotes stand for the characters; trailing blanks removed,
// except that a final '\' (a continued definition) is kept, even after a
// comment. A backslash hides the character after it, a quote included.
// unterminated reports a double quote left open before any comment.
func decomment(s string) (text string, unterminated bool) {
	s = strings.TrimLeft(s, " \t")
	var b strings.Builder
	quote, cont, comment := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 == len(s):
			cont = true
			continue
		case c == '\\':
			if !comment {
				if quote || (s[i+1] != '#' && s[i+1] != '!') {
					b.WriteByte(c)
				}
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case comment:
			continue
		case c == '"':
			quote = !quote
		case !quote && (c == '#' || c == '!'):
			comment = true
			continue
		}
		b.WriteByte(c)
	}
	text = strings.TrimRight(b.String(), " \t")
	if cont {
		text += "\\"
	}
	return text, quote
}

// next returns the next logical line, or false at the end.
func (lx *lexer) next() (logical, bool) {
	for {
		// Definitions can make lines without end (a multi-line
		// definition that names itself): bound the work.
		if lx.steps++; lx.steps > 4*lx.limits.MaxStatements {
			if !lx.stopped {
				lx.problem(Pos{}, "more than %d lines - the rest not read", 4*lx.limits.MaxStatements)
			}
			lx.stopped, lx.pending, lx.stack = true, nil, nil
			return logical{}, false
		}
		var l logical
		if n := len(lx.pending); n > 0 {
			l = lx.pending[n-1]
			lx.pending = lx.pending[:n-1]
		} else {
			var ok bool
			if l, ok = lx.physical(); !ok {
				lx.endDefinition()
				return logical{}, false
			}
		}
		text := l.text

		if lx.collecting != nil {
			if strings.HasSuffix(text, "\\") {
				if v := strings.TrimRight(strings.TrimSuffix(text, "\\"), " \t"); v != "" {
					lx.collected.WriteString(v + "\n")
				}
			} else {
				lx.collected.WriteString(text)
				lx.endDefinition()
			}
			continue
		}

		text, ok := lx.conditional(text)
		if !ok {
			continue
		}
		if lx.define(text, l.pos) {
			continue
		}
		if strings.HasPrefix(text, "~SEQ") || strings.HasPrefix(text, "~LST") {
			lx.problem(l.pos, "%s is not expanded by this reader: what it generates is not checked", text[:4])
			continue
		}
		if strings.HasPrefix(text, "~") {
			continue
		}
		text, more := lx.substitute(text, l.pos)
		// The lines after the first of a multi-line definition come
		// next, before the lines of any expansion under way (keepalived's
		// multiline_stack): pending hands out its last line first.
		for i := len(more) - 1; i >= 0; i-- {
			lx.pending = append(lx.pending, logical{text: more[i], pos: l.pos})
		}
		if text == "" {
			continue
		}
		if pattern, ok := includeArg(text); ok {
			if !path.IsAbs(pattern) {
				pattern = path.Join(path.Dir(l.pos.File), pattern)
			}
			lx.open(pattern, l.pos, false)
			continue
		}
		// Cut at the first brace outside quotes; the rest is read next.
		first, rest := splitBrace(text)
		if rest != "" {
			lx.pending = append(lx.pending, logical{text: rest, pos: l.pos})
		}
		return logical{text: first, pos: l.pos}, true
	}
}

// conditional applies "@id" and "@^id": false drops the line.
func (lx *lexer) conditional(text string) (string, bool) {
	if !strings.HasPrefix(text, "@") {
		return text, true
	}
	rest, reverse := text[1:], false
	if strings.HasPrefix(rest, "^") {
		rest, reverse = rest[1:], true
	}
	end := strings.IndexAny(rest, " \t")
	if end < 0 {
		return "", false
	}
	match := lx.configID != "" && rest[:end] == lx.configID
	if match == reverse {
		return "", false
	}
	return strings.TrimLeft(rest[end:], " \t"), true
}

// define records "$NAME=value"; true if text was a definition.
func (lx *lexer) define(text string, pos Pos) bool {
	if len(text) < 2 || text[0] != '$' || !(isAlpha(text[1]) || text[1] == '_') {
		return false
	}
	i := 2
	for i < len(text) && isNameChar(text[i]) {
		i++
	}
	name := text[1:i]
	j := i
	for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
		j++
	}
	if j >= len(text) || text[j] != '=' {
		return false
	}
	value := strings.TrimLeft(text[j+1:], " \t")
	d := &definition{}
	if strings.HasSuffix(value, "\\") {
		d.multiline = true
		lx.collecting = d // the lines that follow are its value, kept or not
		if v := strings.TrimRight(strings.TrimSuffix(value, "\\"), " \t"); v != "" {
			lx.collected.WriteString(v + "\n")
		}
	} else {
		d.value = value
	}
	if len(lx.defs) >= lx.limits.MaxDefinitions {
		lx.problem(pos, "more than %d definitions - $%s ignored", lx.limits.MaxDefinitions, name)
		return true
	}
	lx.defs[name] = d
	return true
}

// substitute replaces "$NAME" and "${NAME}" as keepalived's replace_param
// does; a multi-line definition gives the lines after the first in more.
func (lx *lexer) substitute(text string, pos Pos) (string, []string) {
	if !strings.Contains(text, "$") {
		return text, nil
	}
	var more []string
	changed := false
	for n, i := 0, 0; i < len(text); {
		k := strings.IndexByte(text[i:], '$')
		if k < 0 || i+k+1 >= len(text) {
			break
		}
		at := i + k
		name, width, ok := refAt(text, at)
		d := lx.lookup(name, pos)
		if !ok || d == nil || (d.multiline && at+width != len(text)) {
			i = at + 1
			continue
		}
		if n++; n > maxSubstitutions {
			lx.problem(pos, "definitions expand without end on this line - line dropped")
			return "", nil
		}
		value := d.value
		if d.multiline {
			lines := strings.Split(strings.TrimSuffix(value, "\n"), "\n")
			value, more = lines[0], append(lines[1:], more...)
		}
		text = text[:at] + value + text[at+width:]
		if len(text) >= maxBuf {
			lx.problem(pos, "substitution would exceed keepalived's line length - line dropped")
			return "", nil
		}
		changed = true
		i = at // the value is scanned again, as keepalived does
		if strings.HasPrefix(strings.TrimLeft(value, " \t"), "~") {
			break
		}
	}
	if changed {
		text, _ = decomment(text)
		if strings.HasPrefix(text, "@") {
			var ok bool
			if text, ok = lx.conditional(text); !ok {
				return "", more
			}
		}
	}
	return text, more
}

// refAt reads a reference at text[at] == '$': its name and the width of
// "$NAME" or "${NAME}".
func refAt(text string, at int) (string, int, bool) {
	s := text[at+1:]
	braces := strings.HasPrefix(s, "{")
	if braces {
		s = s[1:]
	}
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return "", 0, false
	}
	n := 1
	for n < len(s) && isNameChar(s[n]) {
		n++
	}
	if braces {
		if n >= len(s) || s[n] != '}' {
			return "", 0, false
		}
		return s[:n], n + 3, true
	}
	if n < len(s) && !strings.ContainsRune(" \t,)", rune(s[n])) {
		return "", 0, false
	}
	return s[:n], n + 1, true
}

// lookup finds a definition, the standard ones included.
func (lx *lexer) lookup(name string, pos Pos) *definition {
	if d, ok := lx.defs[name]; ok {
		return d
	}
	switch name {
	case "_PWD":
		return &definition{value: path.Dir(pos.File)}
	case "_HASH":
		return &definition{value: "#"}
	case "_BANG":
		return &definition{value: "!"}
	case "_INSTANCE":
		return &definition{value: lx.configID}
	}
	return nil
}

// includeArg recognises keepalived's include lines: "include", or
// "includer", "includem", "includew", "includeb", "includea", then
// blanks and the pattern (the rest of the line, quotes and all).
func includeArg(text string) (string, bool) {
	if !strings.HasPrefix(text, "include") || len(text) < 8 {
		return "", false
	}
	rest := text[7:]
	switch {
	case isSpace(rest[0]):
		rest = rest[1:]
	case len(rest) > 1 && strings.IndexByte("rmwba", rest[0]) >= 0 && isSpace(rest[1]):
		rest = rest[2:]
	default:
		return "", false
	}
	return strings.TrimLeft(rest, " \t"), true
}

// splitBrace cuts text before its first '{' or '}' outside double quotes,
// or just after it when the line starts with it, as read_line does.
func splitBrace(text string) (string, string) {
	p := -1
	if text[0] == '{' || text[0] == '}' {
		p = 0
	} else {
		for i := 0; i < len(text); i++ {
			if text[i] == '"' {
				j := strings.IndexByte(text[i+1:], '"')
				if j < 0 {
					break
				}
				i += j + 1
				continue
			}
			if text[i] == '{' || text[i] == '}' {
				p = i
				break
			}
		}
	}
	if p < 0 {
		return strings.TrimRight(text, " \t"), ""
	}
	skip := 0
	if p == 0 {
		skip = 1
		for skip < len(text) && (text[skip] == ' ' || text[skip] == '\t') {
			skip++
		}
	}
	first := strings.TrimRight(text[:p+skip], " \t")
	rest := strings.TrimRight(text[p+skip:], " \t")
	return first, rest
}

// words splits a logical line as keepalived's alloc_strvec_r: blank
// separated; a word that starts with '"' runs to the next '"' and loses
// its quotes; an unquoted word ends at a blank or a '"'.
func words(text string) ([]string, bool) {
	var ws []string
	for i := 0; ; {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		if i >= len(text) {
			return ws, true
		}
		if text[i] == '"' {
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				return ws, false
			}
			ws = append(ws, text[i+1:i+1+j])
			i += j + 2
			continue
		}
		j := i
		for j < len(text) && !isSpace(text[j]) && text[j] != '"' {
			j++
		}
		ws = append(ws, text[i:j])
		i = j
	}
}

func isAlpha(c byte) bool    { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' || c == '_' }

// isSpace is C's isspace in the C locale, keepalived's WHITE_SPACE.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }
