package keepalived

import (
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[strings.TrimPrefix(name, "/")] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	return m
}

func load(t *testing.T, fsys fs.FS, name string) *Config {
	t.Helper()
	c, err := Load(name, Options{FS: fsys, ConfigID: "node1"})
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return c
}

// flat lists every statement as "file:line keyword words... [{]", depth-indented.
func flat(sts []*Statement) []string {
	var out []string
	var walk func([]*Statement, string)
	walk = func(sts []*Statement, indent string) {
		for _, s := range sts {
			l := fmt.Sprintf("%s%d %s", indent, s.Pos.Line, strings.Join(s.Words, "|"))
			if s.HasBlock {
				l += " {"
			}
			out = append(out, l)
			walk(s.Block, indent+"  ")
		}
	}
	walk(sts, "")
	return out
}

func TestBracesAnywhere(t *testing.T) {
	// The same structure written the ways keepalived accepts.
	variants := map[string]string{
		"same line": "vrrp_instance vi {\n  state BACKUP\n  unicast_peer {\n    10.0.0.2\n  }\n}\n",
		"next line": "vrrp_instance vi\n{\n  state BACKUP\n  unicast_peer\n  {\n    10.0.0.2\n  }\n}\n",
		"one line":  "vrrp_instance vi { state BACKUP\nunicast_peer { 10.0.0.2 } }\n",
		"glued":     "vrrp_instance vi{state BACKUP\nunicast_peer{10.0.0.2}}\n",
	}
	want := []string{"vrrp_instance|vi {", "  state|BACKUP", "  unicast_peer {", "    10.0.0.2"}
	for name, text := range variants {
		c := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf")
		var got []string
		for _, l := range flat(c.Statements) {
			_, rest, _ := strings.Cut(strings.TrimLeft(l, " "), " ")
			got = append(got, strings.Repeat(" ", len(l)-len(strings.TrimLeft(l, " ")))+rest)
		}
		if !reflect.DeepEqual(got, want) || len(c.Problems) != 0 {
			t.Errorf("%s: got %q problems %v, want %q", name, got, c.Problems, want)
		}
	}
}

func TestCommentsAndQuotes(t *testing.T) {
	text := `# a comment
! another
global_defs {   # trailing comment
    script_user root ! comment
}
vrrp_script "chk one" {
    script "/usr/bin/check http://x/#frag"   # the # in quotes stays
    weight \#5
}
`
	c := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf")
	got := flat(c.Statements)
	want := []string{
		"3 global_defs {",
		"  4 script_user|root",
		"6 vrrp_script|chk one {",
		"  7 script|/usr/bin/check http://x/#frag",
		"  8 weight|#5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if raw := c.Statements[1].Block[0].Raw; raw != `script "/usr/bin/check http://x/#frag"` {
		t.Errorf("raw script line %q", raw)
	}
}

func TestIncludes(t *testing.T) {
	fsys := mapFS(map[string]string{
		"/etc/keepalived/keepalived.conf":     "global_defs {\n}\ninclude conf.d/*.conf\ninclude /etc/keepalived/{a,b}.inc\ninclude missing/*.conf\n",
		"/etc/keepalived/conf.d/20-b.conf":    "vrrp_script b {\n}\n",
		"/etc/keepalived/conf.d/10-a.conf":    "vrrp_script a {\n  include ../nested/x.inc\n}\n",
		"/etc/keepalived/conf.d/.hidden.conf": "vrrp_script hidden {\n}\n",
		"/etc/keepalived/nested/x.inc":        "interval 2\n",
		"/etc/keepalived/b.inc":               "vrrp_script fromb {\n}\n",
		"/etc/keepalived/a.inc":               "vrrp_script froma {\n}\n",
	})
	c := load(t, fsys, "/etc/keepalived/keepalived.conf")
	wantFiles := []string{
		"/etc/keepalived/keepalived.conf",
		"/etc/keepalived/conf.d/10-a.conf",
		"/etc/keepalived/nested/x.inc",
		"/etc/keepalived/conf.d/20-b.conf",
		"/etc/keepalived/a.inc",
		"/etc/keepalived/b.inc",
	}
	if !reflect.DeepEqual(c.Files, wantFiles) {
		t.Errorf("files %q, want %q", c.Files, wantFiles)
	}
	m := c.Model()
	var names []string
	for _, s := range m.Scripts {
		names = append(names, s.Name)
	}
	if want := []string{"a", "b", "froma", "fromb"}; !reflect.DeepEqual(names, want) {
		t.Errorf("scripts %q, want %q", names, want)
	}
	a := m.Script("a")
	if a.Interval == nil || a.Interval.Pos != (Pos{"/etc/keepalived/nested/x.inc", 1}) {
		t.Errorf("interval of a: %+v", a.Interval)
	}
	if !hasProblem(c, "include /etc/keepalived/missing/*.conf: no file matched") {
		t.Errorf("no problem for the unmatched include: %v", c.Problems)
	}
}

func hasProblem(c *Config, sub string) bool {
	for _, p := range c.Problems {
		if strings.Contains(p.String(), sub) {
			return true
		}
	}
	return false
}

func TestIncludeSkipsWhatKeepalivedSkips(t *testing.T) {
	fsys := fstest.MapFS{
		"k.conf":         {Data: []byte("include /d/*\n")},
		"d/exec.conf":    {Data: []byte("vrrp_script exec {\n}\n"), Mode: 0o755},
		"d/plain.conf":   {Data: []byte("vrrp_script plain {\n}\n"), Mode: 0o644},
		"d/sub/x.conf":   {Data: []byte("vrrp_script sub {\n}\n")},
		"self/loop.conf": {Data: []byte("vrrp_script loop {\n}\ninclude loop.conf\n")},
	}
	c := load(t, fsys, "/k.conf")
	m := c.Model()
	if len(m.Scripts) != 1 || m.Scripts[0].Name != "plain" {
		t.Errorf("scripts %+v, want only plain", m.Scripts)
	}
	if !hasProblem(c, "not a regular non-executable file") || !hasProblem(c, "is a directory") {
		t.Errorf("problems %v", c.Problems)
	}
	c = load(t, fsys, "/self/loop.conf")
	if len(c.Model().Scripts) != 1 || !hasProblem(c, "includes itself") {
		t.Errorf("loop: scripts %d, problems %v", len(c.Model().Scripts), c.Problems)
	}
}

func TestIncludeLimits(t *testing.T) {
	// a.conf includes b.conf includes a.conf...: two files, never ending
	// without the cycle check; a chain of distinct files ends at MaxDepth.
	files := map[string]string{}
	for i := 0; i < 40; i++ {
		files[fmt.Sprintf("/c/%d.conf", i)] = fmt.Sprintf("vrrp_script s%d {\n}\ninclude %d.conf\n", i, i+1)
	}
	c, err := Load("/c/0.conf", Options{FS: mapFS(files)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Files); n != 16 || !hasProblem(c, "more than 16 nested includes") {
		t.Errorf("read %d files, problems %v", n, c.Problems)
	}
	c, err = Load("/c/0.conf", Options{FS: mapFS(files), Limits: Limits{MaxBytes: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if !hasProblem(c, "more than 100 bytes") {
		t.Errorf("byte limit: files %v problems %v", c.Files, c.Problems)
	}
}

func TestConditionalsAndDefinitions(t *testing.T) {
	text := `$IFACE=eth0
$PEERS=10.0.0.2 \
  10.0.0.3
@node1 $PRIO=150
@^node1 $PRIO=100
vrrp_instance vi {
    interface $IFACE
    priority ${PRIO}
    unicast_peer {
        $PEERS
    }
    @node2 state MASTER
    @^node2 state BACKUP
    notify "${_PWD}/x"
    notify2 "$_PWD/x"
    not_a_ref $IFACEx
}
`
	c := load(t, mapFS(map[string]string{"/etc/k.conf": text}), "/etc/k.conf")
	in := c.Model().Instances[0]
	got := []string{in.Interface.Arg(1), in.Priority.Arg(1), in.State.Arg(1)}
	if want := []string{"eth0", "150", "BACKUP"}; !reflect.DeepEqual(got, want) {
		t.Errorf("interface, priority, state = %q, want %q", got, want)
	}
	var peers []string
	for _, p := range in.UnicastPeers {
		peers = append(peers, p.Words...)
	}
	if want := []string{"10.0.0.2", "10.0.0.3"}; !reflect.DeepEqual(peers, want) {
		t.Errorf("peers %q, want %q", peers, want)
	}
	for _, s := range in.Stmt.Block {
		switch s.Keyword() {
		case "notify":
			if s.Arg(1) != "/etc/x" {
				t.Errorf("$_PWD: %q", s.Arg(1))
			}
		case "notify2":
			if s.Arg(1) != "$_PWD/x" {
				t.Errorf("$_PWD followed by / was replaced: %q", s.Arg(1))
			}
		case "not_a_ref":
			if s.Arg(1) != "$IFACEx" {
				t.Errorf("$IFACEx was replaced: %q", s.Arg(1))
			}
		}
	}
}

func TestRunawayDefinition(t *testing.T) {
	c := load(t, mapFS(map[string]string{"/k.conf": "$A=x $A\nvrrp_script $A {\n}\n$B=$B\nfoo $B\n"}), "/k.conf")
	if !hasProblem(c, "exceed") && !hasProblem(c, "without end") {
		t.Errorf("problems %v", c.Problems)
	}
}

func TestOverlongLine(t *testing.T) {
	long := "vrrp_script s {\n    script \"/bin/x " + strings.Repeat("a", 2000) + "\"\n}\n"
	c := load(t, mapFS(map[string]string{"/k.conf": long}), "/k.conf")
	if !hasProblem(c, "longer than 1023 bytes") {
		t.Errorf("problems %v", c.Problems)
	}
}

func TestUnbalanced(t *testing.T) {
	c := load(t, mapFS(map[string]string{"/k.conf": "}\nvrrp_instance vi {\nstate BACKUP\n"}), "/k.conf")
	if !hasProblem(c, "extra '}'") || !hasProblem(c, "/k.conf:2: vrrp_instance vi: block not closed") {
		t.Errorf("problems %v", c.Problems)
	}
	c = load(t, mapFS(map[string]string{"/k.conf": "a \"b\nc\n"}), "/k.conf")
	if !hasProblem(c, "unterminated quote") {
		t.Errorf("problems %v", c.Problems)
	}
}

func TestLoadErrors(t *testing.T) {
	fsys := fstest.MapFS{"d": {Mode: fs.ModeDir | 0o755}}
	for _, name := range []string{"/missing.conf", "/d", "relative.conf"} {
		if _, err := Load(name, Options{FS: fsys}); err == nil {
			t.Errorf("Load(%s): no error", name)
		}
	}
}

func TestModel(t *testing.T) {
	text := `global_defs {
    enable_script_security
    script_user keepalived_script nogroup
}
vrrp_script chk {
    script "/usr/bin/patroni-vip-check --timeout 2s 'http://10.0.0.1:8008/primary'"
    interval 2
    weight -20
}
track_file tf {
    file /run/x/eligible
    weight 0 reverse
}
vrrp_instance vi {
    interface eth0
    no_accept
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:1
        10.0.0.101
    }
    track_script {
        chk weight 10
    }
    track_file {
        tf weight 0 noreverse
    }
}
`
	c := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf")
	m := c.Model()
	if m.Global.EnableScriptSecurity == nil {
		t.Error("enable_script_security not seen")
	}
	if u, g := SplitUser(m.Global.ScriptUser); u != "keepalived_script" || g != "nogroup" {
		t.Errorf("script_user %q %q", u, g)
	}
	sc := m.Script("chk")
	args, extra, err := sc.Args(Version{2, 2, 7})
	if err != nil || !reflect.DeepEqual(args, []string{"/usr/bin/patroni-vip-check", "--timeout", "2s", "http://10.0.0.1:8008/primary"}) || extra != nil {
		t.Errorf("args %q extra %q err %v", args, extra, err)
	}
	in := m.Instances[0]
	if w := sc.Effective(in.TrackScripts[0]); w != 10 {
		t.Errorf("effective weight %d", w)
	}
	if sc.ScriptWeight() != -20 {
		t.Errorf("script weight %d", sc.ScriptWeight())
	}
	tf := m.TrackFile("tf")
	if w, rev := tf.BlockWeight(); w != 0 || !rev {
		t.Errorf("block weight %d %t", w, rev)
	}
	if w, rev := tf.Effective(in.TrackFiles[0]); w != 0 || rev {
		t.Errorf("effective %d %t: noreverse on the reference should win", w, rev)
	}
	if acc, why := in.AcceptMode(m.Global); acc || why != in.NoAccept {
		t.Errorf("accept %t because %+v", acc, why)
	}
	if len(in.VIPs) != 2 || in.VIPs[0].Prefix.String() != "10.0.0.100/24" || in.VIPs[0].Dev != "eth0" ||
		in.VIPs[0].Label != "eth0:1" || in.VIPs[1].Prefix.String() != "10.0.0.101/32" {
		t.Errorf("VIPs %+v", in.VIPs)
	}
}

func TestAcceptMode(t *testing.T) {
	cases := []struct {
		global, inst string
		want         bool
	}{
		{"", "", true},
		{"", "no_accept", false},
		{"vrrp_strict", "", false},
		{"vrrp_strict", "version 3\naccept", true},
		{"vrrp_strict", "version 2\naccept", false},
		{"", "strict_mode\naccept\nversion 3", true},
		{"vrrp_strict", "no_accept\npriority 255", true},
	}
	for _, tc := range cases {
		text := "global_defs {\n" + tc.global + "\n}\nvrrp_instance vi {\n" + tc.inst + "\n}\n"
		m := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf").Model()
		if got, _ := m.Instances[0].AcceptMode(m.Global); got != tc.want {
			t.Errorf("%q / %q: accept %t, want %t", tc.global, tc.inst, got, tc.want)
		}
	}
}

func TestScriptArgs(t *testing.T) {
	v227, v233 := Version{2, 2, 7}, Version{2, 3, 3}
	cases := []struct {
		line  string
		v     Version
		args  []string
		extra []string
	}{
		{`script "/bin/x a b"`, v227, []string{"/bin/x", "a", "b"}, nil},
		{`script /bin/x a b`, v227, []string{"/bin/x"}, []string{"a", "b"}},
		{`script "/bin/x 'a b' c"`, v233, []string{"/bin/x", "a b", "c"}, nil},
		// One backslash: 2.2.7 turns \t into a tab in the first pass, and the
		// second pass splits on it; 2.3.3 makes the tab in the second pass.
		{`script "/bin/x a\tb"`, v227, []string{"/bin/x", "a", "b"}, nil},
		{`script "/bin/x a\tb"`, v233, []string{"/bin/x", "a\tb"}, nil},
		// Two: 2.2.7 unescapes twice, 2.3.3 once.
		{`script "/bin/x a\\tb"`, v227, []string{"/bin/x", "a\tb"}, nil},
		{`script "/bin/x a\\tb"`, v233, []string{"/bin/x", `a\tb`}, nil},
	}
	for _, tc := range cases {
		c := load(t, mapFS(map[string]string{"/k.conf": "vrrp_script s {\n" + tc.line + "\n}\n"}), "/k.conf")
		args, extra, err := c.Model().Scripts[0].Args(tc.v)
		if err != nil || !reflect.DeepEqual(args, tc.args) || !reflect.DeepEqual(extra, tc.extra) {
			t.Errorf("%s (%s): args %q extra %q err %v, want %q %q", tc.line, tc.v, args, extra, err, tc.args, tc.extra)
		}
	}
	c := load(t, mapFS(map[string]string{"/k.conf": "vrrp_script s {\ninterval 1\n}\n"}), "/k.conf")
	if _, _, err := c.Model().Scripts[0].Args(v227); err != ErrNoScript {
		t.Errorf("no script line: err %v", err)
	}
}

func TestTimer(t *testing.T) {
	v227, v233 := Version{2, 2, 7}, Version{2, 3, 3}
	cases := []struct {
		s     string
		v     Version
		want  time.Duration
		noted bool
	}{
		{"1", v227, time.Second, false},
		{"3", v227, 3 * time.Second, false},
		{"0.2", v227, time.Second, true},
		{"1.5", v227, time.Second, true},
		{"2.5", v227, 2 * time.Second, true},
		{"0", v227, time.Second, true},
		{"0.2", v233, 200 * time.Millisecond, false},
		{"0.05", v233, 50 * time.Millisecond, false},
		{"1", v233, time.Second, false},
		{"0.0004", v233, time.Second, true},
		{"0.0015", v233, 2 * time.Millisecond, true},
		{"abc", v233, 0, true},
	}
	for _, tc := range cases {
		got, note := tc.v.Timer(tc.s)
		if got != tc.want || (note != "") != tc.noted {
			t.Errorf("keepalived %s, %q: %v %q, want %v (note %t)", tc.v, tc.s, got, note, tc.want, tc.noted)
		}
	}
}

func TestVersion(t *testing.T) {
	out := []byte("Keepalived v2.2.7 (01/16,2022)\n\nCopyright(C) 2001-2022 Alexandre Cassen\n")
	v, err := VersionFromOutput(out)
	if err != nil || v != (Version{2, 2, 7}) {
		t.Errorf("VersionFromOutput: %v %v", v, err)
	}
	if _, err := VersionFromOutput([]byte("bash: keepalived: command not found")); err == nil {
		t.Error("no error for output without a version")
	}
	for s, want := range map[string]Version{"2.3.3": {2, 3, 3}, "v2.3.2": {2, 3, 2}, "2.3": {2, 3, 0}} {
		if v, err := ParseVersion(s); err != nil || v != want {
			t.Errorf("ParseVersion(%q) = %v %v", s, v, err)
		}
	}
	if _, err := ParseVersion("2.x"); err == nil {
		t.Error("ParseVersion(2.x): no error")
	}
	if (Version{2, 3, 1}).FractionalTimers() || !(Version{2, 3, 2}).FractionalTimers() || !(Version{3, 0, 0}).FractionalTimers() {
		t.Error("FractionalTimers boundary wrong")
	}
}

func TestWriterRoundTrip(t *testing.T) {
	var w Writer
	w.Comment("a comment\n\nafter a blank")
	w.Open("vrrp_script", "chk")
	cmd, err := ScriptCommand([]string{"/usr/bin/patroni-vip-check", "--timeout", "150ms", "http://10.0.0.1:8008/primary?lag=1MB&x=#1"})
	if err != nil {
		t.Fatal(err)
	}
	w.Line("script", cmd)
	w.Close()
	data, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	c := load(t, mapFS(map[string]string{"/k.conf": string(data)}), "/k.conf")
	args, _, err := c.Model().Script("chk").Args(Version{2, 2, 7})
	if err != nil || len(args) != 4 || args[3] != "http://10.0.0.1:8008/primary?lag=1MB&x=#1" {
		t.Errorf("round trip: %q %v\n%s", args, err, data)
	}
	var bad Writer
	bad.Line("x", `a"b`)
	if _, err := bad.Bytes(); err == nil {
		t.Error("a word with a double quote was written")
	}
	var open Writer
	open.Open("x")
	if _, err := open.Bytes(); err == nil {
		t.Error("an unclosed block was written")
	}
}

// TestHugeInputIsBounded: what Load keeps of a large file is the file
// itself, not a record per line: 15 MB of empty lines (or of comments,
// or of lone braces) allocate a small multiple of 15 MB in all.
func TestHugeInputIsBounded(t *testing.T) {
	const size = 15 << 20
	for name, unit := range map[string]string{"newlines": "\n", "comments": "#\n", "braces": "}\n"} {
		data := strings.Repeat(unit, size/len(unit))
		fsys := mapFS(map[string]string{"/k.conf": data})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := load(t, fsys, "/k.conf")
		runtime.ReadMemStats(&after)
		if len(c.Statements) != 0 {
			t.Errorf("%s: %d statements", name, len(c.Statements))
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 3*size {
			t.Errorf("%s: Load allocated %d MB for %d MB of input", name, got>>20, size>>20)
		}
	}
}

// TestLongDefinitionIsBounded: a multi-line definition of many lines
// costs memory in proportion to its text (it was copied whole at every
// line: 600000 lines did not end in a minute).
func TestLongDefinitionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("$A=line 0 \\\n")
	for i := 1; i < 20000; i++ {
		fmt.Fprintf(&b, "line %d \\\n", i)
	}
	b.WriteString("end\n\n$A\n")
	fsys := mapFS(map[string]string{"/k.conf": b.String()})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := load(t, fsys, "/k.conf")
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("Load allocated %d MB for %d KB of input", got>>20, b.Len()>>10)
	}
	// $A is the whole definition: its first line, then the others.
	if len(c.Statements) != 20001 || c.Statements[0].Raw != "line 0" || c.Statements[1].Raw != "line 1" || c.Statements[20000].Raw != "end" {
		t.Errorf("%d statements, first %q", len(c.Statements), c.Statements[0].Raw)
	}
}

// tree renders statements as keepalived.conf, two blanks a level, words
// with blanks in double quotes.
func tree(sts []*Statement) string {
	var b strings.Builder
	var walk func([]*Statement, string)
	walk = func(sts []*Statement, indent string) {
		for _, s := range sts {
			ws := make([]string, len(s.Words))
			for i, w := range s.Words {
				ws[i] = w
				if strings.ContainsAny(w, " \t") {
					ws[i] = `"` + w + `"`
				}
			}
			b.WriteString(indent + strings.Join(ws, " "))
			if s.HasBlock {
				b.WriteString(" {\n")
				walk(s.Block, indent+"  ")
				b.WriteString(indent + "}")
			}
			b.WriteString("\n")
		}
	}
	walk(sts, "")
	return b.String()
}

// TestManPageExamples: the examples of keepalived.conf(5) (2.2.7 and
// 2.3.3: "Conditional configuration", "Parameter substitution"), read
// as keepalived reads them (testdata/man5, its README says what was
// changed).
func TestManPageExamples(t *testing.T) {
	for _, tc := range []struct{ name, id string }{
		{"multiline-instance", "high"},
		{"multiline-nested-noblank", "main"},
		{"recursive", "main"},
		{"conditional-priority", "main"},
		{"conditional-definition", "main"},
		{"conditional", "main"},
	} {
		data, err := os.ReadFile("testdata/man5/" + tc.name + ".conf")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("testdata/man5/" + tc.name + ".want")
		if err != nil {
			t.Fatal(err)
		}
		c, err := Load("/etc/keepalived/man.conf", Options{FS: mapFS(map[string]string{"/etc/keepalived/man.conf": string(data)}), ConfigID: tc.id})
		if err != nil {
			t.Fatal(err)
		}
		if got := tree(c.Statements); got != string(want) || len(c.Problems) > 0 {
			t.Errorf("%s: read as\n%s\nproblems %v\nwant\n%s", tc.name, got, c.Problems, want)
		}
	}
	// As printed, the nested example has blank lines inside $RS, and a
	// blank line ends a multi-line definition: keepalived 2.2.7 -t says
	// "(Line 10) Unknown keyword 'MISC_CHECK'" and "(Line 18) Extra '}'
	// found".
	data, err := os.ReadFile("testdata/man5/multiline-nested.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := load(t, mapFS(map[string]string{"/etc/keepalived/man.conf": string(data)}), "/etc/keepalived/man.conf")
	var top []string
	for _, s := range c.Statements {
		top = append(top, fmt.Sprintf("%d %s", s.Pos.Line, s.Keyword()))
	}
	if !slices.Contains(top, "10 MISC_CHECK") || !hasProblem(c, "man.conf:18: extra '}' found") {
		t.Errorf("nested example with blank lines: top level %q, problems %v", top, c.Problems)
	}
}

// TestDecomment: keepalived's decomment() keeps a final backslash after a
// comment (the definition goes on), and a backslash hides a quote.
func TestDecomment(t *testing.T) {
	for in, want := range map[string]string{
		`  a b  # c`:           "a b",
		`a \# b ! c`:           "a # b",
		`"a # b" # c`:          `"a # b"`,
		`"a \# b"`:             `"a \# b"`,
		`$X=a   \`:             `$X=a\`,
		`$X=a # comment \`:     `$X=a\`,
		`a \" # b`:             `a \"`,
		`a # b \\`:             "a",
		"peer\t! 198.51.100.1": "peer",
	} {
		if got, _ := decomment(in); got != want {
			t.Errorf("decomment(%q) = %q, want %q", in, got, want)
		}
	}
	if _, open := decomment(`a "b`); !open {
		t.Error(`decomment("a \"b"): quote not reported open`)
	}
	if _, open := decomment(`a # "b`); open {
		t.Error(`a quote in a comment was counted`)
	}
}

// TestManPageQuotedScript: keepalived.conf(5) of 2.3.3 (lines 143-155)
// shows how a script line with quotes and escapes becomes arguments; the
// same line in a vrrp_script is read so by keepalived 2.3.3.
func TestManPageQuotedScript(t *testing.T) {
	text := "$SG_NAME=SG1\n$INST=low\nvrrp_script s {\n" +
		`    script "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' ${SG_NAME}.$INST master"` + "\n}\n"
	c := load(t, mapFS(map[string]string{"/k.conf": text}), "/k.conf")
	args, extra, err := c.Model().Scripts[0].Args(Version{2, 3, 3})
	want := []string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}
	if err != nil || extra != nil || !reflect.DeepEqual(args, want) {
		t.Errorf("args %q extra %q err %v, want %q", args, extra, err, want)
	}
}
