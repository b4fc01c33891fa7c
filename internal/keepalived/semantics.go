package keepalived

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is a keepalived release.
type Version struct{ Major, Minor, Patch int }

// v232 is the release from which vrrp_script interval and timeout take
// milliseconds and a script line's first pass no longer handles
// backslash escapes.
func v232() Version { return Version{2, 3, 2} }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// IsZero reports whether v is unknown.
func (v Version) IsZero() bool { return v == Version{} }

// AtLeast reports whether v is o or later.
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// FractionalTimers reports whether vrrp_script interval and timeout may
// be fractional (keepalived 2.3.2 and later).
func (v Version) FractionalTimers() bool { return v.AtLeast(v232()) }

// Compiled when first used: the check, which links this package, must not
// pay for it at every start.
var versionRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v?(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?$`) })

// ParseVersion parses "2.2.7" or "v2.2.7".
func ParseVersion(s string) (Version, error) {
	m := versionRe().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("invalid keepalived version %q (want for example 2.2.7)", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

var versionOutputRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^Keepalived v(\d{1,4})\.(\d{1,4})\.(\d{1,4})\b`) })

// VersionFromOutput finds the version in what `keepalived --version`
// prints (on stderr): "Keepalived v2.2.7 (01/16,2022)".
func VersionFromOutput(out []byte) (Version, error) {
	if len(out) > 64<<10 {
		out = out[:64<<10]
	}
	m := versionOutputRe().FindSubmatch(out)
	if m == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		if len(first) > 80 {
			first = first[:80]
		}
		return Version{}, fmt.Errorf("no \"Keepalived vX.Y.Z\" in keepalived --version's output %q", first)
	}
	var v Version
	v.Major, _ = strconv.Atoi(string(m[1]))
	v.Minor, _ = strconv.Atoi(string(m[2]))
	v.Patch, _ = strconv.Atoi(string(m[3]))
	return v, nil
}

// Timer is what keepalived v makes, at run time, of a vrrp_script
// interval or timeout written as s: the duration it uses, and why it is
// not what was written ("" when it is). keepalived before 2.3.2 reads
// whole seconds: "0.2" is an "invalid number" and becomes 0, which it
// raises to 1 s; "1.5" is 1 s. From 2.3.2 it reads milliseconds.
func (v Version) Timer(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, "negative number"
	}
	if v.FractionalTimers() {
		whole, frac, _ := strings.Cut(s, ".")
		if whole == "" || !digits(whole) || !digits(frac) {
			return 0, fmt.Sprintf("invalid number '%s' - ignored", s)
		}
		note, up := "", false
		if len(frac) > 3 {
			note = "more than 3 decimal places - rounded to milliseconds"
			up = frac[3] >= '5'
			frac = frac[:3]
		}
		frac += strings.Repeat("0", 3-len(frac))
		w, err1 := strconv.ParseInt(whole, 10, 32)
		ms, err2 := strconv.ParseInt(frac, 10, 32)
		if err1 != nil || err2 != nil {
			return 0, fmt.Sprintf("number '%s' out of range - ignored", s)
		}
		if up {
			ms++
		}
		d := time.Duration(w)*time.Second + time.Duration(ms)*time.Millisecond
		if d == 0 {
			return time.Second, "0 - raised to 1 s"
		}
		return d, note
	}
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	secs, err := strconv.ParseUint("0"+s[:n], 10, 32)
	if err != nil {
		return 0, fmt.Sprintf("number '%s' out of range - ignored", s)
	}
	note := ""
	if n < len(s) {
		note = fmt.Sprintf("invalid number '%s': keepalived %s reads whole seconds", s, v)
	}
	if secs == 0 {
		if note == "" {
			note = "0"
		}
		return time.Second, note + " - raised to 1 s"
	}
	if note != "" {
		note += fmt.Sprintf(" - %d s", secs)
	}
	return time.Duration(secs) * time.Second, note
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Interval is the script's interval under keepalived v (default 1 s).
func (s *Script) IntervalFor(v Version) (time.Duration, string) {
	if s.Interval == nil {
		return time.Second, ""
	}
	d, note := v.Timer(s.Interval.Arg(1))
	if d == 0 {
		return time.Second, note
	}
	return d, note
}

// TimeoutFor is the time keepalived v lets one run take: timeout, or the
// interval when there is none.
func (s *Script) TimeoutFor(v Version) (time.Duration, string) {
	if s.Timeout == nil {
		d, _ := s.IntervalFor(v)
		return d, ""
	}
	d, note := v.Timer(s.Timeout.Arg(1))
	if d == 0 {
		d, _ = s.IntervalFor(v)
	}
	return d, note
}

// ErrNoScript is returned for a vrrp_script without a script line.
var ErrNoScript = errors.New("no script")

// Args is the command keepalived v runs for the script: the script line
// parsed with quotes (and, before 2.3.2, escapes) as a whole, then its
// first argument split again into words. Words after the first argument
// are ignored by keepalived; extra holds them.
func (s *Script) Args(v Version) (args, extra []string, err error) {
	if s.Script == nil {
		return nil, nil, ErrNoScript
	}
	line, err := quotedWords(s.Script.Raw, !v.AtLeast(v232()))
	if err != nil {
		return nil, nil, err
	}
	if len(line) < 2 {
		return nil, nil, ErrNoScript
	}
	args, err = quotedWords(line[1], true)
	if err != nil {
		return nil, nil, err
	}
	if len(args) == 0 {
		return nil, nil, ErrNoScript
	}
	if len(line) > 2 {
		extra = line[2:]
	}
	return args, extra, nil
}

// quotedWords is keepalived's alloc_strvec_quoted_escaped_common: words
// separated by blanks; double and single quotes keep blanks; with
// escapes a backslash sequence stands for a character (\n, \t, \x41,
// \101, \cX...); without, a backslash keeps itself and the next
// character.
func quotedWords(src string, escapes bool) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			return out, nil
		}
		var w strings.Builder
		var quote byte
	word:
		for i < len(src) {
			c := src[i]
			switch {
			case c == '\\':
				i++
				if i >= len(src) {
					return nil, fmt.Errorf("missing escaped character at the end of '%s'", src)
				}
				if !escapes {
					w.WriteByte('\\')
					w.WriteByte(src[i])
					i++
					continue
				}
				i = unescapeAt(src, i, &w)
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				w.WriteByte(c)
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case isSpace(c):
				break word
			default:
				w.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("string '%s': missing terminating %c", src, quote)
		}
		out = append(out, w.String())
	}
}

// unescapeAt writes the character the escape at src[i] (after the
// backslash) stands for and returns the index after it.
func unescapeAt(src string, i int, w *strings.Builder) int {
	c := src[i]
	switch {
	case c == 'x' && i+1 < len(src) && isHex(src[i+1]):
		i++
		var v byte
		for n := 0; n < 2 && i < len(src) && isHex(src[i]); n++ {
			v = v<<4 | hexVal(src[i])
			i++
		}
		w.WriteByte(v)
		return i
	case c == 'c' && i+1 < len(src):
		w.WriteByte(src[i+1] & 0x1f)
		return i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(src) && src[i] >= '0' && src[i] <= '7'; n++ {
			v = v<<3 + (src[i] - '0')
			i++
		}
		w.WriteByte(v)
		return i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	w.WriteByte(c)
	return i + 1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// SplitUser is the user and group of a script_user or user statement.
func SplitUser(st *Statement) (user, group string) {
	return st.Arg(1), st.Arg(2)
}
