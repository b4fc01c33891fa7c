package doctor

import (
	"bytes"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/patroni"
)

// What a vrrp_script asks, and whether the answer follows the primary.
// Patroni's health endpoints are in its docs/rest_api.rst: GET / is
// /primary; /leader is 200 on a standby cluster's standby leader too;
// /health is 200 wherever PostgreSQL runs; /patroni, /liveness and
// /readiness whenever Patroni answers.

// notRole says, for an endpoint that is no role, who answers it 200.
var notRole = map[string]string{
	"/health":    "on every node where PostgreSQL runs, replicas too: every node is a candidate for the VIP",
	"/patroni":   "whenever Patroni answers, on every node: every node is a candidate for the VIP",
	"/liveness":  "whenever Patroni's main loop runs, on every node: every node is a candidate for the VIP",
	"/readiness": "on every node where PostgreSQL runs, replicas too: every node is a candidate for the VIP",
	"/leader":    "on the holder of the leader lock, also on a standby cluster's standby leader, which takes no writes",
}

// patroniPaths are the paths Patroni's REST API answers.
var patroniPaths = []string{"/", "/primary", "/master", "/read-write", "/standby-leader", "/standby_leader", "/leader",
	"/replica", "/read-only", "/read-only-sync", "/sync", "/synchronous", "/async", "/asynchronous", "/quorum",
	"/read-only-quorum", "/health", "/liveness", "/readiness", "/patroni", "/cluster", "/history", "/config", "/metrics"}

// askedURL is a URL a check asks, read as Patroni's or not.
type askedURL struct {
	raw      string
	host     string
	port     int
	endpoint string // the path, "/" for none
	patroni  bool
}

func readURL(raw string) (askedURL, bool) {
	u := raw
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return askedURL{}, false
	}
	a := askedURL{raw: raw, host: p.Hostname(), endpoint: strings.TrimRight(p.Path, "/")}
	if a.endpoint == "" {
		a.endpoint = "/"
	}
	switch port := p.Port(); {
	case port != "":
		fmt.Sscanf(port, "%d", &a.port)
	case p.Scheme == "https":
		a.port = 443
	default:
		a.port = 80
	}
	a.patroni = a.port == 8008 || contains(patroniPaths, a.endpoint) && a.endpoint != "/"
	return a, true
}

// judgeURL: a check should ask a role endpoint, where Patroni listens.
// It reports whether the URL is Patroni's.
func (d *doctor) judgeURL(pos keepalived.Pos, who, raw string) bool {
	a, ok := readURL(raw)
	if !ok || !a.patroni {
		return false
	}
	const fix = "ask /primary (or /replica for a VIP of the replicas)"
	shown := show(raw)
	switch why, bad := notRole[a.endpoint]; {
	case bad:
		d.warn(pos, fix, "%s asks %s: Patroni answers %s 200 %s", who, shown, a.endpoint, why)
	case a.endpoint == "/":
		d.warn(pos, "ask /primary", "%s asks %s: Patroni answers / as it answers /primary, under a name that does not say which role it waits for", who, shown)
	}
	d.judgeHost(pos, who, a)
	return true
}

// judgeHost: a check must ask this node's own Patroni, where its REST API
// listens: not the loopback address when restapi.listen is the node's
// address, not another node's address, and on restapi.listen's port.
func (d *doctor) judgeHost(pos keepalived.Pos, who string, a askedURL) {
	asked, _ := netip.ParseAddr(strings.Trim(a.host, "[]"))
	if asked.IsValid() && !asked.IsLoopback() && d.ifaces != nil && !d.local(asked) {
		d.warn(pos, "ask this node's own REST API (its restapi.connect_address)",
			"%s asks %s, an address this node does not have: it follows another node's Patroni, and this node holds the VIP when that node is the primary", who, show(a.host))
		return
	}
	if d.patroni == nil {
		return
	}
	host, port, err := patroni.SplitHostPort(d.patroni.RestAPI.Listen)
	if err != nil {
		return
	}
	if a.port != port {
		d.warn(pos, fmt.Sprintf("ask port %d", port),
			"%s asks port %d, but Patroni's REST API listens on port %d (restapi.listen in %s): nothing answers there, and the check never passes",
			who, a.port, port, show(d.patroni.Path))
		return
	}
	if !loopback(a.host) {
		return
	}
	for _, h := range strings.Split(host, ",") {
		if h = strings.TrimSpace(h); h == "" || h == "0.0.0.0" || h == "::" || h == "*" || loopback(h) {
			return
		}
	}
	own := strings.Split(host, ",")[0]
	if ad, err := netip.ParseAddr(own); err == nil && ad.Is6() {
		own = "[" + own + "]"
	}
	d.warn(pos, fmt.Sprintf("ask http://%s:%d%s", own, port, a.endpoint),
		"%s asks %s, but Patroni's REST API listens on %s only (restapi.listen in %s): nothing answers there, and the check never passes",
		who, show(a.host), show(d.patroni.RestAPI.Listen), show(d.patroni.Path))
}

// local reports whether an interface of this machine has the address.
func (d *doctor) local(a netip.Addr) bool {
	for _, it := range d.ifaces {
		for _, p := range it.Addrs {
			if p.Addr() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

func loopback(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && a.IsLoopback()
}

// asks judges, from the configuration alone, what the command asks.
func (d *doctor) asks(sc *keepalived.Script, c command, cfg cmdline.Config, isPVC bool) {
	pos, who := sc.Script.Pos, "vrrp_script "+show(sc.Name)
	switch {
	case isPVC:
		d.judgeURL(pos, who, cfg.URL)
		return
	case c.system:
		target := strings.TrimLeft(c.args[0][1:], " \t")
		if rest, ok := strings.CutPrefix(target, "/dev/tcp/"); ok {
			host, port, _ := strings.Cut(rest, "/")
			d.warn(pos, "use patroni-vip-check http://NODE:8008/primary",
				"%s only checks that a TCP connection to %s port %s opens: every node where it listens passes, replicas too", who, show(host), show(port))
			return
		}
		d.warn(pos, "use patroni-vip-check http://NODE:8008/primary", "%s only checks that %s opens: it does not ask Patroni which node is the primary", who, show(target))
		return
	case len(c.argv) == 0:
		return
	}
	name := path.Base(c.argv[0])
	var asked []string
	switch {
	case c.script != "":
		asked = shellURLs(c.script)
	case contains(httpClients, name):
		asked = urls(c.argv)
	}
	patroniURL := false
	for _, u := range asked {
		patroniURL = d.judgeURL(pos, who, u) || patroniURL
	}
	// curl decides the exit status when nothing follows it: on its own, or
	// alone in sh -c.
	alone := c.script == "" || len(shellCommands(c.script)) == 1
	switch {
	case patroniURL && name == "curl" && alone && !curlFails(c.argv) && len(c.problems) == 0:
		d.fail(pos, "add --fail (and --max-time), or use patroni-vip-check",
			"%s: curl exits 0 on any answer, Patroni's 503 included, without --fail: every node whose Patroni answers passes, replicas too", who)
	case patroniURL:
	case name == "patronictl" || strings.Contains(c.script, "patronictl"):
	case contains(httpClients, name) || c.script != "" && len(asked) > 0:
		d.warn(pos, "ask Patroni's REST API (port 8008), or use patroni-vip-check",
			"%s asks %s, which is not Patroni's REST API: the VIP follows what it answers, not the primary", who, show(strings.Join(asked, " ")))
	case contains([]string{"killall", "pkill", "pgrep", "pidof", "systemctl", "service"}, name):
		d.warn(pos, "use patroni-vip-check http://NODE:8008/primary",
			"%s checks that a process runs (%s): it does not ask Patroni, and the VIP follows that process, not the primary", who, show(strings.Join(c.argv, " ")))
	case contains([]string{"pg_isready", "psql", "pg_ctl", "pg_ctlcluster", "pg_lsclusters"}, name):
		d.warn(pos, "use patroni-vip-check http://NODE:8008/primary",
			"%s asks PostgreSQL (%s), not Patroni: a replica answers too, and the VIP does not follow the primary", who, name)
	}
}

// Script files on this machine: what they ask, read as text.
var (
	scriptURLRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:https?://[^\s"'|;<>()\x60]+|\b[A-Za-z0-9_.\-]+:8008(?:/[^\s"'|;<>()\x60]*)?)`)
	})
)

// maxScriptText bounds what is read of a check script.
const maxScriptText = 64 << 10

// scriptAsks reads a script file the check runs and says whether it asks
// Patroni, and what.
func (d *doctor) scriptAsks(sc *keepalived.Script, file string) {
	pos, who := sc.Script.Pos, "vrrp_script "+show(sc.Name)
	// A program, not a script: it says nothing to read.
	if head, err := readHead(d.sys, file, 512); err != nil || !isText(head) {
		return
	}
	data, err := readHead(d.sys, file, maxScriptText)
	if err != nil || !isText(data) {
		return
	}
	text := string(data)
	found := scriptURLRe().FindAllString(text, 8)
	patroniURL := false
	for _, u := range found {
		patroniURL = d.judgeURL(pos, who+" ("+show(file)+")", u) || patroniURL
	}
	switch {
	case patroniURL:
		d.ok(pos, "%s: %s asks Patroni's REST API", who, show(file))
	case strings.Contains(text, "patronictl"):
		d.ok(pos, "%s: %s asks patronictl", who, show(file))
	default:
		d.warn(pos, "use patroni-vip-check http://NODE:8008/primary",
			"%s: %s asks neither Patroni's REST API nor patronictl: the VIP follows what it checks, not the primary", who, show(file))
	}
}

// isText reports whether data looks like a script: no NUL byte.
func isText(data []byte) bool {
	return bytes.IndexByte(data, 0) < 0
}
