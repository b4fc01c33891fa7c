package check

import (
	"net/url"
	"strings"
)

// Redact hides the password a URL may hold, so that it never reaches a
// message, a log field or a file name. A URL that parses is shown as
// url.URL.Redacted shows it (user:xxxxx@host). One that does not parse
// (a password with a raw "/" in it breaks the parse), or that is not an
// http(s) URL with a host, loses everything from the first ":" after the
// scheme to the last "@", which over-redacts such a string rather than leak
// part of a password.
func Redact(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	if u, err := url.Parse(s); err == nil {
		if u.User != nil {
			return u.Redacted()
		}
		if (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return s // the "@" is in the path or the query
		}
	}
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	colon := strings.IndexByte(rest, ':')
	if colon < 0 || colon > at {
		return s // user@host: no password
	}
	return prefix + rest[:colon] + ":xxxxx" + rest[at:]
}

// RedactText hides the passwords of the URLs in a text (an error, a command
// line): each space-separated word is redacted as Redact does.
func RedactText(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	words := strings.Split(s, " ")
	for i, w := range words {
		words[i] = Redact(w)
	}
	return strings.Join(words, " ")
}
