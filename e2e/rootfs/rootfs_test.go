package rootfs

import (
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
	for _, bad := range []string{"", "# nothing\n", "Patroni\n", "a;b\n"} {
		if _, err := ParsePackages(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
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
