package keepalived

import (
	"net/netip"
	"strings"
)

// The parts of a configuration that decide whether an instance's VIP
// follows its checks. Values are kept as the statements that set them
// (nil when absent), so that a finding can point at the line; the methods
// say what keepalived makes of them. Facts are from keepalived's source at
// v2.2.7 and v2.3.3 (keepalived/vrrp/vrrp_parser.c, vrrp_track.c, vrrp.c,
// keepalived/trackers/track_file.c), the same in both unless said.

// GlobalDefs is what global_defs blocks set (keepalived merges them all).
type GlobalDefs struct {
	Blocks               []*Statement
	EnableScriptSecurity *Statement
	ScriptUser           *Statement // script_user USER [GROUP]
	VRRPStrict           *Statement
	VRRPVersions         []*Statement // vrrp_version N, in order: each valid one wins over the last
	CheckUnicastSrc      *Statement   // vrrp_check_unicast_src
}

// Script is a vrrp_script block.
type Script struct {
	Name     string
	Stmt     *Statement
	Seq      int        // its place among the top-level statements
	Script   *Statement // script "COMMAND ARGS"
	Interval *Statement
	Timeout  *Statement
	Weight   *Statement   // the last weight W [reverse]
	Weights  []*Statement // every weight line, in order
	Rise     *Statement
	Fall     *Statement
	User     *Statement // user USER [GROUP]
	InitFail *Statement
}

// TrackFile is a track_file (or vrrp_track_file) block.
type TrackFile struct {
	Name     string
	Stmt     *Statement
	Seq      int
	File     *Statement
	Weight   *Statement   // the weight line keepalived keeps
	Weights  []*Statement // every weight line, in order
	InitFile *Statement   // init_file [VALUE] [overwrite]
}

// Instance is a vrrp_instance block.
type Instance struct {
	Name            string
	Stmt            *Statement
	Seq             int
	State           *Statement
	Interface       *Statement
	VirtualRouterID *Statement // the last one
	Priority        *Statement // the last one
	Version         *Statement // the first one
	AdvertInt       *Statement
	UnicastSrcIP    *Statement
	UnicastPeers    []*Statement // the lines of unicast_peer { }
	VIPs            []VIP
	Accept          *Statement
	NoAccept        *Statement
	StrictMode      *Statement
	NoPreempt       *Statement
	CheckUnicastSrc *Statement
	AuthType        *Statement // in authentication { }
	AuthPass        *Statement
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef
	TrackInterfaces []TrackRef
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Name string
	Stmt *Statement
	Seq  int
	// Group is the first group { } block: keepalived skips later ones.
	Group   *Statement
	Members []string
	// TrackingWeight is sync_group_tracking_weight (or the deprecated
	// global_tracking): weighted checks on members are kept.
	TrackingWeight *Statement
	TrackScripts   []TrackRef
	TrackFiles     []TrackRef
}

// VIP is one line of virtual_ipaddress.
type VIP struct {
	Stmt   *Statement
	Prefix netip.Prefix // the address with its prefix length (/32 or /128 if none)
	Valid  bool         // the address parsed
	Dev    string       // dev, "" for the instance's interface
	Label  string
}

// TrackRef is one line of a track_script, track_file or track_interface
// block: NAME [weight W [reverse|noreverse]].
type TrackRef struct {
	Stmt    *Statement
	Name    string
	Weight  *int  // nil: the tracked object's own
	Reverse *bool // nil: the tracked object's own
}

// Model is the typed view of a configuration.
type Model struct {
	Global     GlobalDefs
	Scripts    []*Script
	TrackFiles []*TrackFile
	Instances  []*Instance
	SyncGroups []*SyncGroup
	// Skipped are blocks keepalived skips whole: a vrrp_instance or
	// vrrp_sync_group without a name, or with one already used.
	Skipped []Problem

	index *modelIndex // built on first use
}

// modelIndex finds blocks by name without a scan of every block (a
// configuration may hold tens of thousands).
type modelIndex struct {
	scripts map[string][]*Script    // by name, in order
	files   map[string][]*TrackFile // by name, in order
	groupOf map[string]*SyncGroup   // instance name → the group that holds it
	members map[*SyncGroup][]*Instance
}

func (m *Model) idx() *modelIndex {
	if m.index != nil {
		return m.index
	}
	x := &modelIndex{scripts: map[string][]*Script{}, files: map[string][]*TrackFile{},
		groupOf: map[string]*SyncGroup{}, members: map[*SyncGroup][]*Instance{}}
	for _, s := range m.Scripts {
		x.scripts[s.Name] = append(x.scripts[s.Name], s)
	}
	for _, t := range m.TrackFiles {
		x.files[t.Name] = append(x.files[t.Name], t)
	}
	// An instance is in the first group that names it (vrrp_sync_set_group).
	for _, g := range m.SyncGroups {
		for _, name := range g.Members {
			if _, taken := x.groupOf[name]; !taken {
				x.groupOf[name] = g
			}
		}
	}
	for _, in := range m.Instances {
		if g := x.groupOf[in.Name]; g != nil {
			x.members[g] = append(x.members[g], in)
		}
	}
	m.index = x
	return x
}

// Model extracts the typed view. Later settings win, as in keepalived,
// except where keepalived keeps the first (a track_file's file, an
// instance's version).
func (c *Config) Model() *Model {
	m := &Model{}
	names := map[string]bool{}
	for seq, st := range c.Statements {
		switch st.Keyword() {
		case "global_defs":
			m.Global.Blocks = append(m.Global.Blocks, st)
			for _, s := range st.Block {
				switch s.Keyword() {
				case "enable_script_security":
					m.Global.EnableScriptSecurity = s
				case "script_user":
					m.Global.ScriptUser = s
				case "vrrp_strict":
					m.Global.VRRPStrict = s
				case "vrrp_version":
					m.Global.VRRPVersions = append(m.Global.VRRPVersions, s)
				case "vrrp_check_unicast_src":
					m.Global.CheckUnicastSrc = s
				}
			}
		case "vrrp_script":
			sc := &Script{Name: st.Arg(1), Stmt: st, Seq: seq}
			for _, s := range st.Block {
				switch s.Keyword() {
				case "script":
					sc.Script = s
				case "interval":
					sc.Interval = s
				case "timeout":
					sc.Timeout = s
				case "weight":
					sc.Weight = s
					sc.Weights = append(sc.Weights, s)
				case "rise":
					sc.Rise = s
				case "fall":
					sc.Fall = s
				case "user":
					sc.User = s
				case "init_fail":
					sc.InitFail = s
				}
			}
			m.Scripts = append(m.Scripts, sc)
		case "track_file", "vrrp_track_file":
			tf := &TrackFile{Name: st.Arg(1), Stmt: st, Seq: seq}
			for _, s := range st.Block {
				switch s.Keyword() {
				case "file":
					if tf.File == nil && len(s.Words) > 1 {
						tf.File = s
					}
				case "weight":
					tf.Weights = append(tf.Weights, s)
				case "init_file":
					tf.InitFile = s
				}
			}
			tf.Weight = tf.weightLine()
			m.TrackFiles = append(m.TrackFiles, tf)
		case "vrrp_instance":
			if skip := m.skip(st, names, "vrrp instance"); skip {
				continue
			}
			in := instance(st)
			in.Seq = seq
			m.Instances = append(m.Instances, in)
		case "vrrp_sync_group":
			if skip := m.skip(st, names, "vrrp sync group"); skip {
				continue
			}
			m.SyncGroups = append(m.SyncGroups, syncGroup(st, seq))
		}
	}
	return m
}

// skip reports whether keepalived skips the block st: it needs exactly a
// name, not taken by an earlier block of its kind.
func (m *Model) skip(st *Statement, names map[string]bool, what string) bool {
	if len(st.Words) != 2 {
		m.Skipped = append(m.Skipped, Problem{Pos: st.Pos, Msg: st.Keyword() + " must have a name - its block is skipped"})
		return true
	}
	key := st.Keyword() + "\x00" + st.Arg(1)
	if names[key] {
		m.Skipped = append(m.Skipped, Problem{Pos: st.Pos, Msg: what + " " + st.Arg(1) + " already defined - its block is skipped"})
		return true
	}
	names[key] = true
	return false
}

func instance(st *Statement) *Instance {
	in := &Instance{Name: st.Arg(1), Stmt: st}
	for _, s := range st.Block {
		switch s.Keyword() {
		case "state":
			in.State = s
		case "interface":
			in.Interface = s
		case "virtual_router_id":
			in.VirtualRouterID = s
		case "priority":
			in.Priority = s
		case "version":
			if in.Version == nil {
				in.Version = s
			}
		case "advert_int":
			in.AdvertInt = s
		case "unicast_src_ip":
			in.UnicastSrcIP = s
		case "unicast_peer":
			in.UnicastPeers = append(in.UnicastPeers, values(s)...)
		case "virtual_ipaddress":
			for _, v := range values(s) {
				in.VIPs = append(in.VIPs, parseVIP(v))
			}
		case "accept":
			in.Accept, in.NoAccept = s, nil
		case "no_accept":
			in.NoAccept, in.Accept = s, nil
		case "strict_mode":
			in.StrictMode = s
		case "nopreempt":
			in.NoPreempt = s
		case "preempt":
			in.NoPreempt = nil
		case "check_unicast_src":
			in.CheckUnicastSrc = s
		case "authentication":
			for _, a := range s.Block {
				switch a.Keyword() {
				case "auth_type":
					in.AuthType = a
				case "auth_pass":
					in.AuthPass = a
				}
			}
		case "track_script":
			in.TrackScripts = append(in.TrackScripts, trackRefs(s)...)
		case "track_file":
			in.TrackFiles = append(in.TrackFiles, trackRefs(s)...)
		case "track_interface":
			in.TrackInterfaces = append(in.TrackInterfaces, trackRefs(s)...)
		}
	}
	return in
}

func syncGroup(st *Statement, seq int) *SyncGroup {
	g := &SyncGroup{Name: st.Arg(1), Stmt: st, Seq: seq}
	for _, s := range st.Block {
		switch s.Keyword() {
		case "group":
			if g.Group == nil {
				g.Group = s
				for _, v := range values(s) {
					g.Members = append(g.Members, v.Words...)
				}
			}
		case "sync_group_tracking_weight", "global_tracking":
			g.TrackingWeight = s
		case "track_script":
			g.TrackScripts = append(g.TrackScripts, trackRefs(s)...)
		case "track_file":
			g.TrackFiles = append(g.TrackFiles, trackRefs(s)...)
		}
	}
	return g
}

// values are the lines of a value block, such as unicast_peer { }. Words
// after the keyword on its own line count too, as alloc_value_block
// takes them.
func values(st *Statement) []*Statement {
	var out []*Statement
	if len(st.Words) > 1 {
		out = append(out, &Statement{Pos: st.Pos, Words: st.Words[1:], Raw: st.Raw})
	}
	return append(out, st.Block...)
}

// trackRefs reads the lines of a tracking block as written; what
// keepalived makes of each is Model.Tracking's business.
func trackRefs(st *Statement) []TrackRef {
	var refs []TrackRef
	for _, s := range values(st) {
		r := TrackRef{Stmt: s, Name: s.Words[0]}
		if s.Arg(1) == "weight" && len(s.Words) > 2 {
			if w, ok := readInt(s.Arg(2), -254, 254); ok {
				r.Weight = &w
			}
			switch s.Arg(3) {
			case "reverse":
				t := true
				r.Reverse = &t
			case "noreverse":
				f := false
				r.Reverse = &f
			}
		}
		refs = append(refs, r)
	}
	return refs
}

func parseVIP(st *Statement) VIP {
	v := VIP{Stmt: st}
	addr := st.Words[0]
	if p, err := netip.ParsePrefix(addr); err == nil {
		v.Prefix, v.Valid = p, true
	} else if a, err := netip.ParseAddr(addr); err == nil {
		v.Prefix, v.Valid = netip.PrefixFrom(a, a.BitLen()), true
	}
	for i := 1; i+1 < len(st.Words); i++ {
		switch st.Words[i] {
		case "dev":
			v.Dev = st.Words[i+1]
			i++
		case "label":
			v.Label = st.Words[i+1]
			i++
		case "brd", "broadcast", "scope", "peer", "metric":
			i++
		}
	}
	return v
}

// Script finds a vrrp_script by name, the first of that name as keepalived does.
func (m *Model) Script(name string) *Script {
	if ss := m.idx().scripts[name]; len(ss) > 0 {
		return ss[0]
	}
	return nil
}

// TrackFile finds a track_file by name.
func (m *Model) TrackFile(name string) *TrackFile {
	if ts := m.idx().files[name]; len(ts) > 0 {
		return ts[0]
	}
	return nil
}

// Path is the track file's file, "" when not set.
func (t *TrackFile) Path() string { return t.File.Arg(1) }

// weightLine is the weight line keepalived keeps: the first that sets a
// weight other than 1 ("Weight already set for track file"), or the last
// while they all say 1.
func (t *TrackFile) weightLine() *Statement {
	var kept *Statement
	for _, s := range t.Weights {
		if len(s.Words) < 2 {
			continue // "No weight specified for track file"
		}
		kept = s
		if w, ok := readInt(s.Arg(1), -254, 254); ok && w != 1 {
			break
		}
	}
	return kept
}

// BlockWeight is the block's weight and reverse (keepalived's default: 1,
// not reversed). An invalid weight counts as 1; a "reverse" on any weight
// line that was read sticks.
func (t *TrackFile) BlockWeight() (int, bool) {
	w, rev := 1, false
	for _, s := range t.Weights {
		if len(s.Words) < 2 {
			continue
		}
		if w != 1 {
			break // "Weight already set for track file"
		}
		if v, ok := readInt(s.Arg(1), -254, 254); ok {
			w = v
		}
		rev = rev || s.Arg(2) == "reverse"
	}
	return w, rev
}

// Effective is the weight and reverse keepalived uses for the reference
// ref to this track file: the reference's where it sets them.
func (t *TrackFile) Effective(ref TrackRef) (int, bool) {
	w, rev := t.BlockWeight()
	if ref.Weight != nil {
		w = *ref.Weight
	}
	if ref.Reverse != nil {
		rev = *ref.Reverse
	}
	return w, rev
}

// InitValue is what init_file writes when keepalived starts (and whether
// it overwrites an existing file); ok is false without init_file.
func (t *TrackFile) InitValue() (value int, overwrite, ok bool) {
	if t.InitFile == nil {
		return 0, false, false
	}
	for _, w := range t.InitFile.Words[1:] {
		t := strings.TrimLeft(w, " \t\n\v\f\r")
		switch {
		case t != "" && (t[0] == '-' || t[0] >= '0' && t[0] <= '9'):
			// Not a whole number: "init value ... is invalid", 0.
			v, digits, overflow, rest := strtol(w)
			value = 0
			if digits && !overflow && rest == "" && v >= -1<<31 && v <= 1<<31-1 {
				value = int(v)
			}
		case w == "overwrite":
			overwrite = true
		}
	}
	return value, overwrite, true
}

// ScriptWeight is the vrrp_script's own weight (default 0): the last
// weight line's number, kept by keepalived even out of range.
func (s *Script) ScriptWeight() int {
	w, _ := s.BlockWeight()
	return w
}

// BlockWeight is the vrrp_script's own weight and reverse: the last weight
// line's number (keepalived keeps it even when it says it is out of
// range), and reverse if any weight line said so.
func (s *Script) BlockWeight() (int, bool) {
	w, rev := 0, false
	for _, st := range s.Weights {
		w, _ = readInt(st.Arg(1), -253, 253)
		rev = rev || st.Arg(2) == "reverse"
	}
	return w, rev
}

// Effective is the weight keepalived uses for the reference ref.
func (s *Script) Effective(ref TrackRef) int {
	w, _ := s.EffectiveReverse(ref)
	return w
}

// EffectiveReverse is the weight and reverse keepalived uses for the
// reference ref: the reference's weight where it sets one, and its
// reverse or noreverse; else the script's own.
func (s *Script) EffectiveReverse(ref TrackRef) (int, bool) {
	w, rev := s.BlockWeight()
	if ref.Weight != nil {
		w = max(-253, min(253, *ref.Weight)) // "+/-254 ... Setting to +/-253"
	}
	if ref.Reverse != nil {
		rev = *ref.Reverse
	}
	return w, rev
}

// Count is an unsigned count (fall, rise) with keepalived's default 1.
func Count(st *Statement) int {
	if st == nil {
		return 1
	}
	n, ok := readUnsigned(st.Arg(1), 1, 1<<31-1, true)
	if !ok {
		return 1
	}
	return n
}

// strtol is C's strtol(s, &end, 10): leading blanks, a sign, digits. It
// returns the value (clamped on overflow), whether any digit was read,
// whether it overflowed, and what follows.
func strtol(s string) (v int64, digits, overflow bool, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if u <= 1<<63 {
			u = u*10 + uint64(s[i]-'0')
		}
		if u > 1<<63 {
			overflow = true
		}
		i++
	}
	if i == start {
		return 0, false, false, s
	}
	switch {
	case !neg && u > 1<<63-1:
		return 1<<63 - 1, true, true, s[i:]
	case neg && u > 1<<63:
		return -1 << 63, true, true, s[i:]
	case neg:
		return -int64(u), true, overflow, s[i:]
	}
	return int64(u), true, overflow, s[i:]
}

// readInt is keepalived's read_int_strvec with ignore_error, as the
// running daemon (not -t) reads a number: strtol's value, accepted when in
// [lo, hi] even with text after it ("10abc" is 10). The value is strtol's
// (cut to 32 bits) even when not accepted, as handlers that keep it see it.
func readInt(s string, lo, hi int) (int, bool) {
	v, _, overflow, _ := strtol(s)
	if overflow || v < -1<<31 || v > 1<<31-1 {
		return int(int32(v)), false
	}
	return int(v), v >= int64(lo) && v <= int64(hi)
}

// readUnsigned is keepalived's read_unsigned_strvec: leading blanks, no
// sign, digits; with lenient (ignore_error, the running daemon), text
// after the number is tolerated.
func readUnsigned(s string, lo, hi int, lenient bool) (int, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if strings.HasPrefix(t, "-") {
		return 0, false
	}
	v, digits, overflow, rest := strtol(t)
	if !digits && !lenient || rest != "" && !lenient || overflow || v > 1<<32-1 {
		return 0, false
	}
	return int(v), v >= int64(lo) && v <= int64(hi)
}
