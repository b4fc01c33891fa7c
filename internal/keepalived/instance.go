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
	f, _ := in.familyVersion()
	return f
}

// familyVersion reads the family and the version the instance's own lines
// set, in order, as the handlers do: "version" is ignored when it
// conflicts with one already set or says 2 for an IPv6 instance, and
// native_ipv6 sets version 3. A version of 0 is unset.
func (in *Instance) familyVersion() (family, version int) {
	fam := func(a string) int {
		if p, err := netip.ParsePrefix(a); err == nil {
			a = p.Addr().String()
		}
		ad, err := netip.ParseAddr(a)
		switch {
		case err != nil:
			return 0
		case ad.Is4() || ad.Is4In6():
			return 4
		}
		return 6
	}
	set := func(f int) {
		if family == 0 {
			family = f
		}
	}
	for _, s := range in.Stmt.Block {
		switch s.Keyword() {
		case "unicast_src_ip", "mcast_src_ip", "mcast_dst_ip":
			set(fam(s.Arg(1)))
		case "unicast_peer", "virtual_ipaddress":
			for _, v := range values(s) {
				set(fam(v.Arg(0)))
			}
		case "native_ipv6":
			if family != 4 {
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
	return family, version
}

// VRRPVersion is the VRRP version the instance speaks: its own version
// line, else 3 for an IPv6 instance (also with "version 2" under strict
// mode), else the global vrrp_version (2 by default). why is the line that
// decided, nil for the default.
func (in *Instance) VRRPVersion(g GlobalDefs) (int, *Statement) {
	family, v := in.familyVersion()
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
