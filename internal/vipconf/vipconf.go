// Package vipconf writes the keepalived.conf that moves a Patroni
// cluster's virtual IP with patroni-vip-check, for one node, every line
// commented with why. Three set-ups: the check run by keepalived every
// second (keepalived before 2.3.2), every 0.2 s (2.3.2 and later), or a
// resident watcher that keeps a file keepalived tracks (Watch). Beside
// the VIP that follows the primary it may write a read VIP held by a
// replica within a lag bound, and it names everything after the cluster
// when several run on the same hosts (Instance).
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
// FastCheckTimeout, and keepalived's timeout FastScriptTimeout only as a
// backstop above it. keepalived starts its timer at fork, the check its
// deadline in main: on a loaded node 85 ms went between the two, and a
// keepalived timeout of 0.2 s killed checks that were about to answer
// (`bench oneshot-tune` measures the choices). The check's --timeout is
// longer than the interval: under a full CPU (pgbench and busy loops on
// every core) Patroni's answer took longer than 150 ms, and a 150 ms check
// took the VIP off a healthy primary for 0.4 to 8 s; 400 ms held it through
// 120 s of such load. While Patroni hangs, keepalived 2.3.3 skips the runs
// that would start while one goes on, and 2.3.2 overlaps them, which the
// check's state lock allows.
const (
	FastInterval      = 200 * time.Millisecond
	FastScriptTimeout = 500 * time.Millisecond
	FastCheckTimeout  = 400 * time.Millisecond
)

// The watch's units, as the packages install them. A host of one cluster
// runs patroni-vip-check.service, which reads its arguments from
// /etc/default/patroni-vip-check and keeps cmdline.DefaultTrackFile. Every
// other watcher is an instance of the template patroni-vip-check@.service:
// patroni-vip-check@NAME.service reads /etc/default/patroni-vip-check@NAME
// and keeps TrackDir/NAME, which the template names itself
// (packaging/patroni-vip-check@.service; a test holds the two together).
const (
	UnitName = "patroni-vip-check"
	TrackDir = "/run/keepalived-patroni-vip-check"
	// ReadUnit is the read VIP's watcher on a host of one cluster; with
	// an Instance NAME it is NAME-replica.
	ReadUnit = "replica"
)

// DefaultMaxLag is the read VIP's lag bound when none is given: as far
// behind the leader as a replica may be and still hold it, in Patroni's
// units (/replica?lag=).
const DefaultMaxLag = "16MB"

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

	// Instance names this cluster when several share the hosts: every
	// keepalived name, track file and unit of its configuration carries
	// it. "" for a host of one cluster.
	Instance string

	// ReadVIP is a second VIP, held by a replica that ReadURL (Patroni's
	// /replica?lag=) says qualifies, with its own label and router id.
	// Invalid for none.
	ReadVIP      netip.Prefix
	ReadLabel    string
	ReadRouterID int
	ReadURL      string
}

// gate is one VIP and what decides which node holds it: a track file kept
// by a watcher (Watch), or a script keepalived runs (Oneshot).
type gate struct {
	read     bool // the read VIP
	vip      netip.Prefix
	label    string
	routerID int
	url      string
	track    string // the track_file's or vrrp_script's name
	instance string // the vrrp_instance's name
	unit     string // the watcher's unit instance; "" for patroni-vip-check.service
	file     string // the track file (Watch)
}

// gates are the configuration's VIPs: the primary's, then the read VIP.
func (s *Setup) gates() []gate {
	prefix := "patroni_"
	if s.Instance != "" {
		prefix += s.Instance + "_"
	}
	gs := []gate{{vip: s.VIP, label: s.Label, routerID: s.RouterID, url: s.URL,
		track: prefix + "primary", instance: prefix + "vip", unit: s.Instance}}
	if s.ReadVIP.IsValid() {
		unit := ReadUnit
		if s.Instance != "" {
			unit = s.Instance + "-" + ReadUnit
		}
		gs = append(gs, gate{read: true, vip: s.ReadVIP, label: s.ReadLabel, routerID: s.ReadRouterID, url: s.ReadURL,
			track: prefix + "replica", instance: prefix + "read_vip", unit: unit})
	}
	for i := range gs {
		gs[i].file = s.trackFileOf(gs[i].unit)
	}
	return gs
}

// trackFileOf is the file the watcher unit keeps: the plain unit's, or
// the template instance's; beside TrackFile when that is set.
func (s *Setup) trackFileOf(unit string) string {
	switch {
	case s.TrackFile != "" && unit == s.Instance:
		return s.TrackFile
	case s.TrackFile != "":
		return path.Join(path.Dir(s.TrackFile), unit)
	case unit == "":
		return cmdline.DefaultTrackFile
	}
	return path.Join(TrackDir, unit)
}

// unitName is the watcher's systemd unit.
func unitName(unit string) string {
	if unit == "" {
		return UnitName + ".service"
	}
	return UnitName + "@" + unit + ".service"
}

// envFile is the file the watcher's unit reads its arguments from, on
// Debian; RPM-based systems have it in /etc/sysconfig.
func envFile(unit string) string {
	if unit == "" {
		return "/etc/default/" + UnitName
	}
	return "/etc/default/" + UnitName + "@" + unit
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
	if err := checkInstance(s.Instance); err != nil {
		return err
	}
	if s.ReadVIP.IsValid() {
		if err := s.checkRead(); err != nil {
			return err
		}
	}
	for _, g := range s.gates() {
		switch {
		case s.Mode != Watch:
		case !path.IsAbs(g.file):
			return fmt.Errorf("track file %q is not an absolute path", g.file)
		case g.unit != "" && g.file != path.Join(TrackDir, g.unit):
			// The template names its instance's track file itself.
			return fmt.Errorf("%s keeps %s, not %s", unitName(g.unit), path.Join(TrackDir, g.unit), g.file)
		}
	}
	return nil
}

// checkInstance refuses a cluster name that would not make a unit
// instance and a track file of its own: letters, digits, - and _, and
// none that another watcher's file may have (the plain unit's, or a read
// VIP's).
func checkInstance(name string) error {
	if name == "" {
		return nil
	}
	ok := len(name) <= 32 && (name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z' || name[0] >= '0' && name[0] <= '9')
	for _, c := range name {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}
	switch {
	case !ok:
		return fmt.Errorf("instance %q: want up to 32 letters, digits, - or _, starting with a letter or digit", name)
	case name == path.Base(cmdline.DefaultTrackFile):
		return fmt.Errorf("instance %q: that is the track file of %s", name, unitName(""))
	case name == ReadUnit || strings.HasSuffix(name, "-"+ReadUnit):
		return fmt.Errorf("instance %q: names ending in %s are the read VIP watchers'", name, ReadUnit)
	}
	return nil
}

// checkRead refuses a read VIP that keepalived or the check would refuse,
// or that would land on the primary.
func (s *Setup) checkRead() error {
	r := s.ReadVIP.Addr()
	switch {
	case r.Is4() != s.Node.Is4():
		return fmt.Errorf("the read VIP %s and the node address %s are not of the same family", r, s.Node)
	case r == s.Node:
		return fmt.Errorf("the read VIP %s is this node's own address", r)
	case r == s.VIP.Addr():
		return fmt.Errorf("the read VIP %s is the VIP", r)
	case slices.Contains(s.Peers, r):
		return fmt.Errorf("the read VIP %s is the address of a peer", r)
	case reserved(s.ReadVIP) != "":
		return fmt.Errorf("the read VIP %s is the %s of %s: no host may hold it", r, reserved(s.ReadVIP), s.ReadVIP.Masked())
	case s.ReadRouterID < 1 || s.ReadRouterID > 255:
		return fmt.Errorf("the read VIP's virtual_router_id %d is not in 1-255", s.ReadRouterID)
	case s.ReadRouterID == s.RouterID:
		// keepalived: "duplicate VRID conflict", on the same interface,
		// source and peers.
		return fmt.Errorf("the read VIP's virtual_router_id %d is the VIP's: each needs its own", s.ReadRouterID)
	case s.ReadLabel != "" && r.Is6():
		return fmt.Errorf("the read VIP %s is IPv6, which keepalived cannot label", r)
	case s.ReadLabel != "" && (len(s.ReadLabel) > 15 || !strings.HasPrefix(s.ReadLabel, s.Interface)):
		return fmt.Errorf("label %q must start with the interface name and be at most 15 characters", s.ReadLabel)
	}
	if err := checkURL(s.ReadURL); err != nil {
		return fmt.Errorf("the read VIP's URL: %w", err)
	}
	// A gate that is 200 on the primary would put the read VIP there.
	u, _ := url.Parse(s.ReadURL)
	ep := check.EndpointFor(u.Path)
	if ep.Roles == nil || slices.Contains(ep.Roles, "master") || slices.Contains(ep.Roles, "primary") {
		return fmt.Errorf("the read VIP's URL %s is not a replica's endpoint: the primary may pass it", check.Redact(s.ReadURL))
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

// Command is what runs the primary VIP's check: for Oneshot the
// vrrp_script's command, for Watch the service's.
func (s *Setup) Command() []string { return s.command(s.gates()[0]) }

// WatchArgs are the arguments of the primary VIP's watcher, as its
// unit's PATRONI_VIP_CHECK_ARGS holds them.
func (s *Setup) WatchArgs() []string { return s.watchArgs(s.gates()[0]) }

func (s *Setup) command(g gate) []string {
	if s.Mode == Watch {
		return append([]string{s.binary(), "watch"}, s.unitArgs(g)...)
	}
	args := []string{s.binary()}
	if s.fast() {
		args = append(args, "--interval", duration(FastInterval), "--timeout", duration(FastCheckTimeout))
	}
	args = append(args, s.CheckFlags...)
	return append(args, g.url)
}

// watchArgs are what PATRONI_VIP_CHECK_ARGS holds for g's watcher: the
// track file only where the unit does not name it (the plain unit's
// default, and every template instance's, are named by the unit).
func (s *Setup) watchArgs(g gate) []string {
	var args []string
	if g.unit == "" && g.file != cmdline.DefaultTrackFile {
		args = append(args, "--track-file", g.file)
	}
	if s.PGData != "" {
		args = append(args, "--pgdata", s.PGData)
	}
	args = append(args, s.CheckFlags...)
	return append(args, g.url)
}

// unitArgs are the arguments g's unit gives patroni-vip-check watch: a
// template instance names its track file before PATRONI_VIP_CHECK_ARGS.
func (s *Setup) unitArgs(g gate) []string {
	if g.unit == "" {
		return s.watchArgs(g)
	}
	return append([]string{"--track-file=" + path.Join(TrackDir, g.unit)}, s.watchArgs(g)...)
}

// parseCommands reads every command line the configuration gives the
// check (the vrrp_script's, or the service's arguments) with the check's
// own grammar and rules, so that what the generator writes is never
// refused where it runs.
func (s *Setup) parseCommands() error {
	for _, g := range s.gates() {
		m, args := cmdline.Once, s.command(g)[1:]
		if s.Mode == Watch {
			m, args = cmdline.Watch, s.unitArgs(g)
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
	}
	return nil
}

// Render writes the configuration.
func Render(s Setup) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var w keepalived.Writer
	header(&w, &s)
	w.Blank()
	globalDefs(&w, &s)
	gs := s.gates()
	for _, g := range gs {
		w.Blank()
		if s.Mode == Watch {
			trackFile(&w, &s, g)
		} else {
			cmd, err := keepalived.ScriptCommand(s.command(g))
			if err != nil {
				return nil, err
			}
			script(&w, &s, g, cmd)
		}
		w.Blank()
		if g.read {
			readInstance(&w, &s, g, gs[0])
		} else {
			instance(&w, &s, g)
		}
	}
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
	gs := s.gates()
	own := "this node's own address (the check's URL and unicast_src_ip) and its peers (unicast_peer)."
	switch {
	case s.Mode == Watch && len(gs) == 1 && s.Instance == "":
		own = "this node's own address (unicast_src_ip, and the URL in patroni-vip-check.service)\nand its peers (unicast_peer)."
	case s.Mode == Watch:
		own = "this node's own address (unicast_src_ip, and the URLs in the services' arguments)\nand its peers (unicast_peer)."
	case len(gs) > 1:
		own = "this node's own address (the checks' URLs and unicast_src_ip) and its peers\n(unicast_peer)."
	}
	checked := "Checked with keepalived 2.2.7 and Patroni 3.0.2 (Debian 12); see keepalived.conf(5)."
	switch {
	case s.Mode == Watch:
		checked = "Checked with keepalived 2.2.7 (Debian 12) and 2.3.3 (Debian 13); see keepalived.conf(5)."
	case s.fast():
		checked = "For keepalived 2.3.2 and later; checked with 2.3.3 (Debian 13); see keepalived.conf(5)."
	}
	what := fmt.Sprintf("a virtual IP that follows %s", role(s.URL))
	vips := "the VIP " + s.VIP.Addr().String() + "."
	if len(gs) > 1 {
		what = fmt.Sprintf("two virtual IPs: one follows %s, the other\na Patroni replica %s, using patroni-vip-check", role(s.URL), lagWords(s.ReadURL))
		vips = "the VIP " + s.VIP.Addr().String() + " and the read VIP " + s.ReadVIP.Addr().String() + ".\n"
	} else {
		what += ", using patroni-vip-check"
		vips += " "
	}
	cluster := ""
	if s.Instance != "" {
		cluster = fmt.Sprintf("For the Patroni cluster %s, one of several on these hosts.\n", s.Instance)
	}
	w.Comment(fmt.Sprintf(`keepalived.conf — %s.

%sWritten for node %d of a %s-node cluster: nodes %s on %s,
%sOn the other nodes change only the node-specific values:
%s
Everything else is the same on every node.
%s`, what, cluster, n, count(len(nodes)), addrList(nodes), s.Interface, vips, own, checked))
	if s.Instance != "" {
		names := "keepalived's, the track files', the services'"
		if s.Mode == Oneshot {
			names = "the scripts' and the instances'"
		}
		w.Comment(fmt.Sprintf(`
Every name here (%s) carries %s, so
that each cluster's configuration can sit beside the others': save this one as
/etc/keepalived/patroni-%s.conf, and have keepalived.conf include them all:
  include /etc/keepalived/patroni-*.conf
keepalived reads the global_defs of every file (they say the same), and refuses
two VRRP instances with one virtual_router_id on one interface: give each
cluster's VIPs their own.`, names, s.Instance, s.Instance))
	}
}

// lagWords says how far behind the primary the read VIP's replica may
// be, from its URL's lag.
func lagWords(rawURL string) string {
	if lag := lagOf(rawURL); lag != "" {
		return "at most " + lag + " behind the primary"
	}
	return "however far behind the primary"
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

func script(w *keepalived.Writer, s *Setup, g gate, cmd string) {
	w.Open("vrrp_script", g.track)
	if g.read {
		w.Comment(fmt.Sprintf(`Ask this node's own Patroni REST API whether it is a running replica
%s (%s).
The timers are %s's, for the same reasons.`, lagWords(g.url), endpoint(g.url), s.gates()[0].track))
		w.Line("script", cmd)
		if s.fast() {
			w.Line("interval", seconds(FastInterval))
			w.Line("timeout", seconds(FastScriptTimeout))
		} else {
			w.Line("interval", "1")
			w.Line("timeout", "1")
		}
		w.Line("fall", "1")
		w.Line("rise", "1")
		w.Close()
		return
	}
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
		w.Comment(fmt.Sprintf(`The check stops itself after its --timeout (%s, set above) and reports why:
longer than the interval, so that a primary whose Patroni answers slowly under a
full CPU keeps the VIP. keepalived's own timeout is only a backstop above it:
keepalived counts from its fork, and on a busy node the check may start tens of
milliseconds later. (keepalived 2.3.3 does not start a run while the last one is
going: while Patroni hangs it skips runs, and says so.)`, duration(FastCheckTimeout)))
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

func trackFile(w *keepalived.Writer, s *Setup, g gate) {
	w.Open("track_file", g.track)
	args := strings.Join(s.watchArgs(g), " ")
	switch {
	case g.read:
		w.Comment(fmt.Sprintf(`The file %s keeps at 1 while this node's own
Patroni REST API says it is a running replica %s
(%s), and at 0 while it is not. %s
Patroni measures the lag from the position the leader last wrote to the DCS (at
each loop_wait; Patroni 4.1 and later also from what this replica last received),
not from the primary's own: a replica is seen lagging up to a loop_wait late, and
one cut off from a primary that writes nothing keeps qualifying. A replica tagged
noloadbalance never qualifies.`, unitName(g.unit), lagWords(g.url), endpoint(g.url), service(g, args)))
	case g.unit == "":
		w.Comment(fmt.Sprintf(`The file patroni-vip-check.service keeps at 1 while this node's own Patroni REST
API says it is the running primary, and at 0 while it is not. The service runs
patroni-vip-check watch with the arguments in PATRONI_VIP_CHECK_ARGS, set in
/etc/default/patroni-vip-check (or /etc/sysconfig/patroni-vip-check):
  PATRONI_VIP_CHECK_ARGS="%s"
keepalived watches the file's directory (inotify) and sees a change within
milliseconds.`, args))
	default:
		w.Comment(fmt.Sprintf(`The file %s keeps at 1 while this node's own Patroni
REST API says it is the running primary, and at 0 while it is not. %s
keepalived watches the file's directory (inotify) and sees a change within
milliseconds.`, unitName(g.unit), service(g, args)))
	}
	w.Line("file", g.file)
	w.Blank()
	if g.read {
		w.Comment(fmt.Sprintf(`A gate that fails closed, as %s is: anything but a 1 (a 0, no
file, garbage) puts the read VIP's instance in FAULT.`, s.gates()[0].track))
		w.Line("weight", "0", "reverse")
		w.Close()
		return
	}
	w.Comment(fmt.Sprintf(`weight 0 makes the file a gate, not a priority change, and reverse makes it fail
closed: keepalived reads the file with strtol, and any number but 0 (the watcher
writes 1) keeps the instance up; 0, a missing or empty file, or text that is not a
number puts it in FAULT. Without reverse a missing or garbage file would count as
healthy. A 1 left by a watcher that was killed is removed by the unit's ExecStopPost.
The directory must exist when keepalived starts: if it is missing, keepalived drops
this track_file ("Track file directory ... does not exist - removing") and takes
the VIP without it. tmpfiles.d creates %s at boot.`, path.Dir(g.file)))
	w.Line("weight", "0", "reverse")
	w.Close()
}

// service says how a template instance runs its watcher: its arguments,
// its environment file, and how to start it.
func service(g gate, args string) string {
	return fmt.Sprintf(`The service runs
patroni-vip-check watch --track-file=%s
with the arguments in PATRONI_VIP_CHECK_ARGS, set in %s
(or /etc/sysconfig/%s):
  PATRONI_VIP_CHECK_ARGS="%s"
Start it with: systemctl enable --now %s`, g.file, envFile(g.unit), path.Base(envFile(g.unit)), args, unitName(g.unit))
}

// endpoint is the Patroni endpoint a URL asks, with its query.
func endpoint(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery
	}
	return u.Path
}

func instance(w *keepalived.Writer, s *Setup, g gate) {
	w.Open("vrrp_instance", g.instance)
	w.Comment(`Every node starts as BACKUP: which node becomes MASTER is decided by the check,
never by start-up order.`)
	w.Line("state", "BACKUP")
	w.Blank()
	w.Comment(`The interface that carries the node address and the VIP.`)
	w.Line("interface", s.Interface)
	w.Blank()
	w.Comment(`Must be the same on all nodes of this cluster and unique among the VRRP
instances on this network.`)
	w.Line("virtual_router_id", strconv.Itoa(g.routerID))
	w.Blank()
	w.Comment(`The same priority on every node: only the primary passes the check (the others
are in FAULT), and with equal priorities a node that starts passing never
preempts a healthy master, so the VIP moves only when the master's check fails.`)
	w.Line("priority", strconv.Itoa(s.Priority))
	w.Blank()
	if s.Mode == Watch {
		// Measured in BENCHMARKS.md ("Choosing the watch's interval and
		// adverts"): 10 ms adverts take (c)-(a) from 0.07-0.08 s to 0.03-0.05 s.
		w.Comment(`VRRP version 3, for adverts every 10 ms. A node whose track file turns to 1
leaves FAULT for BACKUP and becomes MASTER when no advert has come for
3 x advert_int + skew: 0.035 s here, against 3.6 s with version 2's shortest
advert_int of 1 s. Woken by PostgreSQL's own files (--pgdata), the watcher
writes 1 within milliseconds of Patroni's saying primary, so the VIP reaches a
new primary about 0.04 s after it accepts connections (0.07 s with adverts
every 20 ms; BENCHMARKS.md).
Fast adverts cannot make two masters: every node but the primary is in FAULT,
and a node in FAULT never takes the VIP, however late an advert is.`)
		w.Line("version", "3")
		w.Line("advert_int", "0.01")
	} else {
		after := `With the check's 1 s interval, that brings the VIP to a new
primary about a second after its promotion instead of four (BENCHMARKS.md).`
		if s.fast() {
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
	}
	w.Blank()
	if s.Node.Is4() {
		w.Comment(`Talk to the peers by unicast rather than multicast: works on networks that filter
multicast (most clouds) and keeps each cluster's adverts to its own nodes.`)
	} else {
		w.Comment(`Talk to the peers by unicast rather than multicast: works on networks that filter
multicast (most clouds) and keeps each cluster's adverts to its own nodes. The
source and the peers are the nodes' own IPv6 addresses, of the VIP's family (one
vrrp_instance never mixes IPv4 and IPv6); IPv6 multicast would want a link-local
first VIP.`)
	}
	unicast(w, s)
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
	shows := ""
	if g.label != "" {
		shows = fmt.Sprintf(" The label shows it as %s in `ip addr` and\nifconfig-era tools.", g.label)
	}
	w.Comment("The VIP clients connect to." + shows + " PostgreSQL must listen on it: listen_addresses = '*'.")
	vipLine(w, s, g)
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
	w.Line(g.track)
	w.Close()
	w.Close()
}

// readInstance is the read VIP's vrrp_instance: the primary VIP's
// settings, commented once there, with its own router id, VIP and gate.
func readInstance(w *keepalived.Writer, s *Setup, g, primary gate) {
	w.Open("vrrp_instance", g.instance)
	w.Comment(fmt.Sprintf(`The read VIP, for reads that may be %s. Settings not
explained here are %s's, for the same reasons.`, lagWords(g.url), primary.instance))
	w.Line("state", "BACKUP")
	w.Line("interface", s.Interface)
	w.Blank()
	w.Comment(fmt.Sprintf(`Its own, the same on every node: keepalived refuses two instances with one
virtual_router_id on one interface (%s has %d).`, primary.instance, primary.routerID))
	w.Line("virtual_router_id", strconv.Itoa(g.routerID))
	w.Blank()
	w.Comment(`The same priority on every node: the read VIP moves only when the replica that
holds it stops qualifying (it stops, is promoted, falls behind or is tagged
noloadbalance), never because another starts to: keepalived does not preempt a
master of equal priority.`)
	w.Line("priority", strconv.Itoa(s.Priority))
	w.Line("version", "3")
	w.Line("advert_int", "0.02")
	unicast(w, s)
	w.Line("check_unicast_src")
	w.Blank()
	w.Comment(`The read VIP. While no replica qualifies, no node holds it: it never falls back to
the primary, so that what connects to it reaches a replica within the lag or
nothing (reads that must never write stay read-only, and the primary's load stays
its own). A client that would rather read from the primary then names both, the
read VIP first: host=READ_VIP,VIP target_session_attrs=prefer-standby (libpq 14
and later).`)
	vipLine(w, s, g)
	w.Line("accept")
	w.Blank()
	w.Comment(fmt.Sprintf("Gated by %s alone, without weight, as %s is\nby %s.", g.track, primary.instance, primary.track))
	if s.Mode == Watch {
		w.Open("track_file")
	} else {
		w.Open("track_script")
	}
	w.Line(g.track)
	w.Close()
	w.Close()
}

// unicast writes the instance's unicast source and peers.
func unicast(w *keepalived.Writer, s *Setup) {
	w.Line("unicast_src_ip", s.Node.String())
	w.Open("unicast_peer")
	for _, p := range s.Peers {
		w.Line(p.String())
	}
	w.Close()
}

// vipLine writes g's virtual_ipaddress block.
func vipLine(w *keepalived.Writer, s *Setup, g gate) {
	vip := []string{g.vip.String(), "dev", s.Interface}
	if g.label != "" {
		vip = append(vip, "label", g.label)
	}
	w.Open("virtual_ipaddress")
	w.Line(vip...)
	w.Close()
}

// lagOf is the lag bound in a /replica URL, "" for none.
func lagOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("lag")
}

// seconds writes d as keepalived's decimal seconds: "1", "0.2".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// duration writes d as the check's flags take it: "150ms", "1s".
func duration(d time.Duration) string {
	return d.String()
}
