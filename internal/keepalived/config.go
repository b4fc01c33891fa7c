package keepalived

import (
	"net/netip"
	"strconv"
	"strings"
)

// The parts of a configuration that decide whether an instance's VIP
// follows its checks. Values are kept as the statements that set them
// (nil when absent), so that a finding can point at the line; the methods
// say what keepalived makes of them.

// GlobalDefs is what global_defs blocks set (keepalived merges them all).
type GlobalDefs struct {
	Blocks               []*Statement
	EnableScriptSecurity *Statement
	ScriptUser           *Statement // script_user USER [GROUP]
	VRRPStrict           *Statement
}

// Script is a vrrp_script block.
type Script struct {
	Name     string
	Stmt     *Statement
	Script   *Statement // script "COMMAND ARGS"
	Interval *Statement
	Timeout  *Statement
	Weight   *Statement // weight W [reverse]
	Rise     *Statement
	Fall     *Statement
	User     *Statement // user USER [GROUP]
	InitFail *Statement
}

// TrackFile is a track_file (or vrrp_track_file) block.
type TrackFile struct {
	Name     string
	Stmt     *Statement
	File     *Statement
	Weight   *Statement // weight W [reverse]
	InitFile *Statement // init_file [VALUE] [overwrite]
}

// Instance is a vrrp_instance block.
type Instance struct {
	Name            string
	Stmt            *Statement
	State           *Statement
	Interface       *Statement
	VirtualRouterID *Statement
	Priority        *Statement
	Version         *Statement
	AdvertInt       *Statement
	UnicastSrcIP    *Statement
	UnicastPeers    []*Statement // the lines of unicast_peer { }
	VIPs            []VIP
	Accept          *Statement
	NoAccept        *Statement
	StrictMode      *Statement
	NoPreempt       *Statement
	TrackScripts    []TrackRef
	TrackFiles      []TrackRef
	TrackInterfaces []TrackRef
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
// block in an instance: NAME [weight W [reverse|noreverse]].
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
}

// Model extracts the typed view. Later settings win, as in keepalived,
// except where keepalived keeps the first (a track_file's file).
func (c *Config) Model() *Model {
	m := &Model{}
	for _, st := range c.Statements {
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
				}
			}
		case "vrrp_script":
			sc := &Script{Name: st.Arg(1), Stmt: st}
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
			tf := &TrackFile{Name: st.Arg(1), Stmt: st}
			for _, s := range st.Block {
				switch s.Keyword() {
				case "file":
					if tf.File == nil {
						tf.File = s
					}
				case "weight":
					if tf.Weight == nil {
						tf.Weight = s
					}
				case "init_file":
					tf.InitFile = s
				}
			}
			m.TrackFiles = append(m.TrackFiles, tf)
		case "vrrp_instance":
			m.Instances = append(m.Instances, instance(st))
		}
	}
	return m
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
			in.Version = s
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

func trackRefs(st *Statement) []TrackRef {
	var refs []TrackRef
	for _, s := range values(st) {
		r := TrackRef{Stmt: s, Name: s.Words[0]}
		if s.Arg(1) == "weight" {
			if w, err := strconv.Atoi(s.Arg(2)); err == nil {
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
	for _, s := range m.Scripts {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// TrackFile finds a track_file by name.
func (m *Model) TrackFile(name string) *TrackFile {
	for _, t := range m.TrackFiles {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Path is the track file's file, "" when not set.
func (t *TrackFile) Path() string { return t.File.Arg(1) }

// BlockWeight is the block's weight and reverse (keepalived's default: 1,
// not reversed).
func (t *TrackFile) BlockWeight() (int, bool) {
	if t.Weight == nil {
		return 1, false
	}
	w, err := strconv.Atoi(strings.TrimSpace(t.Weight.Arg(1)))
	if err != nil {
		w = 1
	}
	return w, t.Weight.Arg(2) == "reverse"
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
		if w == "overwrite" {
			overwrite = true
		} else if n, err := strconv.Atoi(w); err == nil {
			value = n
		}
	}
	return value, overwrite, true
}

// ScriptWeight is the vrrp_script's own weight (default 0).
func (s *Script) ScriptWeight() int {
	if s.Weight == nil {
		return 0
	}
	w, _ := strconv.Atoi(strings.TrimSpace(s.Weight.Arg(1)))
	return w
}

// Effective is the weight keepalived uses for the reference ref.
func (s *Script) Effective(ref TrackRef) int {
	if ref.Weight != nil {
		return *ref.Weight
	}
	return s.ScriptWeight()
}

// Count is an unsigned count (fall, rise) with keepalived's default 1.
func Count(st *Statement) int {
	if st == nil {
		return 1
	}
	n, err := strconv.Atoi(st.Arg(1))
	if err != nil || n < 1 {
		return 1
	}
	return n
}
