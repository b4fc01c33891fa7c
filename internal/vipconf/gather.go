package vipconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/patroni"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

// Input is what the user said; empty fields are read from the machine.
type Input struct {
	Mode              Mode   // "" for RecommendedMode
	VIP               string // ADDR/PREFIX, required
	KeepalivedVersion string // "" for the installed keepalived's
	PatroniConfig     string // "" for the one found where packages put it
	Node              string // "" for Patroni's restapi.connect_address
	Peers             []string
	Interface         string  // "" for the one that holds Node
	Label             *string // nil for INTERFACE:1
	RouterID          int     // 0 for the VIP's last byte
	Priority          int     // 0 for 100
	URL               string  // "" for https?://NODE:PORT/primary
	PGData            *string // watch --pgdata; nil for Patroni's postgresql.data_dir
	// The check's TLS flags; nil for what Patroni's configuration implies.
	CACert, Cert, Key, ServerName *string
	Insecure                      bool
	// The check's basic auth: the user, and the file whose first line is
	// the password.
	User, PasswordFile string

	// Instance names the cluster when several share these hosts; it
	// picks its Patroni configuration (by scope or file name) when
	// several are found. "" for a host of one cluster.
	Instance string
	// ReadVIP is the read VIP (ADDR/PREFIX), "" for none; MaxLag its
	// bound in Patroni's units ("" for DefaultMaxLag); ReadRouterID its
	// virtual_router_id (0 for its last byte).
	ReadVIP      string
	MaxLag       string
	ReadRouterID int
	// KeepalivedConf is the keepalived configuration to keep clear of
	// (other clusters' virtual_router_ids): nil for
	// DefaultKeepalivedConf, "" for none.
	KeepalivedConf *string
}

// DefaultKeepalivedConf is where keepalived reads its configuration.
const DefaultKeepalivedConf = "/etc/keepalived/keepalived.conf"

// KeepalivedBinaries are where distributions install keepalived.
func KeepalivedBinaries() []string {
	return []string{"/usr/sbin/keepalived", "/sbin/keepalived", "/usr/local/sbin/keepalived", "/usr/bin/keepalived"}
}

// Gather completes in from the machine: Patroni's configuration (its
// REST API's address and TLS), Patroni's /cluster answer (the peers),
// the interfaces and keepalived's version. Warnings are for things that
// may be meant (a VIP outside the node's subnet).
func Gather(ctx context.Context, sys system.System, in Input) (Setup, []string, error) {
	var warnings []string
	s := Setup{Mode: in.Mode, Priority: in.Priority, RouterID: in.RouterID}
	if s.Mode == "" {
		s.Mode = RecommendedMode
	}
	if s.Priority == 0 {
		s.Priority = 100
	}
	if s.Mode != Oneshot && s.Mode != Watch {
		return s, nil, fmt.Errorf("--mode %q: oneshot or watch", in.Mode)
	}
	if in.VIP == "" {
		return s, nil, errors.New("--vip ADDR/PREFIX is required")
	}
	vip, err := netip.ParsePrefix(in.VIP)
	if err != nil {
		return s, nil, fmt.Errorf("--vip %q: want an address with its prefix, such as 10.0.0.100/24", in.VIP)
	}
	s.VIP = netip.PrefixFrom(vip.Addr().Unmap(), vip.Bits())

	if in.KeepalivedVersion != "" {
		if s.Keepalived, err = keepalived.ParseVersion(in.KeepalivedVersion); err != nil {
			return s, nil, fmt.Errorf("--keepalived-version: %w", err)
		}
	} else if s.Keepalived, err = InstalledKeepalived(ctx, sys); err != nil {
		return s, nil, fmt.Errorf("%w; give --keepalived-version", err)
	}

	s.Instance = in.Instance
	if err := checkInstance(s.Instance); err != nil {
		return s, nil, fmt.Errorf("--%w", err)
	}

	// Patroni's configuration, for whatever the input leaves out.
	var pc *patroni.Config
	switch {
	case in.PatroniConfig != "":
		if pc, err = patroni.Load(sys.FS(), in.PatroniConfig); err != nil {
			return s, nil, fmt.Errorf("--patroni-config: %w", err)
		}
	case in.Node == "" || in.URL == "" || len(in.Peers) == 0:
		if pc, err = findPatroni(sys, in.Instance); err != nil {
			return s, nil, err
		}
	}

	connectHost, port := "", 8008
	if pc != nil && pc.RestAPI.ConnectAddress != "" {
		if connectHost, port, err = patroni.SplitHostPort(pc.RestAPI.ConnectAddress); err != nil {
			return s, nil, fmt.Errorf("%s: restapi.connect_address %w", pc.Path, err)
		}
	}
	switch {
	case in.Node != "":
		if s.Node, err = netip.ParseAddr(in.Node); err != nil {
			return s, nil, fmt.Errorf("--node %q is not an address", in.Node)
		}
	case connectHost == "":
		return s, nil, fmt.Errorf("%s has no restapi.connect_address: give --node", pc.Path)
	default:
		if s.Node, err = netip.ParseAddr(connectHost); err != nil {
			return s, nil, fmt.Errorf("%s: restapi.connect_address host %s is not an address: give --node", pc.Path, connectHost)
		}
	}
	s.Node = s.Node.Unmap()

	// The URL names the node by address: a name would cost a DNS lookup
	// every run, and fail with DNS.
	scheme := "http"
	if pc != nil && pc.HTTPS() {
		scheme = "https"
	}
	base := scheme + "://" + netip.AddrPortFrom(s.Node, uint16(port)).String()
	s.URL = base + "/primary"
	if in.URL != "" {
		// What the check would refuse, refused now, in its words: a URL
		// with a password would put it in keepalived.conf, one with a
		// fragment would never pass.
		if err := checkURL(in.URL); err != nil {
			return s, nil, fmt.Errorf("--url: %w", err)
		}
		u, _ := url.Parse(in.URL)
		s.URL, base, scheme = in.URL, u.Scheme+"://"+u.Host, u.Scheme
	}

	if err := readGate(&s, in, base); err != nil {
		return s, nil, err
	}

	tlsFiles, err := checkTLS(sys, pc, in, s.URL, connectHost, scheme)
	if err != nil {
		return s, nil, err
	}
	for _, fl := range []struct{ name, v string }{{"--cacert", tlsFiles.CACert}, {"--cert", tlsFiles.Cert},
		{"--key", tlsFiles.Key}, {"--servername", tlsFiles.ServerName}} {
		if fl.v != "" {
			s.CheckFlags = append(s.CheckFlags, fl.name, fl.v)
		}
	}
	if in.Insecure {
		s.CheckFlags = append(s.CheckFlags, "--insecure")
	}
	// Basic auth, as the check takes it: the password in a file of its own,
	// never in keepalived.conf or the service's arguments.
	switch {
	case in.User != "" && in.PasswordFile == "":
		return s, nil, errors.New("--user needs --password-file")
	case in.User == "" && in.PasswordFile != "":
		return s, nil, errors.New("--password-file needs --user")
	case strings.Contains(in.User, ":"):
		// Not quoted: what follows the colon may be a password.
		return s, nil, errors.New("--user holds a colon, which a basic auth user cannot: the password goes in --password-file")
	case in.User != "":
		if !path.IsAbs(in.PasswordFile) {
			return s, nil, fmt.Errorf("--password-file %q is not an absolute path", in.PasswordFile)
		}
		if fi, err := sys.Stat(in.PasswordFile); err != nil || !fi.Mode.IsRegular() {
			warnings = append(warnings, fmt.Sprintf("--password-file %s is not a file here: the check will fail until it is", in.PasswordFile))
		}
		s.CheckFlags = append(s.CheckFlags, "--user", in.User, "--password-file", in.PasswordFile)
	}

	if s.Peers, err = peers(ctx, sys, in, pc, s.Node, base, tlsFiles); err != nil {
		return s, nil, err
	}

	// The interface that holds the node's address.
	ifaces, err := sys.Interfaces()
	if err != nil {
		return s, nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var nodePrefix netip.Prefix
	for _, i := range ifaces {
		for _, a := range i.Addrs {
			if a.Addr() == s.Node && (in.Interface == "" || in.Interface == i.Name) {
				s.Interface, nodePrefix = i.Name, a
			}
		}
	}
	if in.Interface != "" {
		s.Interface = in.Interface
	}
	switch {
	case s.Interface == "":
		return s, nil, fmt.Errorf("no interface holds %s: give --interface (or --node)", s.Node)
	case !nodePrefix.IsValid():
		warnings = append(warnings, fmt.Sprintf("%s does not hold %s here: unicast_src_ip is not this machine's", s.Interface, s.Node))
	case nodePrefix.Masked() != s.VIP.Masked():
		warnings = append(warnings, fmt.Sprintf("the VIP %s is not in %s's subnet %s: clients on that subnet may not reach it", s.VIP, s.Interface, nodePrefix.Masked()))
	}
	if s.ReadVIP.IsValid() && nodePrefix.IsValid() && nodePrefix.Masked() != s.ReadVIP.Masked() {
		warnings = append(warnings, fmt.Sprintf("the read VIP %s is not in %s's subnet %s: clients on that subnet may not reach it", s.ReadVIP, s.Interface, nodePrefix.Masked()))
	}
	s.Label = label(in.Label, s.Interface, s.VIP, "1")
	if s.ReadVIP.IsValid() {
		if in.Label != nil && *in.Label == "" {
			s.ReadLabel = ""
		} else {
			s.ReadLabel = label(nil, s.Interface, s.ReadVIP, "2")
		}
	}

	// The watch wakes on PostgreSQL's files in the data directory.
	if s.Mode == Watch {
		switch {
		case in.PGData != nil:
			s.PGData = *in.PGData
		case pc != nil && pc.PostgreSQL.DataDir != "":
			s.PGData = pc.PostgreSQL.DataDir
		default:
			warnings = append(warnings, "no postgresql.data_dir in Patroni's configuration: the watch asks Patroni on --interval alone; give --pgdata for it to wake on PostgreSQL's own files")
		}
		if s.PGData != "" && !path.IsAbs(s.PGData) {
			return s, nil, fmt.Errorf("--pgdata %q is not an absolute path", s.PGData)
		}
	}

	// The same on every node, and different for every VIP of a /24.
	if s.RouterID == 0 {
		b := s.VIP.Addr().AsSlice()
		if s.RouterID = int(b[len(b)-1]); s.RouterID == 0 {
			return s, nil, fmt.Errorf("the VIP %s ends in 0: give --router-id", s.VIP.Addr())
		}
	}
	if s.ReadVIP.IsValid() && s.ReadRouterID == 0 {
		b := s.ReadVIP.Addr().AsSlice()
		if s.ReadRouterID = int(b[len(b)-1]); s.ReadRouterID == 0 {
			return s, nil, fmt.Errorf("the read VIP %s ends in 0: give --replica-router-id", s.ReadVIP.Addr())
		}
		if s.ReadRouterID == s.RouterID {
			return s, nil, fmt.Errorf("the VIP and the read VIP would share virtual_router_id %d: give --replica-router-id", s.RouterID)
		}
	}
	if err := clearOfOthers(sys, in, &s); err != nil {
		return s, nil, err
	}
	if err := s.parseCommands(); err != nil {
		return s, nil, err
	}
	return s, warnings, nil
}

// label is a VIP's label: the one given, none for IPv6 (keepalived
// labels no IPv6 address: "Cannot specify label"), else INTERFACE:n when
// it fits in the 15 bytes of a label (IFNAMSIZ).
func label(given *string, iface string, vip netip.Prefix, n string) string {
	switch {
	case given != nil:
		return *given
	case vip.Addr().Is6():
		return ""
	case len(iface)+1+len(n) <= 15:
		return iface + ":" + n
	}
	return ""
}

// findPatroni is the Patroni configuration of this node: the one found
// where packages put it, or, when several are and a cluster is named, the
// one whose scope or file name is that name.
func findPatroni(sys system.System, instance string) (*patroni.Config, error) {
	pc, err := patroni.Find(sys.FS())
	if err == nil || instance == "" {
		if err != nil {
			return nil, fmt.Errorf("%w: name it with --patroni-config, or the cluster with --instance", err)
		}
		return pc, nil
	}
	var match []*patroni.Config
	var seen []string
	for _, name := range patroni.Candidates(sys.FS()) {
		c, err := patroni.Load(sys.FS(), name)
		if err != nil || c.RestAPI.ConnectAddress == "" && c.RestAPI.Listen == "" {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(path.Base(name), ".yml"), ".yaml")
		if c.Scope == instance || base == instance {
			match = append(match, c)
		}
		seen = append(seen, fmt.Sprintf("%s (scope %q)", name, c.Scope))
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("no Patroni configuration has the scope or file name %q among %s: name it with --patroni-config", instance, strings.Join(seen, ", "))
	}
	return nil, fmt.Errorf("%d Patroni configurations are for %q: name one with --patroni-config", len(match), instance)
}

// maxLagRE is what Patroni's parse_int reads as a size in bytes: a whole
// number, with B, kB, MB, GB or TB after it (case matters). Patroni reads
// anything else as no bound at all (patroni/utils.py, parse_int, in 3.0.2,
// 4.0.7 and 4.1.4).
var maxLagRE = regexp.MustCompile(`^[0-9]{1,15}(B|kB|MB|GB|TB)?$`)

// readGate sets the read VIP and its check's URL, on the node's REST API
// (base).
func readGate(s *Setup, in Input, base string) error {
	if in.ReadVIP == "" {
		switch {
		case in.MaxLag != "":
			return errors.New("--max-lag needs --replica-vip")
		case in.ReadRouterID != 0:
			return errors.New("--replica-router-id needs --replica-vip")
		}
		return nil
	}
	p, err := netip.ParsePrefix(in.ReadVIP)
	if err != nil {
		return fmt.Errorf("--replica-vip %q: want an address with its prefix, such as 10.0.0.101/24", in.ReadVIP)
	}
	s.ReadVIP = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	lag := in.MaxLag
	if lag == "" {
		lag = DefaultMaxLag
	}
	if !maxLagRE.MatchString(lag) {
		return fmt.Errorf("--max-lag %q: want a whole number of bytes, or one with kB, MB, GB or TB (Patroni takes anything else as no bound)", lag)
	}
	s.ReadURL = base + "/replica?lag=" + lag
	s.ReadRouterID = in.ReadRouterID
	return nil
}

// clearOfOthers refuses a virtual_router_id that keepalived's present
// configuration already gives another instance on the same interface and
// address family: keepalived would refuse both ("duplicate VRID
// conflict"). The instances of this configuration's own names are this
// configuration, written before.
func clearOfOthers(sys system.System, in Input, s *Setup) error {
	conf := DefaultKeepalivedConf
	if in.KeepalivedConf != nil {
		conf = *in.KeepalivedConf
	}
	if conf == "" {
		return nil
	}
	if _, err := sys.Stat(conf); err != nil {
		return nil // none yet
	}
	c, err := keepalived.Load(conf, keepalived.Options{FS: sys.FS()})
	if err != nil {
		return fmt.Errorf("reading %s for the virtual_router_ids in use: %w (--keepalived-conf \"\" to skip)", conf, err)
	}
	gs := s.gates()
	for _, in := range c.Model().Instances {
		if slices.ContainsFunc(gs, func(g gate) bool { return g.instance == in.Name }) {
			continue
		}
		id, err := strconv.Atoi(in.VirtualRouterID.Arg(1))
		if err != nil {
			continue
		}
		if iface := in.Interface.Arg(1); iface != "" && iface != s.Interface {
			continue
		}
		if fam, ok := family(in); ok && fam != s.Node.Is4() {
			continue
		}
		for _, g := range gs {
			if g.routerID == id {
				return fmt.Errorf("virtual_router_id %d is already vrrp_instance %s's (%s) on %s: give the %s another (%s)",
					id, in.Name, in.VirtualRouterID.Pos, s.Interface, map[bool]string{false: "VIP", true: "read VIP"}[g.read],
					map[bool]string{false: "--router-id", true: "--replica-router-id"}[g.read])
			}
		}
	}
	return nil
}

// family is whether an instance is IPv4, from its unicast source or its
// first VIP; ok is false when it says neither.
func family(in *keepalived.Instance) (is4, ok bool) {
	if a, err := netip.ParseAddr(in.UnicastSrcIP.Arg(1)); err == nil {
		return a.Unmap().Is4(), true
	}
	for _, v := range in.VIPs {
		if v.Valid {
			return v.Prefix.Addr().Unmap().Is4(), true
		}
	}
	return false, false
}

// checkTLS is the check's TLS settings: what Patroni's configuration
// implies, each overridden by the input.
func checkTLS(sys system.System, pc *patroni.Config, in Input, rawURL, connectHost, scheme string) (patroni.TLSFiles, error) {
	var t patroni.TLSFiles
	if scheme == "https" && pc != nil && !in.Insecure {
		u, _ := url.Parse(rawURL)
		host := u.Hostname()
		name := ""
		if _, err := netip.ParseAddr(connectHost); connectHost != "" && err != nil {
			// Patroni's certificate names the node as its connect_address does.
			host, name = connectHost, connectHost
		}
		found, err := pc.CheckTLS(host, readFile(sys))
		if err != nil && in.ServerName == nil {
			return t, fmt.Errorf("%s: %w", pc.Path, err)
		}
		t = found
		if t.ServerName == "" {
			t.ServerName = name
		}
	}
	for _, o := range []struct {
		v    *string
		into *string
	}{{in.CACert, &t.CACert}, {in.Cert, &t.Cert}, {in.Key, &t.Key}, {in.ServerName, &t.ServerName}} {
		if o.v != nil {
			*o.into = *o.v
		}
	}
	if scheme == "http" && (t != patroni.TLSFiles{} || in.Insecure) {
		return t, errors.New("TLS flags need an https URL")
	}
	return t, nil
}

func readFile(sys system.System) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		data, err := fs.ReadFile(sys.FS(), strings.TrimPrefix(name, "/"))
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return data, nil
	}
}

// peers are the input's, or Patroni's members but this node.
func peers(ctx context.Context, sys system.System, in Input, pc *patroni.Config, node netip.Addr, base string, t patroni.TLSFiles) ([]netip.Addr, error) {
	var out []netip.Addr
	if len(in.Peers) > 0 {
		for _, p := range in.Peers {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, fmt.Errorf("--peer %q is not an address", p)
			}
			out = append(out, a.Unmap())
		}
		return out, nil
	}
	client, err := patroni.Client(t, in.Insecure, 5*time.Second, readFile(sys))
	if err != nil {
		return nil, fmt.Errorf("asking Patroni for its members: %w", err)
	}
	members, err := patroni.Members(ctx, client, base)
	if err != nil {
		return nil, fmt.Errorf("asking Patroni for its members: %s; give them with --peer", strings.Join(strings.Fields(err.Error()), " "))
	}
	for _, m := range members {
		a, err := netip.ParseAddr(strings.Trim(m.Host, "[]"))
		if err != nil {
			return nil, fmt.Errorf("member %s's host %q is not an address: give the peers with --peer", m.Name, m.Host)
		}
		if a = a.Unmap(); a != node && (pc == nil || m.Name != pc.Name) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no member but this node in Patroni's /cluster: give the peers with --peer")
	}
	return out, nil
}

// InstalledKeepalived asks the installed keepalived its version.
func InstalledKeepalived(ctx context.Context, sys system.System) (keepalived.Version, error) {
	for _, p := range KeepalivedBinaries() {
		if fi, err := sys.Stat(p); err != nil || !fi.Mode.IsRegular() {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r := sys.Run(ctx, system.Cmd{Path: p, Args: []string{"--version"}})
		cancel()
		v, err := keepalived.VersionFromOutput(append(r.Stderr, r.Stdout...))
		if err != nil {
			return v, fmt.Errorf("%s --version: %w", p, err)
		}
		return v, nil
	}
	return keepalived.Version{}, errors.New("keepalived is not installed (" + strings.Join(KeepalivedBinaries(), ", ") + ")")
}
