//go:build e2e

package vipconf

// What the generator writes, every set-up of it, passes real keepalived's configuration
// test (keepalived -t): the host's 2.2.7 and Debian 13's 2.3.3, run chrooted into the
// root that e2e/rootfs builds. Each runs in a network namespace of its own, whose eth0
// holds the lab node's IPv4 and IPv6 addresses, and a private mount namespace where
// /usr/bin holds the check built here (an overlay) and /run is a fresh tmpfs with the
// track file's directory: keepalived judges the packages' paths without this machine's
// being touched.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/rootfs"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
)

// A keepalived to test with: the host's, or the one in a root it runs chrooted in.
type flavour struct {
	root    string // "" for this machine's
	version keepalived.Version
}

var (
	flavours []flavour
	bin      string // a directory holding the check, for the overlay on /usr/bin
	skipWhy  string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipWhy = "needs root: network and mount namespaces"
		return m.Run()
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", fmt.Sprintf("pvc-vipconf-%d-", os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "bin")
	// keepalived's script security judges the overlay's top directory and the check.
	if err := os.Mkdir(bin, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	build := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", bin+"/", "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // it runs inside the Debian 13 root too
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v: %s\n", err, out)
		return 1
	}
	host, err := version("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "keepalived on this machine:", err)
		return 1
	}
	flavours = append(flavours, flavour{version: host})
	root := os.Getenv("PVC_DEBIAN13_ROOT")
	if root == "" {
		spec, err := rootfs.Lookup("debian13")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		r, err := rootfs.Ensure(ctx, spec, rootfs.Options{Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		root = r.Dir
	}
	v, err := version(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "keepalived in %s: %v\n", root, err)
		return 1
	}
	flavours = append(flavours, flavour{root: root, version: v})
	return m.Run()
}

func version(root string) (keepalived.Version, error) {
	cmd := exec.Command("/usr/sbin/keepalived", "--version")
	if root != "" {
		cmd = exec.Command("chroot", root, "/usr/sbin/keepalived", "--version")
	}
	out, _ := cmd.CombinedOutput()
	return keepalived.VersionFromOutput(out)
}

// node is a network namespace like the lab's node 1, with eth0 up.
func node(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("pvc-vipconf-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	if len(ns) > 60 {
		ns = ns[:60]
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "eth0peer", "up"},
		{"-n", ns, "addr", "add", "198.51.100.11/24", "dev", "eth0"},
		{"-n", ns, "addr", "add", "2001:db8::11/64", "dev", "eth0", "nodad"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return ns
}

// configTest runs keepalived -t on the file main among files, all in one directory, and
// returns its exit status and output. "@DIR@" in a file is that directory as keepalived
// sees it.
func configTest(t *testing.T, ns string, f flavour, files map[string]string, main string) (int, string) {
	t.Helper()
	work := t.TempDir()
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	r := f.root // "" for the host's /
	inside := work
	if r != "" {
		inside = "/tmp/pvc-vipconf"
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(strings.ReplaceAll(text, "@DIR@", inside)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`set -e
mount -t overlay pvc-bin -o lowerdir=%[1]s:%[2]s/usr/bin %[2]s/usr/bin
mount -t tmpfs -o mode=0755,size=4m pvc-run %[2]s/run
mkdir -m 0755 %[2]s/run/keepalived-patroni-vip-check
`, bin, r)
	argv := []string{"/usr/sbin/keepalived", "-t", "-f", inside + "/" + main}
	if r != "" {
		script += fmt.Sprintf(`mount -t tmpfs -o mode=1777,size=4m pvc-tmp %[1]s/tmp
mkdir %[1]s%[2]s
mount --bind %[3]s %[1]s%[2]s
mount -t proc pvc-proc %[1]s/proc
exec chroot %[1]s "$@"
`, r, inside, work)
	} else {
		script += "exec \"$@\"\n"
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("keepalived -t: %v", err)
	}
	return 0, string(out)
}

func eachKeepalived(t *testing.T, fn func(t *testing.T, ns string, f flavour)) {
	if skipWhy != "" {
		if os.Getenv("PVC_REQUIRE_ROOT") == "1" {
			t.Fatalf("%s (PVC_REQUIRE_ROOT=1)", skipWhy)
		}
		t.Skip(skipWhy)
	}
	for _, f := range flavours {
		t.Run("keepalived-"+f.version.String(), func(t *testing.T) { fn(t, node(t), f) })
	}
}

// variants are the set-ups the generator writes for the lab's node 1.
func variants(v keepalived.Version) map[string]Setup {
	out := map[string]Setup{}
	for _, mode := range []Mode{Watch, Oneshot} {
		for _, family := range []string{"ipv4", "ipv6"} {
			s := lab(mode, v)
			if family == "ipv6" {
				s = lab6(mode, v)
			}
			out[fmt.Sprintf("%s-%s", mode, family)] = s
			r := withRead(s)
			if family == "ipv6" {
				r.ReadVIP, r.ReadLabel, r.ReadURL = netip.MustParsePrefix("2001:db8::101/64"), "", "http://[2001:db8::11]:8008/replica?lag=16MB"
			}
			out[fmt.Sprintf("%s-%s-read", mode, family)] = r
			r.Instance = "pg-a"
			out[fmt.Sprintf("%s-%s-read-instance", mode, family)] = r
		}
	}
	return out
}

// TestKeepalivedAccepts: every set-up keepalived-conf writes passes keepalived -t on the
// keepalived it is written for, without a word; the one-shot set-up for 2.3.2 and later is
// refused by keepalived before 2.3.2, as its header says.
func TestKeepalivedAccepts(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, ns string, f flavour) {
		for name, s := range variants(f.version) {
			data, err := Render(s)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if code, out := configTest(t, ns, f, map[string]string{"k.conf": string(data)}, "k.conf"); code != 0 || strings.TrimSpace(out) != "" {
				t.Errorf("%s: keepalived %s -t: exit %d:\n%s", name, f.version, code, out)
			}
		}
		if f.version.FractionalTimers() {
			return
		}
		data, err := Render(withRead(lab(Oneshot, keepalived.Version{Major: 2, Minor: 3, Patch: 3})))
		if err != nil {
			t.Fatal(err)
		}
		if code, out := configTest(t, ns, f, map[string]string{"k.conf": string(data)}, "k.conf"); code == 0 || !strings.Contains(out, "invalid number '0.2'") {
			t.Errorf("the 2.3 set-up on keepalived %s: exit %d, want \"invalid number\":\n%s", f.version, code, out)
		}
	})
}

// TestKeepalivedSeveralClusters: two clusters' configurations, each written with
// --instance, included side by side into one keepalived.conf as their headers say, pass
// keepalived -t, global_defs twice and all. With one virtual_router_id for two of their
// instances keepalived refuses them, which is why keepalived-conf refuses an id in use.
// And an IPv6 VIP with a label, which keepalived-conf never writes, is refused.
func TestKeepalivedSeveralClusters(t *testing.T) {
	eachKeepalived(t, func(t *testing.T, ns string, f flavour) {
		mode := Watch
		render := func(instance string, vip, read netip.Prefix, id, readID int) string {
			s := withRead(lab(mode, f.version))
			s.Instance, s.VIP, s.RouterID, s.ReadVIP, s.ReadRouterID = instance, vip, id, read, readID
			s.URL = strings.Replace(s.URL, ":8008", map[string]string{"pg-a": ":8008", "pg-b": ":8009"}[instance], 1)
			s.ReadURL = strings.Replace(s.ReadURL, ":8008", map[string]string{"pg-a": ":8008", "pg-b": ":8009"}[instance], 1)
			data, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
		p := netip.MustParsePrefix
		for _, m := range []Mode{Watch, Oneshot} {
			mode = m
			files := map[string]string{
				"keepalived.conf":    "include @DIR@/patroni-*.conf\n",
				"patroni-pg-a.conf":  render("pg-a", p("198.51.100.100/24"), p("198.51.100.101/24"), 100, 101),
				"patroni-pg-b.conf":  render("pg-b", p("198.51.100.110/24"), p("198.51.100.111/24"), 110, 111),
				"unrelated.conf.bak": "this is not included\n",
			}
			if code, out := configTest(t, ns, f, files, "keepalived.conf"); code != 0 || strings.TrimSpace(out) != "" {
				t.Errorf("%s: two clusters: exit %d:\n%s", m, code, out)
			}
			files["patroni-pg-b.conf"] = render("pg-b", p("198.51.100.110/24"), p("198.51.100.111/24"), 110, 101)
			if code, out := configTest(t, ns, f, files, "keepalived.conf"); code == 0 || !strings.Contains(out, "duplicate VRID conflict") {
				t.Errorf("%s: one virtual_router_id twice: exit %d, want \"duplicate VRID conflict\":\n%s", m, code, out)
			}
		}
		s := lab6(Watch, f.version)
		data, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		labelled := strings.Replace(string(data), "2001:db8::100/64 dev eth0\n", "2001:db8::100/64 dev eth0 label eth0:1\n", 1)
		if code, out := configTest(t, ns, f, map[string]string{"k.conf": labelled}, "k.conf"); code == 0 || !strings.Contains(out, "Cannot specify label for IPv6") {
			t.Errorf("an IPv6 VIP with a label: exit %d:\n%s", code, out)
		}
	})
}
