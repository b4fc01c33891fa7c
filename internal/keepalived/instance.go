package keepalived

import "net/netip"

// What keepalived makes of a vrrp_instance's own settings, as its parser
// handlers and vrrp_complete_instance() (keepalived/vrrp/vrrp.c) decide.

// Strict reports whether strict mode applies to the instance: its own
// strict_mode (alone, or true/on/yes, false/off/no; another word is
// ignored), else global vrrp_strict.
func (in *Instance) Strict(g GlobalDefs) (bool, *Statement) {
	var set *bool
	var why *Statement
	for _, s := range in.Stmt.Block {
		if s.Keyword() != "strict_mode" {
			continue
		}
		v, ok := true, true
		if len(s.Words) > 1 {
			v, ok = trueFalse(s.Arg(1))
		}
		if ok {
			set, why = &v, s
		}
	}
	if set != nil {
		return *set, why
	}
	return g.VRRPStrict != nil, g.VRRPStrict
}

// trueFalse is keepalived's check_true_false.
func trueFalse(s string) (value, ok bool) {
	switch s {
	case "true", "on", "yes":
		return true, true
	case "false", "off", "no":
		return false, true
	}
	return false, false
}

// Family is 4 or 6: the family of the first address that sets it, in the
// order keepalived reads them (unicast_src_ip, mcast_src_ip, unicast_peer,
// mcast_dst_ip, virtual_ipaddress), or native_ipv6; 4 when none does.
func (in *Instance) Family() int {
	f, _, _ := in.familyVersion()
	return f
}

// FamilyFrom is the line that set the instance's family, nil when none
// did (IPv4 by default).
func (in *Instance) FamilyFrom() *Statement {
	_, _, from := in.familyVersion()
	return from
}

// familyVersion reads the family and the version the instance's own lines
// set, in order, as the handlers do: "version" is ignored when it
// conflicts with one already set or says 2 for an IPv6 instance, and
// native_ipv6 sets version 3. A version of 0 is unset.
func (in *Instance) familyVersion() (family, version int, from *Statement) {
	set := func(f int, s *Statement) {
		if family == 0 && f != 0 {
			family, from = f, s
		}
	}
	for _, s := range in.Stmt.Block {
		switch s.Keyword() {
		case "unicast_src_ip", "mcast_src_ip", "mcast_dst_ip":
			set(addrFamily(s.Arg(1)), s)
		case "unicast_peer", "virtual_ipaddress":
			for _, v := range values(s) {
				set(addrFamily(v.Arg(0)), v)
			}
		case "native_ipv6":
			if family != 4 {
				if family == 0 {
					from = s
				}
				family, version = 6, 3
			}
		case "version":
			v, ok := readInt(s.Arg(1), 2, 3)
			if ok && (version == 0 || version == v) && !(v == 2 && family == 6) {
				version = v
			}
		}
	}
	if family == 0 {
		family = 4
	}
	return family, version, from
}

// addrFamily is the family of an address as keepalived reads it
// (inet_stosockaddr): 6 if it holds a colon, else 4; 0 if it is not an
// address (keepalived skips the line).
func addrFamily(a string) int {
	if p, err := netip.ParsePrefix(a); err == nil {
		a = p.Addr().String()
	}
	ad, err := netip.ParseAddr(a)
	switch {
	case err != nil:
		return 0
	case ad.Is4():
		return 4
	}
	return 6
}

// Refusal is an address line keepalived refuses, or takes only in part,
// in an instance: what it says.
type Refusal struct {
	Stmt *Statement
	What string // "unicast_src_ip" (or "mcast_src_ip"), "unicast_peer", "virtual_ipaddress", "label"
	Says string
}

// Refusals are the instance's address lines keepalived refuses for their
// family, in order: a source address, a unicast peer or a VIP of the other
// family than the instance's (the first address read sets it: Family),
// and a label on an IPv6 VIP. Sources: vrrp_parser.c (vrrp_srcip_handler),
// vrrp_data.c (alloc_vrrp_unicast_peer, alloc_vrrp_vip), vrrp_ipaddress.c
// (parse_ipaddress), the same in 2.2.7 and 2.3.3.
func (in *Instance) Refusals() []Refusal {
	family := in.Family()
	var out []Refusal
	other := func(a string) bool { f := addrFamily(a); return f != 0 && f != family }
	for _, s := range in.Stmt.Block {
		switch s.Keyword() {
		case "unicast_src_ip", "mcast_src_ip":
			if other(s.Arg(1)) {
				out = append(out, Refusal{s, s.Keyword(), sprintf("Configuration error: VRRP instance[%s] and src address[%s] MUST be of the same family !!! Skipping...", in.Name, s.Arg(1))})
			}
		case "unicast_peer":
			for _, p := range values(s) {
				if other(p.Arg(0)) {
					out = append(out, Refusal{p, "unicast_peer", sprintf("Configuration error: VRRP instance[%s] and unicast peer address[%s] MUST be of the same family !!! Skipping...", in.Name, p.Arg(0))})
				}
			}
		case "virtual_ipaddress":
			for _, v := range values(s) {
				switch vip := parseVIP(v); {
				case !vip.Valid:
				case other(v.Arg(0)):
					out = append(out, Refusal{v, "virtual_ipaddress", sprintf("(%s): address family must match VRRP instance [%s] - ignoring", in.Name, v.Arg(0))})
				case vip.Label != "" && vip.Prefix.Addr().Is6():
					out = append(out, Refusal{v, "label", sprintf("Cannot specify label for IPv6 addresses (%s) - ignoring label", v.Arg(0))})
				}
			}
		}
	}
	return out
}

// KeepsVIP reports whether keepalived adds the VIP to the instance: a
// valid address of the instance's family.
func (in *Instance) KeepsVIP(v VIP) bool {
	return v.Valid && addrFamily(v.Stmt.Arg(0)) == in.Family()
}

// Peers are the unicast peers keepalived keeps: addresses of the
// instance's family. None means the instance multicasts, even with
// unicast_src_ip ("Defaulting to multicast" up to 2.2.4's rules, which
// 2.2.7 and 2.3.3 keep unless told otherwise).
func (in *Instance) Peers() []netip.Addr {
	family := in.Family()
	var out []netip.Addr
	for _, p := range in.UnicastPeers {
		if a, err := netip.ParseAddr(p.Arg(0)); err == nil && addrFamily(p.Arg(0)) == family {
			out = append(out, a)
		}
	}
	return out
}

// SourceIP is the instance's unicast_src_ip (or mcast_src_ip) when
// keepalived keeps it: of the instance's family.
func (in *Instance) SourceIP() (netip.Addr, bool) {
	var src netip.Addr
	ok := false
	for _, s := range in.Stmt.Block {
		if k := s.Keyword(); k != "unicast_src_ip" && k != "mcast_src_ip" {
			continue
		}
		if a, err := netip.ParseAddr(s.Arg(1)); err == nil && addrFamily(s.Arg(1)) == in.Family() {
			src, ok = a, true
		}
	}
	return src, ok
}

// VRRPVersion is the VRRP version the instance speaks: its own version
// line, else 3 for an IPv6 instance (also with "version 2" under strict
// mode), else the global vrrp_version (2 by default). why is the line that
// decided, nil for the default.
func (in *Instance) VRRPVersion(g GlobalDefs) (int, *Statement) {
	family, v, _ := in.familyVersion()
	strict, _ := in.Strict(g)
	if family == 6 && (v == 0 || v == 2 && strict) {
		return 3, nil
	}
	if v != 0 {
		return v, in.Version
	}
	version, why := 2, (*Statement)(nil)
	for _, s := range g.VRRPVersions {
		if n, ok := readInt(s.Arg(1), 2, 3); ok {
			version, why = n, s
		}
	}
	return version, why
}

// BasePriority is the instance's priority: its last priority line when
// valid (1-255; an invalid one is 100), else 255 for state MASTER (it is
// then the address owner) and 100 otherwise.
func (in *Instance) BasePriority() int {
	p := 0
	for _, s := range in.Stmt.Block {
		if s.Keyword() != "priority" {
			continue
		}
		p = 100 // "Priority not valid! ... Using default 100"
		if n, ok := readUnsigned(s.Arg(1), 1, 255, false); ok {
			p = n
		}
	}
	if p == 0 {
		p = 100
		if in.WantsMaster() {
			p = 255
		}
	}
	return p
}

// WantsMaster reports whether the instance's state is MASTER: a later
// BACKUP does not undo it; another word is BACKUP.
func (in *Instance) WantsMaster() bool {
	for _, s := range in.Stmt.Block {
		if s.Keyword() == "state" && s.Arg(1) == "MASTER" {
			return true
		}
	}
	return false
}

// RouterID is the instance's virtual_router_id: the last valid line's
// (1-255, digits only); ok is false when none is: keepalived's VRRP process
// then stops ("the virtual router id must be set"). bad is the last line
// keepalived rejected, if any.
func (in *Instance) RouterID() (id int, ok bool, bad *Statement) {
	for _, s := range in.Stmt.Block {
		if s.Keyword() != "virtual_router_id" {
			continue
		}
		if n, valid := readUnsigned(s.Arg(1), 1, 255, false); valid {
			id, ok = n, true
		} else {
			bad = s
		}
	}
	return id, ok, bad
}

// AcceptMode is whether the master accepts traffic to its VIPs, as
// keepalived decides (vrrp.c): accept or no_accept when set; otherwise
// on, except in strict mode; and never in strict mode with VRRP version
// 2. An address owner (priority 255) always accepts. why is the
// statement that decided, nil for the default.
func (in *Instance) AcceptMode(g GlobalDefs) (accept bool, why *Statement) {
	if in.BasePriority() == 255 {
		if in.Priority == nil {
			return true, in.State
		}
		return true, in.Priority
	}
	strict, strictWhy := in.Strict(g)
	version, _ := in.VRRPVersion(g)
	switch {
	case in.NoAccept != nil:
		return false, in.NoAccept
	case strict && version == 2:
		return false, strictWhy
	case in.Accept != nil:
		return true, in.Accept
	case strict:
		return false, strictWhy
	}
	return true, nil
}

// Auth is the authentication keepalived uses: "PASS", "AH" or "" for
// none, with the password as the adverts carry it (cut to 8 bytes), and
// why there is none when one is written (strict mode, VRRP version 3, no
// password).
type Auth struct {
	Type      string
	Pass      string
	Truncated bool // the password written is longer than 8 bytes
	Dropped   string
}

// Authentication is what keepalived makes of the instance's
// authentication block (vrrp_complete_instance).
func (in *Instance) Authentication(g GlobalDefs) Auth {
	var a Auth
	switch t := in.AuthType.Arg(1); t {
	case "PASS", "AH":
		a.Type = t
	}
	if in.AuthPass != nil {
		a.Pass = in.AuthPass.Arg(1)
		if len(a.Pass) > 8 {
			a.Pass, a.Truncated = a.Pass[:8], true
		}
	}
	if a.Type == "" {
		return a
	}
	strict, _ := in.Strict(g)
	version, _ := in.VRRPVersion(g)
	switch {
	case strict:
		a.Dropped = "Strict mode does not support authentication"
	case version == 3:
		a.Dropped = "VRRP version 3 does not support authentication"
	case a.Pass == "":
		a.Dropped = "Authentication specified but no password given"
	case in.Family() == 6 && a.Type == "AH":
		a.Dropped = "Cannot use AH authentication with IPv6"
	}
	if a.Dropped != "" {
		a.Type = ""
	}
	return a
}
