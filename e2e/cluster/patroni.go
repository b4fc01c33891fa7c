package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (c *Cluster) startEtcd(ctx context.Context) error {
	url := "http://" + SwitchAddr + ":2379"
	var err error
	c.etcd, err = startProc("etcd", filepath.Join(c.logDir, "etcd.log"), c.command(placement{
		ns: c.swNS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}, c.opts.Stack.Etcd, "--name", "e2e", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e2e=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381",
		"--enable-v2=true")) // for vip-manager; harmless otherwise (and still there in 3.5)
	if err != nil {
		return err
	}
	return waitFor(ctx, "etcd answers", 30*time.Second, 100*time.Millisecond, func() (bool, string, error) {
		if !c.etcd.running() {
			return false, "", errors.New("etcd exited; see etcd.log")
		}
		var h struct{ Health string }
		err := c.getJSON(ctx, url+"/health", &h)
		if err != nil {
			return false, err.Error(), nil
		}
		return h.Health == "true", "health " + h.Health, nil
	})
}

// getJSON GETs url from the switch namespace and decodes its JSON body whatever the
// status (Patroni answers 503 with a body).
func (c *Cluster) getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %d, %w", url, resp.StatusCode, err)
	}
	return nil
}

// Leader is the member holding the leader key in the DCS, "" when none does.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	if c.opts.DCSv2 {
		var r struct {
			ErrorCode int
			Node      struct{ Value string }
		}
		if err := c.getJSON(ctx, "http://"+SwitchAddr+":2379/v2/keys/service/"+Scope+"/leader", &r); err != nil {
			return "", err
		}
		return r.Node.Value, nil // ErrorCode 100 (key not found): no leader
	}
	// etcd's v3 JSON gateway: POST /v3/kv/range with base64 keys.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := base64.StdEncoding.EncodeToString([]byte("/service/" + Scope + "/leader"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+SwitchAddr+":2379/v3/kv/range",
		strings.NewReader(`{"key":"`+key+`"}`))
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct{ Kvs []struct{ Value string } }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return "", fmt.Errorf("etcd range: %d: %w", resp.StatusCode, err)
	}
	if len(r.Kvs) == 0 {
		return "", nil
	}
	v, err := base64.StdEncoding.DecodeString(r.Kvs[0].Value)
	return string(v), err
}

// PatroniStatus is the part of Patroni's GET /patroni answer the harness reads.
type PatroniStatus struct {
	State       string
	Role        string
	Timeline    int
	Pause       bool
	Patroni     struct{ Version, Scope, Name string }
	Replication []struct {
		ApplicationName string `json:"application_name"`
		State           string
	}
}

// Running reports whether PostgreSQL is up as far as Patroni knows.
func (s PatroniStatus) Running() bool { return s.State == "running" }

// Status asks the node's Patroni REST API, from the switch namespace.
func (n *Node) Status(ctx context.Context) (PatroniStatus, error) {
	var st PatroniStatus
	err := n.c.getJSON(ctx, "http://"+n.Addr+":8008/patroni", &st)
	return st, err
}

// patroniHealthy returns "" when one node is the running primary and holds the leader key,
// the others are running replicas and the primary sees both streaming; else what is not so.
func (c *Cluster) patroniHealthy(ctx context.Context) (string, error) {
	for _, n := range c.nodes {
		if !n.patroniRunning() {
			return "", fmt.Errorf("patroni on %s is not running; see %s", n.Name, n.PatroniLogPath())
		}
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return "dcs: " + err.Error(), nil
	}
	if leader == "" {
		return "no leader key", nil
	}
	for _, n := range c.nodes {
		st, err := n.Status(ctx)
		if err != nil {
			return n.Name + ": " + err.Error(), nil
		}
		want := "replica"
		if n.Name == leader {
			want = c.opts.Stack.PrimaryRole
		}
		if !st.Running() || st.Role != want {
			return fmt.Sprintf("%s: state %s role %s, want running %s", n.Name, st.State, st.Role, want), nil
		}
		if n.Name == leader {
			streaming := map[string]bool{}
			for _, r := range st.Replication {
				if r.State == "streaming" {
					streaming[r.ApplicationName] = true
				}
			}
			for _, m := range c.nodes {
				if m.Name != leader && !streaming[m.Name] {
					return fmt.Sprintf("%s does not stream from %s yet", m.Name, leader), nil
				}
			}
		}
	}
	return "", nil
}

// Patronictl runs the stack's patronictl in the switch namespace against this cluster.
func (c *Cluster) Patronictl(ctx context.Context, args ...string) (string, error) {
	argv := c.command(placement{ns: c.swNS, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.dir, "LANG=C.UTF-8"}},
		c.opts.Stack.Patronictl, append([]string{"-c", filepath.Join(c.dir, "patronictl.yml")}, args...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = hostEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("patronictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Switchover asks Patroni for a switchover (`patronictl switchover --force`) to
// candidate, or to a candidate of Patroni's choosing if candidate is "".
func (c *Cluster) Switchover(ctx context.Context, candidate string) error {
	args := []string{"switchover", "--force"}
	if candidate != "" {
		args = append(args, "--candidate", candidate)
	}
	_, err := c.Patronictl(ctx, append(args, Scope)...)
	return err
}

// VIPAnswer is what a client connected to the VIP found.
type VIPAnswer struct {
	Node       string // whose data directory the server runs
	InRecovery bool   // pg_is_in_recovery()
}

// QueryVIP connects with the stack's psql from the switch namespace to the VIP and asks
// the server which node it is and whether it is in recovery.
func (c *Cluster) QueryVIP(ctx context.Context) (VIPAnswer, error) { return c.QueryAddr(ctx, VIP) }

// QueryAddr is QueryVIP for another address: the read VIP, the IPv6 VIP.
func (c *Cluster) QueryAddr(ctx context.Context, addr string) (VIPAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := c.command(placement{ns: c.swNS, env: []string{"PATH=/usr/bin:/bin", "PGCONNECT_TIMEOUT=3", "HOME=" + c.dir}},
		c.opts.Stack.Psql(), "-X", "-A", "-t", "-q", "-h", addr, "-U", "postgres", "-d", "postgres",
		"-c", "select pg_is_in_recovery(), current_setting('data_directory')")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = hostEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		return VIPAnswer{}, fmt.Errorf("psql to %s: %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
	rec, dataDir, ok := strings.Cut(strings.TrimSpace(string(out)), "|")
	if !ok {
		return VIPAnswer{}, fmt.Errorf("psql to %s: unexpected answer %q", addr, out)
	}
	a := VIPAnswer{InRecovery: rec == "t"}
	for _, n := range c.nodes {
		if dataDir == filepath.Join(n.pgDir, "data") {
			a.Node = n.Name
		}
	}
	if a.Node == "" {
		return a, fmt.Errorf("psql to %s: unknown data directory %q", addr, dataDir)
	}
	return a, nil
}

// streamsFrom reports whether n replicates from leader right now.
func (c *Cluster) streamsFrom(ctx context.Context, n *Node, leader string) bool {
	st, err := c.Node(leader).Status(ctx)
	if err != nil {
		return false
	}
	for _, r := range st.Replication {
		if r.ApplicationName == n.Name && r.State == "streaming" {
			return true
		}
	}
	return false
}
