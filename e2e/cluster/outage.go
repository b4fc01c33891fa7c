package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The outages operators ask about: the DCS down (with and without Patroni's
// failsafe_mode), the primary alone cut from the DCS, and a primary under a full CPU.
// Patroni frozen on the primary is PausePrimary.

// StopDCS takes the DCS down: etcd is killed (SIGKILL), stays down for d, and is started
// again on its data. etcd gives every lease its full ttl again when it starts, so the
// leader key Patroni last wrote survives the outage.
func StopDCS(d time.Duration) Trigger {
	return Trigger{Name: fmt.Sprintf("DCS down %v", d), Timeout: 60 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, _ *Node) error {
			if err := c.StopEtcd(ctx); err != nil {
				return err
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			return c.StartEtcd(ctx)
		}}
}

// StopEtcd kills the DCS and waits for it to be gone.
func (c *Cluster) StopEtcd(ctx context.Context) error {
	if c.etcd == nil || !c.etcd.running() {
		return nil
	}
	if err := c.etcd.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return c.etcd.wait(ctx, 10*time.Second)
}

// StartEtcd starts the DCS again, on the data it had, if it is not running.
func (c *Cluster) StartEtcd(ctx context.Context) error {
	if c.etcd != nil && c.etcd.running() {
		return nil
	}
	return c.startEtcd(ctx)
}

// SetFailsafe turns Patroni's failsafe_mode on or off (patronictl edit-config) and
// waits until every member has taken the change: each member's REST API shows it in
// the configuration it last read from the DCS and has read the DCS again since, and, to
// turn it on, the leader has written the /failsafe key that its POST /failsafe calls
// need (patroni/ha.py, check_failsafe_topology).
func (c *Cluster) SetFailsafe(ctx context.Context, on bool) error {
	if _, err := c.Patronictl(ctx, "edit-config", "--force", "--set", fmt.Sprintf("failsafe_mode=%t", on), Scope); err != nil {
		return err
	}
	seen := map[string]int64{} // member → the dcs_last_seen at which it first showed the change
	return waitFor(ctx, fmt.Sprintf("failsafe_mode %t on every member", on), 30*time.Second, 250*time.Millisecond, func() (bool, string, error) {
		for _, n := range c.nodes {
			var conf struct {
				Failsafe *bool `json:"failsafe_mode"`
			}
			if err := c.getJSON(ctx, "http://"+n.Addr+":8008/config", &conf); err != nil {
				return false, n.Name + ": " + err.Error(), nil
			}
			if (conf.Failsafe != nil && *conf.Failsafe) != on {
				return false, n.Name + " has not read the change yet", nil
			}
			var st struct {
				LastSeen int64 `json:"dcs_last_seen"`
			}
			if err := c.getJSON(ctx, "http://"+n.Addr+":8008/patroni", &st); err != nil {
				return false, n.Name + ": " + err.Error(), nil
			}
			// dcs_last_seen counts whole seconds: two seconds later, the member has run a
			// whole loop (loop_wait 1 s) with the new configuration.
			if first, ok := seen[n.Name]; !ok {
				seen[n.Name] = st.LastSeen
				return false, n.Name + " read the change; waiting for its next loop", nil
			} else if st.LastSeen < first+2 {
				return false, n.Name + " has not run a loop since it read the change", nil
			}
		}
		if !on {
			return true, "", nil
		}
		leader, err := c.Leader(ctx)
		if err != nil || leader == "" {
			return false, fmt.Sprintf("leader %q (%v)", leader, err), nil
		}
		var fs map[string]string
		if err := c.getJSON(ctx, "http://"+c.Node(leader).Addr+":8008/failsafe", &fs); err != nil {
			return false, "GET /failsafe on the leader: " + err.Error(), nil
		}
		for _, n := range c.nodes {
			if fs[n.Name] == "" {
				return false, fmt.Sprintf("the /failsafe key the leader read lacks %s: %v", n.Name, fs), nil
			}
		}
		return true, "", nil
	})
}

// CutPrimaryFromDCS cuts the primary from the DCS alone: every packet between it and
// etcd's port is dropped, both ways, as a partition drops them; everything else (its
// replicas, its clients, keepalived's adverts) goes on. It stays cut until Restore.
func CutPrimaryFromDCS() Trigger {
	return Trigger{Name: "cut from the DCS", Timeout: 40 * time.Second, WaitsForTTL: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error { return p.CutFromDCS(ctx) }}
}

// dcsCutTable is the nftables table that cuts a node from the DCS, in its own
// namespace.
const dcsCutTable = "pvc-e2e-dcs-cut"

// CutFromDCS drops the node's traffic with etcd (see CutPrimaryFromDCS); Reconnect
// undoes it.
func (n *Node) CutFromDCS(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	rules := fmt.Sprintf(`table inet %[1]s {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr %[2]s tcp dport 2379 drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %[2]s tcp sport 2379 drop
	}
}
`, dcsCutTable, SwitchAddr)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	cmd.Env = hostEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: nft: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	n.dcsCut = true
	return nil
}

// reconnectDCS undoes CutFromDCS; called with n.mu held.
func (n *Node) reconnectDCS(ctx context.Context) error {
	if !n.dcsCut {
		return nil
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.NS, "nft", "delete", "table", "inet", dcsCutTable)
	cmd.Env = hostEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: nft: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	n.dcsCut = false
	return nil
}
