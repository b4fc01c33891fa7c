package doctor

import (
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
)

// What SELinux lets keepalived (keepalived_t) do, from Fedora's policy
// (selinux-policy, policy/modules/contrib/keepalived.te and .fc):
// corecmd_exec_bin and corecmd_exec_shell (bin_t, shell_exec_t run
// without a transition); a transition for /usr/libexec/keepalived
// (keepalived_unconfined_script_exec_t); manage_dirs_pattern and
// manage_files_pattern on keepalived_var_run_t (/run/keepalived.*);
// files_pid_filetrans, which lets it add files to a var_run_t directory
// (they become keepalived_var_run_t) but not read var_run_t files;
// files_tmp_filetrans likewise for tmp_t; and
// corenet_tcp_connect_http_port (Patroni's 8008 is an http_port_t port).
// Scripts keepalived runs without a transition are keepalived_t too.

// access is what keepalived_t may do to an object of a type.
type access uint8

const (
	execHere access = 1 << iota // execute, staying keepalived_t
	execOwn                     // execute, moving to another domain
	readIt                      // read a file
	writeIt                     // write a file
	addFiles                    // create files in a directory
	watchDir                    // search and inotify-watch a directory
)

// selinuxRule: a type and what keepalived_t may do to its files and to
// its directories.
type selinuxRule struct {
	typ       string
	file, dir access
}

func keepalivedPolicy() []selinuxRule {
	return []selinuxRule{
		{"bin_t", execHere | readIt, watchDir},
		{"shell_exec_t", execHere | readIt, 0},
		{"keepalived_unconfined_script_exec_t", execOwn, watchDir},
		{"keepalived_var_run_t", readIt | writeIt, watchDir | addFiles},
		{"var_run_t", 0, addFiles},
		{"keepalived_tmp_t", readIt | writeIt, 0},
		{"tmp_t", 0, addFiles},
	}
}

func allowed(typ string, dir bool, want access) bool {
	for _, r := range keepalivedPolicy() {
		if r.typ == typ {
			if dir {
				return r.dir&want != 0
			}
			return r.file&want != 0
		}
	}
	return false
}

// typesFor lists the types that allow want, for fixes.
func typesFor(dir bool, want access) string {
	var ts []string
	for _, r := range keepalivedPolicy() {
		a := r.file
		if dir {
			a = r.dir
		}
		if a&want != 0 {
			ts = append(ts, r.typ)
		}
	}
	return strings.Join(ts, " or ")
}

// httpPorts are http_port_t's TCP ports in Fedora's policy
// (corenetwork.te.in); semanage can add others.
func httpPorts() []int { return []int{80, 81, 443, 488, 8008, 8009, 8443, 9000} }

type selinuxState struct {
	mode       string // "enforcing", "permissive", or "" when off
	connectAny bool   // the keepalived_connect_any boolean
}

func (d *doctor) readSELinux() selinuxState {
	var s selinuxState
	switch d.readTrim("/sys/fs/selinux/enforce") {
	case "1":
		s.mode = "enforcing"
	case "0":
		s.mode = "permissive"
	}
	// "1 1": the current value, then the pending one.
	b := strings.Fields(d.readTrim("/sys/fs/selinux/booleans/keepalived_connect_any"))
	s.connectAny = len(b) > 0 && b[0] == "1"
	return s
}

func (d *doctor) selinuxSummary() {
	if d.selinux.mode == "" {
		d.ok(keepalived.Pos{}, "SELinux is off: no labels to check")
		return
	}
	d.ok(keepalived.Pos{}, "SELinux is %s: labels checked against Fedora's keepalived policy", d.selinux.mode)
}

// labelType is the type of a file's SELinux label, "" if none.
func (d *doctor) labelType(name string) (string, error) {
	l, err := d.sys.Label(name)
	if err != nil {
		return "", err
	}
	f := strings.Split(l, ":")
	if len(f) < 3 {
		return "", fmt.Errorf("label %q has no type", l)
	}
	return f[2], nil
}

// checkedLabel is the type of the label of a file the doctor judges under
// SELinux: ok is false when SELinux is off, or when the label cannot be
// read (a warning then says so).
func (d *doctor) checkedLabel(pos keepalived.Pos, name string) (typ string, ok bool) {
	if d.selinux.mode == "" {
		return "", false
	}
	typ, err := d.labelType(name)
	if err != nil {
		d.warn(pos, "restorecon -v "+name, "cannot read the SELinux label of %s: %s", show(name), errText(err))
		return "", false
	}
	return typ, true
}

// denied reports a refusal: a failure when enforcing, else a warning.
func (d *doctor) denied(pos keepalived.Pos, fix, format string, args ...any) {
	if d.selinux.mode == "enforcing" {
		d.fail(pos, fix, format, args...)
		return
	}
	d.warn(pos, fix, format+" (once SELinux enforces)", args...)
}

// selinuxExec: keepalived_t must be allowed to run the check.
func (d *doctor) selinuxExec(pos keepalived.Pos, exe string) {
	typ, ok := d.checkedLabel(pos, exe)
	if !ok {
		return
	}
	if !allowed(typ, false, execHere|execOwn) {
		d.denied(pos, "restorecon -v "+exe+" (bin_t for /usr/bin)",
			"%s is labelled %s, which keepalived may not execute: the exec fails, and keepalived counts a script that fails to start as a success", show(exe), typ)
		return
	}
	d.ok(pos, "%s is labelled %s: keepalived may run it", show(exe), typ)
}

// selinuxPort: the check, run as keepalived_t, must be allowed to
// connect to Patroni's port.
func (d *doctor) selinuxPort(pos keepalived.Pos, rawURL string) {
	if d.selinux.mode == "" || d.selinux.connectAny {
		return
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	if !slices.Contains(httpPorts(), port) {
		d.denied(pos, fmt.Sprintf("semanage port -a -t http_port_t -p tcp %d (or setsebool -P keepalived_connect_any 1)", port),
			"Patroni's port %d is not an http_port_t port: keepalived's scripts may not connect to it, and the check never gets an answer", port)
		return
	}
	d.ok(pos, "Patroni's port %d is an http_port_t port: keepalived's scripts may connect to it", port)
}

// selinuxStateDir: the check, as keepalived_t, keeps files there.
func (d *doctor) selinuxStateDir(pos keepalived.Pos, dir string) {
	typ, ok := d.checkedLabel(pos, dir)
	if !ok {
		return
	}
	if !allowed(typ, true, addFiles) {
		d.denied(pos, "label it "+typesFor(true, addFiles),
			"the check's state directory %s is labelled %s: keepalived's scripts may not create files there; the check keeps no state and says so at every run", show(dir), typ)
		return
	}
	entries, err := fs.ReadDir(d.sys.FS(), strings.TrimPrefix(dir, "/"))
	if err != nil {
		return
	}
	for _, e := range entries {
		f := path.Join(dir, e.Name())
		typ, err := d.labelType(f)
		if err == nil && !allowed(typ, false, readIt|writeIt) {
			d.denied(pos, "remove it (the check writes it again), or restorecon -v "+f,
				"the check's state file %s is labelled %s, which keepalived's scripts may not read", show(f), typ)
		}
	}
}

// selinuxTrackFile: keepalived watches the directory and reads the file.
func (d *doctor) selinuxTrackFile(pos keepalived.Pos, dir, file string) {
	typ, ok := d.checkedLabel(pos, dir)
	if !ok {
		return
	}
	if !allowed(typ, true, watchDir) {
		d.denied(pos, "restorecon -v "+dir+" (/run/keepalived.* is keepalived_var_run_t)",
			"%s is labelled %s: keepalived may not watch it, and never sees the file change", show(dir), typ)
		return
	}
	typ, err := d.labelType(file)
	if err != nil {
		return // absent: it takes the directory's label when written
	}
	if !allowed(typ, false, readIt) {
		d.denied(pos, "restorecon -v "+file,
			"%s is labelled %s: keepalived may not read it, reads 0, and the instance stays in FAULT", show(file), typ)
		return
	}
	d.ok(pos, "%s and %s are labelled for keepalived", show(dir), show(file))
}
