package keepalived

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad reads any bytes as a keepalived.conf that may include itself
// and a second file holding the same bytes: Load must not panic, loop or
// read past its limits, and what it returns must hang together.
// Seeds: testdata/fuzz/FuzzLoad (the shipped examples among them).
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fuzzer does not report a hang: a run that has not ended
		// after 10 s crashes the worker, which saves the input.
		hang := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Load still running after 10s on %q", data)) })
		defer hang.Stop()
		fsys := fstest.MapFS{
			"etc/keepalived/keepalived.conf": {Data: data, Mode: 0o644},
			"etc/keepalived/conf.d/a.conf":   {Data: data, Mode: 0o644},
			"etc/keepalived/conf.d/b.conf":   {Data: []byte("vrrp_script b {\nscript /bin/true\n}\n"), Mode: 0o644},
		}
		lim := Limits{MaxDepth: 4, MaxFiles: 8, MaxBytes: 1 << 20, MaxStatements: 10000}
		c, err := Load("/etc/keepalived/keepalived.conf", Options{FS: fsys, ConfigID: "n1", Limits: lim})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if len(c.Files) > lim.MaxFiles {
			t.Fatalf("read %d files, limit %d", len(c.Files), lim.MaxFiles)
		}
		read := map[string]bool{}
		for _, f := range c.Files {
			read[f] = true
		}
		var walk func([]*Statement, int)
		walk = func(sts []*Statement, depth int) {
			for _, s := range sts {
				if len(s.Words) == 0 || !read[s.Pos.File] || s.Pos.Line < 1 {
					t.Fatalf("statement %+v: no words or from a file not read", s)
				}
				if !s.HasBlock && len(s.Block) > 0 {
					t.Fatalf("statement %+v has a block without HasBlock", s)
				}
				walk(s.Block, depth+1)
			}
		}
		walk(c.Statements, 0)
		m := c.Model()
		for _, v := range []Version{{2, 2, 7}, {2, 3, 3}} {
			for _, s := range m.Scripts {
				if args, _, err := s.Args(v); err == nil && len(args) == 0 {
					t.Fatalf("script %s: no args and no error", s.Name)
				}
				if d, _ := s.IntervalFor(v); d <= 0 {
					t.Fatalf("script %s: interval %v", s.Name, d)
				}
				s.TimeoutFor(v)
			}
		}
		for _, in := range m.Instances {
			in.AcceptMode(m.Global)
			if v, _ := in.VRRPVersion(m.Global); v != 2 && v != 3 {
				t.Fatalf("instance %s: VRRP version %d", in.Name, v)
			}
			if id, ok, _ := in.RouterID(); ok != (id >= 1 && id <= 255) {
				t.Fatalf("instance %s: router id %d %t", in.Name, id, ok)
			}
			if a := in.Authentication(m.Global); len(a.Pass) > 8 || a.Type != "" && a.Dropped != "" {
				t.Fatalf("instance %s: authentication %+v", in.Name, a)
			}
			ts, ig := m.Tracking(in)
			for _, tr := range ts {
				if (tr.Script == nil) == (tr.File == nil) || tr.Gate() && tr.Inverted() {
					t.Fatalf("instance %s: tracker %+v", in.Name, tr)
				}
			}
			for _, i := range ig {
				if i.Why == "" || i.Ref.Stmt == nil {
					t.Fatalf("instance %s: ignored %+v", in.Name, i)
				}
			}
			for _, r := range in.TrackFiles {
				if tf := m.TrackFile(r.Name); tf != nil {
					tf.Effective(r)
					tf.InitValue()
				}
			}
			// An address keepalived refuses for its family is never one
			// it keeps.
			for _, r := range in.Refusals() {
				if r.Says == "" || r.What == "virtual_ipaddress" && in.KeepsVIP(parseVIP(r.Stmt)) {
					t.Fatalf("instance %s: refusal %+v", in.Name, r)
				}
			}
			if src, ok := in.SourceIP(); ok && (src.Is4() != (in.Family() == 4)) {
				t.Fatalf("instance %s: source %s of family %d", in.Name, src, in.Family())
			}
		}
		any := func(string, int) (netip.Addr, bool) { return netip.MustParseAddr("198.51.100.11"), true }
		for _, c := range m.VRIDConflicts(any) {
			if c.A == c.B || c.A.Family() != c.B.Family() || c.Says == "" {
				t.Fatalf("conflict %+v", c)
			}
		}
	})
}

// FuzzVersionFromOutput: whatever `keepalived --version` printed.
func FuzzVersionFromOutput(f *testing.F) {
	f.Add([]byte("Keepalived v2.2.7 (01/16,2022)\n\nCopyright(C) 2001-2022 Alexandre Cassen\n"))
	f.Add([]byte("Keepalived v2.3.3 (03/30,2025)\n"))
	f.Add([]byte("keepalived: command not found"))
	f.Fuzz(func(t *testing.T, out []byte) {
		v, err := VersionFromOutput(out)
		if err == nil && (!strings.Contains(string(out), "Keepalived v") || v.Major > 9999 || v.Minor > 9999 || v.Patch > 9999) {
			t.Fatalf("version %v from %q", v, out)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
