package sink

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean makes s safe to put on a log line or a terminal, whoever wrote it:
// every character that is not printable — CR, LF, TAB, ESC, NUL and the
// other C0 and C1 controls, DEL, line and paragraph separators, format
// characters such as bidirectional overrides — is spelled out as \n, \r,
// \t, \xNN or \u{NNNN}, and every byte that is not UTF-8 as \xNN. The
// result is cut at max bytes (at a character boundary) and then ends in
// "…". Printable text, spaces included, is left as it is.
func Clean(s string, max int) string {
	if safe(s) && len(s) <= max {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = `\x` + hex2(s[i])
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case r < 0x20 || r == 0x7f:
			piece = `\x` + hex2(byte(r))
		case r != ' ' && !unicode.IsPrint(r):
			piece = `\u{` + strconv.FormatInt(int64(r), 16) + `}`
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > max-len("…") && (i+size < len(s) || b.Len()+len(piece) > max) {
			b.WriteString("…")
			break
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}

// safe reports whether s is printable UTF-8 with no escape needed.
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return safeSlow(s)
		}
	}
	return true
}

func safeSlow(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}
