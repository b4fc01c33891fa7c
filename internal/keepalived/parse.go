// Package keepalived reads keepalived configuration the way keepalived
// 2.2 and 2.3 read it (includes with glob patterns, comments, quotes,
// "@" conditionals, "$" definitions, braces anywhere), keeps the file and
// line of every keyword, and says what keepalived makes of the parts that
// decide whether a virtual IP follows a check: global_defs, vrrp_script,
// track_file and vrrp_instance. It also writes configuration (Writer).
//
// Reading never fails on content: what keepalived would complain about is
// returned as Problems, unknown keywords are kept, and the amount read is
// bounded (Limits).
package keepalived

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Pos is where a line was read.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Problem is something keepalived would complain about, or a part of the
// configuration this reader could not follow.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) String() string { return p.Pos.String() + ": " + p.Msg }

// Statement is one keyword line and, if a '{' followed it, its block.
type Statement struct {
	Pos   Pos
	Words []string // Words[0] is the keyword; quotes removed as keepalived removes them
	// Raw is the line as keepalived hands it to keywords that parse
	// their own arguments (script): comments removed, definitions
	// substituted.
	Raw      string
	HasBlock bool
	Block    []*Statement
}

// Keyword is the statement's first word.
func (s *Statement) Keyword() string {
	if s == nil || len(s.Words) == 0 {
		return ""
	}
	return s.Words[0]
}

// Arg is word i (1 is the first argument), or "" when absent.
func (s *Statement) Arg(i int) string {
	if s == nil || i >= len(s.Words) {
		return ""
	}
	return s.Words[i]
}

// Limits bound what one Load reads.
type Limits struct {
	MaxDepth       int   // nested includes
	MaxFiles       int   // files read, and files one include pattern may match
	MaxBytes       int64 // bytes read in all
	MaxStatements  int
	MaxDefinitions int
	MaxProblems    int
}

// DefaultLimits are far above any real configuration.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:       16,
		MaxFiles:       256,
		MaxBytes:       16 << 20,
		MaxStatements:  100000,
		MaxDefinitions: 1000,
		MaxProblems:    1000,
	}
}

// Options configure Load.
type Options struct {
	// FS is the file system, its root standing for "/": names are
	// absolute paths without the leading slash (os.DirFS("/")).
	FS fs.FS
	// ConfigID selects "@id" lines; keepalived's default is the host
	// name up to its first dot.
	ConfigID string
	Limits   Limits // zero fields take DefaultLimits
}

// Config is a configuration as read: the statements, the files they came
// from, and what went wrong while reading.
type Config struct {
	Path       string // the file Load was given
	Files      []string
	Statements []*Statement
	Problems   []Problem
}

// Load reads the configuration file at the absolute path name and
// everything it includes. Its only errors are about name itself: missing,
// unreadable, not a regular file.
func Load(name string, opts Options) (*Config, error) {
	if !path.IsAbs(name) {
		return nil, fmt.Errorf("%s: not an absolute path", name)
	}
	name = path.Clean(name)
	lim := opts.Limits
	def := DefaultLimits()
	for _, f := range []struct {
		v *int
		d int
	}{{&lim.MaxDepth, def.MaxDepth}, {&lim.MaxFiles, def.MaxFiles}, {&lim.MaxStatements, def.MaxStatements},
		{&lim.MaxDefinitions, def.MaxDefinitions}, {&lim.MaxProblems, def.MaxProblems}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = def.MaxBytes
	}
	fi, err := fs.Stat(opts.FS, fsName(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, errText(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	lx := &lexer{fsys: opts.FS, limits: lim, configID: opts.ConfigID, defs: map[string]*definition{}}
	lx.open(name, Pos{}, true)
	c := &Config{Path: name}
	c.Statements = build(lx, lim.MaxStatements)
	if len(lx.files) == 0 {
		if len(lx.probs) > 0 {
			return nil, errors.New(lx.probs[0].Msg)
		}
		return nil, fmt.Errorf("%s: not read", name)
	}
	c.Files = lx.files
	c.Problems = lx.probs
	return c, nil
}

// build makes the statement tree: a line that is just "{" opens a block
// for the statement before it, "}" closes the innermost block.
func build(lx *lexer, max int) []*Statement {
	type open struct {
		st     *Statement // nil for the top level
		anon   bool
		blocks *[]*Statement
	}
	var top []*Statement
	stack := []open{{blocks: &top}}
	var last *Statement // the statement a "{" would belong to
	n := 0
	for {
		l, ok := lx.next()
		if !ok {
			break
		}
		ws, matched := words(l.text)
		if !matched {
			lx.problem(l.pos, "unmatched quote: '%s'", l.text)
		}
		if len(ws) == 0 {
			continue
		}
		switch {
		case l.text == "{":
			cur := stack[len(stack)-1]
			if last != nil && !last.HasBlock {
				last.HasBlock = true
				stack = append(stack, open{st: last, blocks: &last.Block})
			} else {
				lx.problem(l.pos, "unexpected '{'")
				anon := &Statement{Pos: l.pos, Words: []string{"{"}, Raw: "{", HasBlock: true}
				*cur.blocks = append(*cur.blocks, anon)
				stack = append(stack, open{st: anon, anon: true, blocks: &anon.Block})
			}
			last = nil
			continue
		case l.text == "}":
			if len(stack) == 1 {
				lx.problem(l.pos, "extra '}' found")
			} else {
				stack = stack[:len(stack)-1]
			}
			last = nil
			continue
		}
		if n++; n > max {
			lx.problem(l.pos, "more than %d statements - the rest not read", max)
			break
		}
		st := &Statement{Pos: l.pos, Words: ws, Raw: l.text}
		cur := stack[len(stack)-1]
		*cur.blocks = append(*cur.blocks, st)
		last = st
	}
	for i := len(stack) - 1; i > 0; i-- {
		st := stack[i].st
		lx.problem(st.Pos, "%s: block not closed with '}'", strings.Join(st.Words, " "))
	}
	return top
}

// fsName turns an absolute path into an fs.FS name.
func fsName(name string) string {
	name = strings.TrimPrefix(path.Clean(name), "/")
	if name == "" {
		return "."
	}
	return name
}

// readFile reads at most max bytes of name, in one allocation when the
// file is as large as stat said (size).
func readFile(fsys fs.FS, name string, size, max int64) (string, error) {
	f, err := fsys.Open(fsName(name))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	b.Grow(int(min(max, size)) + 1) // +1: the read that finds the end
	if _, err := io.Copy(&b, io.LimitReader(f, max+1)); err != nil {
		return "", err
	}
	if int64(b.Len()) > max {
		return "", fmt.Errorf("larger than the %d bytes left to read", max)
	}
	return b.String(), nil
}

// errText is an error without the path a PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// maxBraceAlternatives bounds brace expansion ({a,b}{c,d}... grows fast).
const maxBraceAlternatives = 1024

// glob matches an absolute pattern as glibc's glob(3) with GLOB_BRACE and
// GLOB_MARK does for keepalived: braces expanded first, each alternative
// matched and sorted on its own, a leading '.' matched only explicitly,
// directories marked with a trailing '/'. At most max names.
func glob(fsys fs.FS, pattern string, max int) ([]string, bool) {
	var out []string
	for _, alt := range expandBraces(pattern, maxBraceAlternatives) {
		names := globOne(fsys, alt, max-len(out)+1)
		sort.Strings(names)
		out = append(out, names...)
		if len(out) > max {
			return out[:max], true
		}
	}
	return out, false
}

// globOne matches one brace-free absolute pattern.
func globOne(fsys fs.FS, pattern string, max int) []string {
	parts := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	dirs := []string{"/"}
	for i, part := range parts {
		lastPart := i == len(parts)-1
		if part == "" {
			continue
		}
		var next []string
		if !hasMeta(part) {
			lit := unescape(part)
			for _, d := range dirs {
				p := path.Join(d, lit)
				if _, err := fs.Stat(fsys, fsName(p)); err == nil {
					next = append(next, p)
				}
			}
		} else {
			pat := strings.ReplaceAll(part, "[!", "[^")
			for _, d := range dirs {
				entries, err := fs.ReadDir(fsys, fsName(d))
				if err != nil {
					continue
				}
				for _, e := range entries {
					n := e.Name()
					if strings.HasPrefix(n, ".") && !strings.HasPrefix(part, ".") {
						continue
					}
					if ok, err := path.Match(pat, n); err == nil && ok {
						next = append(next, path.Join(d, n))
					}
					if len(next) > max {
						break
					}
				}
			}
		}
		if !lastPart {
			// Only directories lead on.
			kept := next[:0]
			for _, p := range next {
				if fi, err := fs.Stat(fsys, fsName(p)); err == nil && fi.IsDir() {
					kept = append(kept, p)
				}
			}
			next = kept
		}
		dirs = next
		if len(dirs) == 0 {
			return nil
		}
	}
	for i, p := range dirs {
		if fi, err := fs.Stat(fsys, fsName(p)); err == nil && fi.IsDir() {
			dirs[i] = p + "/"
		}
	}
	return dirs
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expandBraces expands "{a,b}" as GLOB_BRACE does, leftmost first, to at
// most max patterns. An unmatched brace is literal.
func expandBraces(pattern string, max int) []string {
	out := []string{}
	var expand func(p string)
	expand = func(p string) {
		if len(out) >= max {
			return
		}
		open, close, commas := findBrace(p)
		if open < 0 {
			out = append(out, p)
			return
		}
		prefix, suffix := p[:open], p[close+1:]
		start := open + 1
		for _, c := range append(commas, close) {
			expand(prefix + p[start:c] + suffix)
			start = c + 1
		}
	}
	expand(pattern)
	return out
}

// findBrace finds the first "{...}" with its top-level commas.
func findBrace(p string) (int, int, []int) {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			depth := 0
			var commas []int
			for j := i; j < len(p); j++ {
				switch p[j] {
				case '\\':
					j++
				case '{':
					depth++
				case '}':
					depth--
					if depth == 0 {
						return i, j, commas
					}
				case ',':
					if depth == 1 {
						commas = append(commas, j)
					}
				}
			}
			return -1, -1, nil
		}
	}
	return -1, -1, nil
}
