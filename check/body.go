package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Patroni holds the fields of a health endpoint's JSON body that a person
// debugging a node wants to see. Only State and Role decide anything.
type Patroni struct {
	State    string
	Role     string
	Timeline int64 // 0 when absent
	Pause    bool
	Failsafe bool // failsafe_mode_is_active
	Unlocked bool // cluster_unlocked: no leader key in the DCS
	Version  string
	Scope    string
}

// body mirrors the JSON. Numbers are json.Number so that a field of an
// unexpected numeric form never makes an otherwise good answer unreadable.
type body struct {
	State    *string     `json:"state"`
	Role     *string     `json:"role"`
	Timeline json.Number `json:"timeline"`
	Pause    bool        `json:"pause"`
	Failsafe bool        `json:"failsafe_mode_is_active"`
	Unlocked bool        `json:"cluster_unlocked"`
	Patroni  struct {
		Version string `json:"version"`
		Scope   string `json:"scope"`
	} `json:"patroni"`
}

// ParseBody reads a Patroni health answer. It fails unless the body is one
// JSON object with a string "state"; "role" may be absent only where the
// endpoint does not check it, which is for Judge to say.
func ParseBody(b []byte) (Patroni, error) {
	var raw body
	if err := json.Unmarshal(b, &raw); err != nil {
		return Patroni{}, fmt.Errorf("body is not Patroni JSON: %w", err)
	}
	if raw.State == nil {
		return Patroni{}, errors.New(`body has no "state"`)
	}
	p := Patroni{
		State:    *raw.State,
		Pause:    raw.Pause,
		Failsafe: raw.Failsafe,
		Unlocked: raw.Unlocked,
		Version:  raw.Patroni.Version,
		Scope:    raw.Patroni.Scope,
	}
	if raw.Role != nil {
		p.Role = *raw.Role
	}
	if tl, err := strconv.ParseInt(raw.Timeline.String(), 10, 64); err == nil {
		p.Timeline = tl
	}
	return p, nil
}

// Judge turns an HTTP answer into a verdict for the endpoint: the reason
// class, the parsed body (when there was one) and, unless eligible, why not.
// body may be nil when it was not read (statusOnly).
func Judge(ep Endpoint, status int, b []byte, statusOnly bool) (Class, Patroni, error) {
	var p Patroni
	var perr error
	// Only Patroni's own answers, 200 and 503, carry its JSON.
	if ep.JSON && b != nil && (status == http.StatusOK || status == http.StatusServiceUnavailable) {
		p, perr = ParseBody(b)
	}
	switch {
	case status == http.StatusOK:
		// handled below
	case status == http.StatusServiceUnavailable:
		// Patroni's "no". Its body, if any, only explains.
		return NotEligible, p, fmt.Errorf("%d from Patroni", status)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Auth, p, fmt.Errorf("%d %s: check --user and --password-file", status, http.StatusText(status))
	case status >= 300 && status < 400:
		return BadResponse, p, fmt.Errorf("redirect (%d) not followed", status)
	default:
		return BadResponse, p, fmt.Errorf("unexpected status %d %s, want 200 or 503", status, http.StatusText(status))
	}
	if statusOnly || !ep.JSON {
		return Eligible, p, nil
	}
	if perr != nil {
		return BadResponse, p, perr
	}
	if p.State != "running" {
		return NotEligible, p, fmt.Errorf("state %q, want \"running\"", p.State)
	}
	if !ep.fits(p.Role) {
		return NotEligible, p, fmt.Errorf("role %q, want %s", p.Role, strings.Join(ep.Roles, " or "))
	}
	return Eligible, p, nil
}
