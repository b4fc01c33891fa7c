// Package vipconf writes the keepalived.conf that moves a Patroni
// cluster's virtual IP with patroni-vip-check, for one node, every line
// commented with why. Three set-ups: the check run by keepalived every
// second (keepalived before 2.3.2), every 0.2 s (2.3.2 and later), or a
// resident watcher that keeps a file keepalived tracks (Watch).
// packaging/keepalived*.conf are its output for the lab's node 1.
package vipconf

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/cmdline"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
)

// Mode is how keepalived learns the check's answer.
type Mode string

const (
	// Oneshot: keepalived runs the check as a vrrp_script.
	Oneshot Mode = "oneshot"
	// Watch: patroni-vip-check.service keeps a file at 1 or 0, which
	// keepalived tracks with track_file.
	Watch Mode = "watch"
)

// RecommendedMode is the default, as the benchmarks decide it: the watch
// puts the VIP on a new primary as fast on keepalived 2.2 as on 2.3
// (medians 0.13-0.23 s, against 0.58-0.95 s for the check every second,
// and 0.12-0.17 s for the check every 0.2 s on 2.3.3, which costs the node
// 1.75 times the watch's CPU), and it fails closed where keepalived would
// run without a check (BENCHMARKS.md, sections 3 and 4).
const RecommendedMode = Watch

// Timers of the oneshot set-up from keepalived 2.3.2, which takes
// fractional seconds: the check every FastInterval, with its own --timeout
// FastCheckTimeout below the interval (so that a hung Patroni never makes
// keepalived skip runs), and keepalived's timeout FastScriptTimeout only as
// a backstop well above it. keepalived starts its timer at fork, the check
// its deadline in main: on a loaded node 85 ms went between the two, and a
// keepalived timeout of 0.2 s killed checks that were about to answer
// (`bench oneshot-tune` measures the choices).
const (
	FastInterval      = 200 * time.Millisecond
	FastScriptTimeout = 500 * time.Millisecond
	FastCheckTimeout  = 150 * time.Millisecond
)

// Setup is everything that goes into one node's keepalived.conf.
type Setup struct {
	Mode       Mode
	Keepalived keepalived.Version
	Binary     string   // the check; cmdline.Binary if empty
	URL        string   // Patroni health endpoint on this node
	CheckFlags []string // the check's flags before the URL (TLS)
	Node       netip.Addr
	Peers      []netip.Addr
	Interface  string
	VIP        netip.Prefix
	Label      string // "" for none
	RouterID   int
	Priority   int
	TrackFile  string // Watch; cmdline.DefaultTrackFile if empty
	PGData     string // Watch: PostgreSQL's data directory, "" for none
}

func (s *Setup) fast() bool { return s.Mode == Oneshot && s.Keepalived.FractionalTimers() }

func (s *Setup) check() error {
	switch {
	case s.Mode != Oneshot && s.Mode != Watch:
		return fmt.Errorf("unknown mode %q (oneshot or watch)", s.Mode)
	case s.Keepalived.IsZero():
		return errors.New("the keepalived version is not known")
	case !s.Node.IsValid():
		return errors.New("this node's address is not known")
	case !s.VIP.IsValid():
		return errors.New("no VIP")
	case s.VIP.Addr().Is4() != s.Node.Is4():
		return fmt.Errorf("the VIP %s and the node address %s are not of the same family", s.VIP, s.Node)
	case s.VIP.Addr() == s.Node:
		return fmt.Errorf("the VIP %s is this node's own address", s.VIP.Addr())
	case len(s.Peers) == 0:
		return errors.New("no peers")
	case s.Interface == "":
		return errors.New("no interface")
	case s.RouterID < 1 || s.RouterID > 255:
		return fmt.Errorf("virtual_router_id %d is not in 1-255", s.RouterID)
	case s.Priority < 1 || s.Priority > 254:
		return fmt.Errorf("priority %d is not in 1-254 (255 would make this node the address owner)", s.Priority)
	}
	for _, p := range s.Peers {
		if p == s.Node {
			return fmt.Errorf("peer %s is this node", p)
		}
		if p.Is4() != s.Node.Is4() {
			return fmt.Errorf("peer %s and the node address %s are not of the same family", p, s.Node)
		}
		if p == s.VIP.Addr() {
			return fmt.Errorf("the VIP %s is the address of the peer %s", s.VIP.Addr(), p)
		}
	}
	if what := reserved(s.VIP); what != "" {
		return fmt.Errorf("the VIP %s is the %s of %s: no host may hold it", s.VIP.Addr(), what, s.VIP.Masked())
	}
	if s.Label != "" && s.VIP.Addr().Is6() {
		// keepalived: "Cannot specify label for IPv6 addresses".
		return fmt.Errorf("the VIP %s is IPv6, which keepalived cannot label: no --label", s.VIP.Addr())
	}
	if s.Label != "" && (len(s.Label) > 15 || !strings.HasPrefix(s.Label, s.Interface)) {
		return fmt.Errorf("label %q must start with the interface name and be at most 15 characters", s.Label)
	}
	if s.Mode == Oneshot || s.URL != "" {
		if err := checkURL(s.URL); err != nil {
			return err
		}
	}
	if s.Mode == Watch && !path.IsAbs(s.trackFile()) {
		return fmt.Errorf("track file %q is not an absolute path", s.trackFile())
	}
	return nil
}

// reserved names what addr is in its subnet when no host may hold it:
// IPv4's network and broadcast addresses (a /31 or /32 has none), and
// IPv6's subnet-router anycast address, its network address (RFC 4291
// 2.6.1; a /127 or /128 has none).
func reserved(p netip.Prefix) string {
	a, bits := p.Addr(), p.Bits()
	if bits >= a.BitLen()-1 {
		return ""
	}
	if a == p.Masked().Addr() {
		return "network address"
	}
	if !a.Is4() {
		return ""
	}
	b := a.As4()
	for i := range b {
		host := 8*(i+1) - bits // host bits in this byte
		switch {
		case host <= 0:
			continue
		case host >= 8:
			if b[i] != 0xff {
				return ""
			}
		default:
			if m := byte(1<<host - 1); b[i]&m != m {
				return ""
			}
		}
	}
	return "broadcast address"
}

// checkURL refuses a URL that the check itself would refuse, with the
// check's own words: its rules (scheme, host, port, no credentials, no
// fragment) are check.New's. The files that flags name are read on the
// node when the check starts, not here.
func checkURL(rawURL string) error {
	if _, err := check.New(check.Options{URL: rawURL}); err != nil {
		return err
	}
	return nil
}

func (s *Setup) binary() string {
	if s.Binary == "" {
		return cmdline.Binary
	}
	return s.Binary
}

func (s *Setup) trackFile() string {
	if s.TrackFile == "" {
		return cmdline.DefaultTrackFile
	}
	return s.TrackFile
}

// Command is what runs the check: for Oneshot the vrrp_script's command,
// for Watch the service's.
func (s *Setup) Command() []string {
	if s.Mode == Watch {
		return append([]string{s.binary(), "watch"}, s.WatchArgs()...)
	}
	args := []string{s.binary()}
	if s.fast() {
		args = append(args, "--interval", duration(FastInterval), "--timeout", duration(FastCheckTimeout))
	}
	args = append(args, s.CheckFlags...)
	return append(args, s.URL)
}

// WatchArgs are the arguments of patroni-vip-check watch, as the service's
// PATRONI_VIP_CHECK_ARGS holds them: the track file only if it is not the
// one the unit removes when it stops.
func (s *Setup) WatchArgs() []string {
	var args []string
	if s.trackFile() != cmdline.DefaultTrackFile {
		args = append(args, "--track-file", s.trackFile())
	}
	if s.PGData != "" {
		args = append(args, "--pgdata", s.PGData)
	}
	args = append(args, s.CheckFlags...)
	return append(args, s.URL)
}

// parseCommands reads every command line the configuration gives the
// check (the vrrp_script's, or the service's arguments) with the check's
// own grammar and rules, so that what the generator writes is never
// refused where it runs.
func (s *Setup) parseCommands() error {
	m, args := cmdline.Once, s.Command()[1:]
	if s.Mode == Watch {
		m, args = cmdline.Watch, s.WatchArgs()
	}
	cfg, err := cmdline.Parse(m, args)
	if err != nil {
		return fmt.Errorf("the check would refuse its command line: %w", err)
	}
	// The files it names are read on the node when it starts: not here.
	opts := cfg.CheckOptions("")
	opts.CACert, opts.Cert, opts.Key, opts.User, opts.PasswordFile = "", "", "", "", ""
	if _, err := check.New(opts); err != nil {
		return fmt.Errorf("the check would refuse its command line: %w", err)
	}
	return nil
}

// Render writes the configuration.
func Render(s Setup) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	cmd, err := keepalived.ScriptCommand(s.Command())
	if err != nil {
		return nil, err
	}
	var w keepalived.Writer
	header(&w, &s)
	w.Blank()
	globalDefs(&w, &s)
	w.Blank()
	if s.Mode == Watch {
		trackFile(&w, &s)
	} else {
		script(&w, &s, cmd)
	}
	w.Blank()
	instance(&w, &s)
	return w.Bytes()
}

// role is what the VIP follows, from the URL's endpoint.
func role(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "the Patroni primary"
	}
	switch strings.Trim(u.Path, "/") {
	case "", "primary", "master", "read-write", "leader":
		return "the Patroni primary"
	case "standby-leader", "standby_leader":
		return "the Patroni standby leader"
	case "replica", "read-only", "sync", "synchronous", "async", "asynchronous":
		return "a Patroni replica"
	}
	return "what Patroni's " + u.Path + " endpoint says"
}

func header(w *keepalived.Writer, s *Setup) {
	nodes := append([]netip.Addr{s.Node}, s.Peers...)
	slices.SortFunc(nodes, func(a, b netip.Addr) int { return a.Compare(b) })
	n := slices.Index(nodes, s.Node) + 1
	own := "this node's own address (the check's URL and unicast_src_ip) and its peers (unicast_peer)."
	if s.Mode == Watch {
		own = "this node's own address (unicast_src_ip, and the URL in patroni-vip-check.service)\nand its peers (unicast_peer)."
	}
	checked := "Checked with keepalived 2.2.7 and Patroni 3.0.2 (Debian 12); see keepalived.conf(5)."
	switch {
	case s.Mode == Watch:
		checked = "Checked with keepalived 2.2.7 (Debian 12) and 2.3.3 (Debian 13); see keepalived.conf(5)."
	case s.fast():
		checked = "For keepalived 2.3.2 and later; checked with 2.3.3 (Debian 13); see keepalived.conf(5)."
	}
	w.Comment(fmt.Sprintf(`keepalived.conf — a virtual IP that follows %s, using patroni-vip-check.

Written for node %d of a %s-node cluster: nodes %s on %s,
the VIP %s. On the other nodes change only the node-specific values:
%s
Everything else is the same on every node.
%s`, role(s.URL), n, count(len(nodes)), addrList(nodes), s.Interface, s.VIP.Addr(), own, checked))
}

func count(n int) string {
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	if n < len(words) {
		return words[n]
	}
	return strconv.Itoa(n)
}

// addrList is "198.51.100.11, .12 and .13": addresses after the first
// lose the first's leading octets when they share them.
func addrList(addrs []netip.Addr) string {
	first := addrs[0].String()
	prefix := ""
	if addrs[0].Is4() {
		prefix = first[:strings.LastIndexByte(first, '.')]
	}
	parts := []string{first}
	for _, a := range addrs[1:] {
		s := a.String()
		if prefix != "" && strings.HasPrefix(s, prefix+".") {
			s = strings.TrimPrefix(s, prefix)
		}
		parts = append(parts, s)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func globalDefs(w *keepalived.Writer, s *Setup) {
	w.Open("global_defs")
	if s.Mode == Watch {
		w.Comment(`Refuse to run a script whose path a non-root user could replace. No script runs
here (patroni-vip-check runs as a service and keepalived only reads its file), but
keep this for any notify script added later: without it a writable script path is
an easy root escalation.`)
		w.Line("enable_script_security")
		w.Blank()
		w.Comment(`Name the scripts' user. Left unset with enable_script_security, keepalived looks
for the user keepalived_script and, where there is none, drops every script
("Unable to set default user").`)
		w.Line("script_user", "root")
	} else {
		w.Comment(fmt.Sprintf(`Refuse to run a check whose path a non-root user could replace. Without this a
writable script path is an easy root escalation. patroni-vip-check is installed as
%s, root:root 0755, which passes. Beware: if the path is ever
refused ("Unsafe permissions found"), keepalived disables the check and the instance
takes the VIP without it, so after any change look for that line in keepalived's log.`, s.binary()))
		w.Line("enable_script_security")
		w.Blank()
		w.Comment(fmt.Sprintf(`Run the check as root, named explicitly: left unset, keepalived switches to the
user keepalived_script as soon as such a user exists (whose state directory,
%s/keepalived_script, only root can make), and drops every script
where there is none ("Unable to set default user").`, cmdline.RootStateDir))
		w.Line("script_user", "root")
	}
	w.Blank()
	w.Comment(`No vrrp_strict here: it refuses unicast peers on an interface that can multicast
and, unless accept is set, drops all traffic to the VIP (see accept below).`)
	w.Close()
}

func script(w *keepalived.Writer, s *Setup, cmd string) {
	w.Open("vrrp_script", "patroni_primary")
	w.Comment(`Ask this node's own Patroni REST API whether it is the running primary.
keepalived runs this without a shell; the check exits 0 (may hold the VIP) or 1.`)
	w.Line("script", cmd)
	w.Blank()
	if s.fast() {
		w.Comment(fmt.Sprintf(`Run the check every %s s: keepalived 2.3.2 and later take fractions of a
second. Earlier versions reject "%s" and run it every second; the check's
--interval (set above) makes it say so in the log. A run costs a few
milliseconds of CPU.`, seconds(FastInterval), seconds(FastInterval)))
		w.Line("interval", seconds(FastInterval))
		w.Blank()
		w.Comment(fmt.Sprintf(`The check stops itself after its --timeout (%s, set above, shorter than the
interval) and reports why. keepalived's own timeout is only a backstop, well
above that: keepalived counts from its fork, and on a busy node the check may
start tens of milliseconds later. (keepalived 2.3.3 does not start a run while
the last one is going.)`, duration(FastCheckTimeout)))
		w.Line("timeout", seconds(FastScriptTimeout))
	} else {
		w.Comment(`Run the check every second: keepalived's default, and its shortest (whole
seconds). A run costs a few milliseconds of CPU.`)
		w.Line("interval", "1")
		w.Blank()
		w.Comment(fmt.Sprintf(`The check stops itself after its --timeout (%s by default) and reports why.
keepalived's own timeout (whole seconds) must be longer than that, so that the
check always answers before keepalived would kill it. (keepalived 2.2.7 may still
start a run while the last one is going; the check's state lock copes.)`, duration(cmdline.DefaultTimeout)))
		w.Line("timeout", "1")
	}
	w.Blank()
	w.Comment(`Patroni's answer is authoritative and the check already retries transport errors
inside its deadline: one failed run releases the VIP (no window with the VIP on a
demoted node), one good run makes the node a candidate again.`)
	w.Line("fall", "1")
	w.Line("rise", "1")
	w.Close()
}

func trackFile(w *keepalived.Writer, s *Setup) {
	w.Open("track_file", "patroni_primary")
	w.Comment(fmt.Sprintf(`The file patroni-vip-check.service keeps at 1 while this node's own Patroni REST
API says it is the running primary, and at 0 while it is not. The service runs
patroni-vip-check watch with the arguments in PATRONI_VIP_CHECK_ARGS, set in
/etc/default/patroni-vip-check (or /etc/sysconfig/patroni-vip-check):
  PATRONI_VIP_CHECK_ARGS="%s"
keepalived watches the file's directory (inotify) and sees a change within
milliseconds.`, strings.Join(s.WatchArgs(), " ")))
	w.Line("file", s.trackFile())
	w.Blank()
	w.Comment(fmt.Sprintf(`weight 0 makes the file a gate, not a priority change, and reverse makes it fail
closed: keepalived reads the file with strtol, and any number but 0 (the watcher
writes 1) keeps the instance up; 0, a missing or empty file, or text that is not a
number puts it in FAULT. Without reverse a missing or garbage file would count as
healthy. A 1 left by a watcher that was killed is removed by the unit's ExecStopPost.
The directory must exist when keepalived starts: if it is missing, keepalived drops
this track_file ("Track file directory ... does not exist - removing") and takes
the VIP without it. tmpfiles.d creates %s at boot.`, path.Dir(s.trackFile())))
	w.Line("weight", "0", "reverse")
	w.Close()
}

func instance(w *keepalived.Writer, s *Setup) {
	w.Open("vrrp_instance", "patroni_vip")
	w.Comment(`Every node starts as BACKUP: which node becomes MASTER is decided by the check,
never by start-up order.`)
	w.Line("state", "BACKUP")
	w.Blank()
	w.Comment(`The interface that carries the node address and the VIP.`)
	w.Line("interface", s.Interface)
	w.Blank()
	w.Comment(`Must be the same on all nodes of this cluster and unique among the VRRP
instances on this network.`)
	w.Line("virtual_router_id", strconv.Itoa(s.RouterID))
	w.Blank()
	w.Comment(`The same priority on every node: only the primary passes the check (the others
are in FAULT), and with equal priorities a node that starts passing never
preempts a healthy master, so the VIP moves only when the master's check fails.`)
	w.Line("priority", strconv.Itoa(s.Priority))
	w.Blank()
	after := `With the check's 1 s interval, that brings the VIP to a new
primary about a second after its promotion instead of four (BENCHMARKS.md).`
	switch {
	case s.Mode == Watch:
		after = `With the file rewritten at each of the watcher's polls,
the VIP reaches a new primary within one poll and 0.07 s of its promotion.`
	case s.fast():
		after = fmt.Sprintf(`With the check every %s s, the VIP reaches a new
primary within a quarter of a second of its promotion.`, seconds(FastInterval))
	}
	w.Comment(`VRRP version 3, for adverts every 20 ms. A node whose check starts passing
leaves FAULT for BACKUP and becomes MASTER when no advert has come for
3 x advert_int + skew: 0.07 s here, against 3.6 s with version 2's shortest
advert_int of 1 s. ` + after + `
Fast adverts cannot make two masters: every node but the primary is in FAULT,
and a node in FAULT never takes the VIP, however late an advert is.`)
	w.Line("version", "3")
	w.Line("advert_int", "0.02")
	w.Blank()
	if s.Node.Is4() {
		w.Comment(`Talk to the peers by unicast rather than multicast: works on networks that filter
multicast (most clouds) and keeps each cluster's adverts to its own nodes.`)
	} else {
		w.Comment(`Talk to the peers by unicast rather than multicast: works on networks that filter
multicast (most clouds) and keeps each cluster's adverts to its own nodes. With
unicast, the source and the peers are the nodes' own IPv6 addresses, of the VIP's
family (one vrrp_instance never mixes IPv4 and IPv6); multicast would need the
first VIP to be link-local.`)
	}
	w.Line("unicast_src_ip", s.Node.String())
	w.Open("unicast_peer")
	for _, p := range s.Peers {
		w.Line(p.String())
	}
	w.Close()
	w.Blank()
	if s.Node.Is4() {
		w.Comment(`Drop adverts from any address but the peers above, so that a stray or
misconfigured keepalived cannot join this instance. VRRP version 3 has no
authentication block; with version 2 (advert_int 1, and a VIP 3 s slower to
follow a new primary) a shared password does this job instead:
  authentication {
      auth_type PASS
      auth_pass pg-vip-1    # only the first 8 characters count
  }`)
	} else {
		w.Comment(`Drop adverts from any address but the peers above, so that a stray or
misconfigured keepalived cannot join this instance. IPv6 has VRRP version 3
only, which has no authentication block: this and a network of the nodes' own
are what protect the adverts.`)
	}
	w.Line("check_unicast_src")
	w.Blank()
	vip := []string{s.VIP.String(), "dev", s.Interface}
	shows := ""
	if s.Label != "" {
		vip = append(vip, "label", s.Label)
		shows = fmt.Sprintf(" The label shows it as %s in `ip addr` and\nifconfig-era tools.", s.Label)
	}
	w.Comment("The VIP clients connect to." + shows + " PostgreSQL must listen on it: listen_addresses = '*'.")
	w.Open("virtual_ipaddress")
	w.Line(vip...)
	w.Close()
	w.Blank()
	w.Comment(`Accept traffic to the VIP. The original configuration had no_accept, which makes
keepalived 2.2.7 install a firewall rule that drops every packet addressed to the
VIP on the master: the VIP moves, yet no client can connect to it. With accept,
keepalived adds no firewall rule; a host firewall of your own must let VRRP
(IP protocol 112) pass between the nodes, and PostgreSQL's port to the VIP.`)
	w.Line("accept")
	w.Blank()
	if s.Mode == Watch {
		w.Comment(`The file gates this instance: while it is not 1, the instance is in FAULT and does
not hold the VIP (the track_file's weight 0 reverse applies: no weight here).`)
		w.Open("track_file")
	} else {
		w.Comment(`The check gates this instance: while it fails, the instance is in FAULT and does
not hold the VIP (no weight, so a failure is never outvoted by priority).`)
		w.Open("track_script")
	}
	w.Line("patroni_primary")
	w.Close()
	w.Close()
}

// seconds writes d as keepalived's decimal seconds: "1", "0.2".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// duration writes d as the check's flags take it: "150ms", "1s".
func duration(d time.Duration) string {
	return d.String()
}
