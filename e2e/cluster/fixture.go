package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// HealthEndpoints are the Patroni health endpoints whose raw answers the suite keeps as
// fixtures (check/testdata/patroni): every path patroni-vip-check accepts, aliases too.
var HealthEndpoints = []string{
	"/primary", "/master", "/read-write", "/leader", "/standby-leader", "/standby_leader",
	"/replica", "/replica?lag=1MB", "/read-only", "/sync", "/synchronous", "/async",
	"/asynchronous", "/health", "/liveness", "/readiness", "/",
}

// FixtureName is the file-safe name of an endpoint's fixture, without ".http": the path
// without its leading slash, "?" and "&" as "_", and "root" for "/"
// ("/replica?lag=1MB" → "replica_lag=1MB").
func FixtureName(endpoint string) string {
	name := strings.NewReplacer("/", "_", "?", "_", "&", "_").Replace(strings.TrimPrefix(endpoint, "/"))
	if name == "" {
		return "root"
	}
	return name
}

// RawGet asks the node's Patroni REST API for path exactly as patroni-vip-check asks —
// GET, HTTP/1.1, "Connection: close", "Accept: application/json", the User-Agent given,
// written by net/http's Request.Write as the check's own transport does — from the
// switch namespace, and returns the answer byte for byte, up to the server closing the
// connection (Patroni 4 sends no Content-Length).
func (n *Node) RawGet(ctx context.Context, path, userAgent string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + n.Addr + ":8008" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	conn, err := dialIn(n.c.swNS)(ctx, "tcp", n.Addr+":8008")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	raw, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return raw, fmt.Errorf("GET %s: %w", url, err)
	}
	return raw, nil
}

// Answer is a raw HTTP answer, split.
type Answer struct {
	StatusLine string   // "HTTP/1.0 200 OK"
	Headers    []string // "Name: value", in order
	Body       []byte
}

// Status is the answer's status code, 0 if the status line has none.
func (a Answer) Status() int {
	var proto string
	var code int
	fmt.Sscanf(a.StatusLine, "%s %d", &proto, &code)
	return code
}

// HeaderNames are the answer's header names, in order.
func (a Answer) HeaderNames() []string {
	var names []string
	for _, h := range a.Headers {
		name, _, _ := strings.Cut(h, ":")
		names = append(names, name)
	}
	return names
}

// JSON decodes the body as a JSON object; nil if it is not one.
func (a Answer) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(a.Body, &m) != nil {
		return nil
	}
	return m
}

// ParseAnswer splits a raw answer: a status line, header lines, an empty line, the body.
func ParseAnswer(raw []byte) (Answer, error) {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return Answer{}, errors.New("no end of headers (CRLF CRLF) in the answer")
	}
	lines := strings.Split(string(head), "\r\n")
	if !strings.HasPrefix(lines[0], "HTTP/") {
		return Answer{}, fmt.Errorf("no status line: %q", lines[0])
	}
	return Answer{StatusLine: lines[0], Headers: lines[1:], Body: body}, nil
}

// shapeValues are the body fields whose values must match a fixture's, not just exist:
// what decides an answer. Everything else (dates, WAL positions, timestamps, system
// identifiers) may differ between runs.
var shapeValues = []string{"state", "role", "pause", "replication_state"}

// ShapeDiff lists how the answer got differs in shape from the fixture want: status line,
// header names and their order, the set of JSON keys (nested ones as "a.b", in arrays
// as "a[].b") and the values of shapeValues. A body that is not JSON must be equal.
// Empty: same shape.
func ShapeDiff(want, got []byte) []string {
	w, err := ParseAnswer(want)
	if err != nil {
		return []string{"fixture: " + err.Error()}
	}
	g, err := ParseAnswer(got)
	if err != nil {
		return []string{"answer: " + err.Error()}
	}
	var diffs []string
	if w.StatusLine != g.StatusLine {
		diffs = append(diffs, fmt.Sprintf("status line %q, fixture %q", g.StatusLine, w.StatusLine))
	}
	if wn, gn := w.HeaderNames(), g.HeaderNames(); !slices.Equal(wn, gn) {
		diffs = append(diffs, fmt.Sprintf("headers %v, fixture %v", gn, wn))
	}
	wj, gj := w.JSON(), g.JSON()
	switch {
	case wj == nil && gj == nil:
		if !bytes.Equal(w.Body, g.Body) {
			diffs = append(diffs, fmt.Sprintf("body %q, fixture %q", g.Body, w.Body))
		}
	case wj == nil || gj == nil:
		diffs = append(diffs, fmt.Sprintf("body %.80q, fixture %.80q", g.Body, w.Body))
	default:
		wk, gk := jsonKeys(wj), jsonKeys(gj)
		for _, k := range wk {
			if !slices.Contains(gk, k) {
				diffs = append(diffs, "no key "+k)
			}
		}
		for _, k := range gk {
			if !slices.Contains(wk, k) {
				diffs = append(diffs, "new key "+k)
			}
		}
		for _, k := range shapeValues {
			wv, _ := json.Marshal(wj[k])
			gv, _ := json.Marshal(gj[k])
			if !bytes.Equal(wv, gv) {
				diffs = append(diffs, fmt.Sprintf("%s %s, fixture %s", k, gv, wv))
			}
		}
	}
	return diffs
}

// jsonKeys lists the key paths of a JSON value, sorted.
func jsonKeys(v any) []string {
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				keys = append(keys, p)
				walk(p, e)
			}
		case []any:
			for _, e := range v {
				walk(prefix+"[]", e)
			}
		}
	}
	walk("", v)
	slices.Sort(keys)
	return slices.Compact(keys)
}
