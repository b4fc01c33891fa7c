package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ParseBody reads a Patroni health answer. It fails unless the body is one
// JSON object with a string "state"; "role" may be absent only where the
// endpoint does not check it, which is for Judge to say.
//
// Keys match exactly, as Patroni (Python's json) writes them:
// encoding/json's case-insensitive matching would take "ROLE" for "role".
// A duplicate key makes the body unreadable: Patroni never writes one, and
// parsers disagree on which of two values counts, so a body that has two
// roles has none. Fields that only explain (timeline, pause, version...) are
// skipped when they have an unexpected type; "state" and "role" must be
// strings.
func ParseBody(b []byte) (Patroni, error) {
	top, err := object(b)
	if err != nil {
		return Patroni{}, fmt.Errorf("body is not Patroni JSON: %w", err)
	}
	var p Patroni
	raw, ok := top["state"]
	if !ok {
		return Patroni{}, errors.New(`body has no "state"`)
	}
	if err := json.Unmarshal(raw, &p.State); err != nil {
		return Patroni{}, errors.New(`body's "state" is not a string`)
	}
	if raw, ok := top["role"]; ok {
		if err := json.Unmarshal(raw, &p.Role); err != nil {
			return Patroni{}, errors.New(`body's "role" is not a string`)
		}
	}
	var tl json.Number
	if json.Unmarshal(top["timeline"], &tl) == nil {
		p.Timeline, _ = strconv.ParseInt(tl.String(), 10, 64)
	}
	_ = json.Unmarshal(top["pause"], &p.Pause)
	_ = json.Unmarshal(top["failsafe_mode_is_active"], &p.Failsafe)
	_ = json.Unmarshal(top["cluster_unlocked"], &p.Unlocked)
	if raw, ok := top["patroni"]; ok {
		inner, err := object(raw)
		if err != nil {
			return Patroni{}, fmt.Errorf(`body's "patroni": %w`, err)
		}
		_ = json.Unmarshal(inner["version"], &p.Version)
		_ = json.Unmarshal(inner["scope"], &p.Scope)
	}
	return p, nil
}

// object decodes one JSON object into its members, refusing duplicate keys
// and anything after the object.
func object(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not an object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string) // the decoder allows only strings here
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := members[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		members[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return members, nil
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
