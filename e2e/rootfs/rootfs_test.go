package rootfs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// These tests need neither root nor debootstrap: they run with `go test ./...`.

func TestLookupDebian13(t *testing.T) {
	s, err := Lookup("debian13")
	if err != nil {
		t.Fatal(err)
	}
	if s.Suite != "trixie" || s.Variant != "minbase" {
		t.Errorf("suite %q variant %q", s.Suite, s.Variant)
	}
	// What the suite runs from the root, and the lab notes' recipe.
	for _, p := range []string{"patroni", "postgresql-17", "etcd-server", "etcd-client", "keepalived", "iproute2", "procps", "curl"} {
		if !slices.Contains(s.Packages, p) {
			t.Errorf("debian13.packages lacks %s", p)
		}
	}
	if _, err := Lookup("debian11"); err == nil {
		t.Error("an unknown stack must be an error")
	}
}

func TestParsePackages(t *testing.T) {
	got, err := ParsePackages("# comment\nzz\n\naa  bb # why\naa\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"aa", "bb", "zz"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "# nothing\n", "Patroni\n", "a;b\n", "aa=\n", "aa=x1\n", "aa=1.0 aa=1.1\n", "aa=1 b;c=2\n"} {
		if _, err := ParsePackages(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	// Pins: NAME=VERSION, epochs and Debian revisions included.
	got, err = ParsePackages("keepalived=1:2.3.4-1+b2\npatroni=4.1.5-2 curl\npatroni=4.1.5-2\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"curl", "keepalived=1:2.3.4-1+b2", "patroni=4.1.5-2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if names := (Spec{Packages: got}).Names(); !slices.Equal(names, []string{"curl", "keepalived", "patroni"}) {
		t.Errorf("names %v", names)
	}
}

func TestLookupSid(t *testing.T) {
	s, err := Lookup("sid")
	if err != nil {
		t.Fatal(err)
	}
	if s.Suite != "sid" || s.Variant != "minbase" {
		t.Errorf("suite %q variant %q", s.Suite, s.Variant)
	}
	// Unstable moves: what the suite is about is pinned to the versions it was proven on.
	for _, p := range []string{"patroni", "python3-etcd", "postgresql-18", "etcd-server", "etcd-client", "keepalived"} {
		if !slices.ContainsFunc(s.Packages, func(e string) bool { return strings.HasPrefix(e, p+"=") }) {
			t.Errorf("sid.packages does not pin %s", p)
		}
	}
	for _, p := range []string{"iproute2", "procps", "curl"} {
		if !slices.Contains(s.Names(), p) {
			t.Errorf("sid.packages lacks %s", p)
		}
	}
}

func TestCheckPins(t *testing.T) {
	spec := Spec{Name: "sid", Packages: []string{"curl", "keepalived=1:2.3.4-1+b2", "patroni=4.1.5-2"}}
	if err := checkPins(spec, "curl 8.23.0-1\nkeepalived 1:2.3.4-1+b2\npatroni 4.1.5-2\n"); err != nil {
		t.Errorf("matching versions: %v", err)
	}
	err := checkPins(spec, "curl 8.23.0-1\nkeepalived 1:2.3.4-1+b2\npatroni 4.1.6-1\n")
	var moved *MovedError
	if !errors.As(err, &moved) || len(moved.Moved) != 1 || !strings.Contains(moved.Moved[0], "patroni 4.1.5-2 pinned, 4.1.6-1 on the mirror") {
		t.Fatalf("a moved pin: %v", err)
	}
	// The message says what moved and how to move the pins.
	for _, want := range []string{"the mirror moved", "sid.packages", "make e2e STACK=sid", "4.1.6-1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if err := checkPins(spec, "curl 8.23.0-1\n"); err == nil || !strings.Contains(err.Error(), "none on the mirror") {
		t.Errorf("missing pinned packages: %v", err)
	}
}

func TestKey(t *testing.T) {
	a := Spec{Name: "debian13", Suite: "trixie", Variant: "minbase", Packages: []string{"a", "b"}}
	k := a.Key("amd64")
	if !strings.HasPrefix(k, "debian13-trixie-amd64-") || len(k) != len("debian13-trixie-amd64-")+12 {
		t.Errorf("key %q", k)
	}
	if a.Key("amd64") != k {
		t.Error("the key is not stable")
	}
	pinned := a
	pinned.Packages = []string{"a", "b=1.0-1"}
	if pinned.Key("amd64") == k {
		t.Error("a pin must change the key")
	}
	b := a
	b.Packages = []string{"a", "b", "c"}
	c := a
	c.Suite = "forky"
	for name, other := range map[string]string{"packages": b.Key("amd64"), "suite": c.Key("amd64"), "arch": a.Key("arm64")} {
		if other == k {
			t.Errorf("another %s, same key %s", name, k)
		}
	}
}

func TestPickMirror(t *testing.T) {
	// This project's machines: deb822 for Debian, one-line for a third party.
	host := []sourceFile{
		{"/etc/apt/sources.list.d/debian.sources", `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`},
	}
	if got := pickMirror(host, "bookworm"); got != "http://deb.debian.org/debian" {
		t.Errorf("host sources: %q", got)
	}
	for _, c := range []struct {
		name  string
		files []sourceFile
		want  string
	}{
		{"one-line with options, security first", []sourceFile{{"/etc/apt/sources.list", `
deb http://security.debian.org/debian-security bookworm-security main
# deb http://old.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.fr.debian.org/debian/ bookworm main contrib
`}}, "http://ftp.fr.debian.org/debian"},
		{"third party before Debian", []sourceFile{
			{"/etc/apt/sources.list.d/nodesource.sources", "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n"},
			{"/etc/apt/sources.list.d/z.list", "deb https://mirror.example/debian bookworm main\n"},
		}, "https://mirror.example/debian"},
		{"disabled stanza, deb-src and continuation lines", []sourceFile{{"/etc/apt/sources.list.d/debian.sources", `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs:
 http://cont.example/debian
Suites: bookworm
Components: contrib
 main
`}}, "http://cont.example/debian"},
		{"no component main", []sourceFile{{"/etc/apt/sources.list", "deb http://a.example/debian bookworm contrib\n"}}, ""},
		{"cdrom only", []sourceFile{{"/etc/apt/sources.list", "deb cdrom:[Debian 12]/ bookworm main\n"}}, ""},
	} {
		if got := pickMirror(c.files, "bookworm"); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if got := pickMirror(host, ""); got != "" {
		t.Errorf("no codename: got %q", got)
	}
}

func TestMountPointsUnder(t *testing.T) {
	info := `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:5 / /var/cache/pvc/root/proc rw - proc proc rw
31 22 0:6 / /var/cache/pvc/root2 rw - tmpfs tmpfs rw
32 22 0:7 / /var/cache/pvc/with\040space/dev rw - tmpfs tmpfs rw
`
	if got := mountPointsUnder(info, "/var/cache/pvc/root"); !slices.Equal(got, []string{"/var/cache/pvc/root/proc"}) {
		t.Errorf("got %v", got)
	}
	if got := mountPointsUnder(info, "/var/cache/pvc/with space/"); !slices.Equal(got, []string{"/var/cache/pvc/with space/dev"}) {
		t.Errorf("escaped: got %v", got)
	}
	if got := mountPointsUnder(info, "/srv"); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}
