package check

import (
	"time"
	"unicode/utf8"
)

// Report is a result in its machine-readable form, as
// `patroni-vip-check --json` prints it: one JSON object for scripts and for
// patroni-vip-check doctor, which must never read the -v trace meant for
// people. The field names are a contract.
type Report struct {
	Eligible       bool    `json:"eligible"`
	Reason         Class   `json:"reason"`
	URL            string  `json:"url"` // redacted
	HTTPStatus     int     `json:"http_status,omitempty"`
	Role           string  `json:"role,omitempty"`
	State          string  `json:"state,omitempty"`
	Timeline       int64   `json:"timeline,omitempty"`
	Paused         bool    `json:"paused,omitempty"`
	Failsafe       bool    `json:"failsafe,omitempty"`
	PatroniVersion string  `json:"patroni_version,omitempty"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Detail         string  `json:"detail,omitempty"`
}

// maxReported bounds each string the peer chose: Patroni's are a few
// characters, and a report is read by programs that need no more.
const maxReported = 256

// NewReport is r's report; url is the check's URL, redacted.
func NewReport(r Result, url string) Report {
	rep := Report{
		Eligible:       r.Eligible(),
		Reason:         r.Class,
		URL:            url,
		HTTPStatus:     r.Status,
		ElapsedSeconds: r.Elapsed.Round(time.Microsecond).Seconds(),
	}
	if r.HasBody {
		rep.Role = bound(r.Patroni.Role)
		rep.State = bound(r.Patroni.State)
		rep.Timeline = r.Patroni.Timeline
		rep.Paused = r.Patroni.Pause
		rep.Failsafe = r.Patroni.Failsafe
		rep.PatroniVersion = bound(r.Patroni.Version)
	}
	if r.Err != nil {
		rep.Detail = bound(RedactText(r.Err.Error()))
	}
	return rep
}

// bound cuts s to maxReported bytes, dropping a rune the cut split;
// encoding/json escapes what is left, and writes invalid UTF-8 as U+FFFD.
func bound(s string) string {
	if len(s) <= maxReported {
		return s
	}
	s = s[:maxReported]
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
