package cluster

import (
	"fmt"
	"regexp"
	"strings"
)

// patroniConfig renders one node's Patroni configuration (YAML, written by hand: the
// harness uses the standard library only).
func (c *Cluster) patroniConfig(n *Node) string {
	dcs := "etcd3" // Patroni 3.0's etcd v3 API client
	if c.opts.DCSv2 {
		dcs = "etcd" // the v2 API, the only one Debian 12's vip-manager 1.0.2 speaks
	}
	o := c.opts
	return fmt.Sprintf(`scope: %[1]s
name: %[2]s
log:
  level: INFO
restapi:
  listen: %[3]s:8008
  connect_address: %[3]s:8008
%[4]s:
  hosts: %[5]s:2379
bootstrap:
  dcs:
    ttl: %[6]d
    loop_wait: %[7]d
    retry_timeout: %[8]d
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 16MB
  initdb:
  - encoding: UTF8
  - auth: trust
  # 1 MiB WAL segments: every switchover starts a timeline and preallocates segments.
  # Patroni 3.0.2 wants the value as a string; Patroni 4 takes it the same way.
  - wal-segsize: "1"
postgresql:
  # Every address, so that clients reach the server through the VIP too.
  listen: 0.0.0.0:5432
  connect_address: %[3]s:5432
  data_dir: %[9]s/data
  bin_dir: %[10]s
  # The socket directory and pgpass default to paths shared by all nodes of one machine.
  pgpass: %[9]s/pgpass
  use_unix_socket: true
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  authentication:
    superuser:
      username: postgres
      password: e2e
    replication:
      username: replicator
      password: e2e
    rewind:
      username: postgres
      password: e2e
  parameters:
    unix_socket_directories: %[9]s/sock
    shared_buffers: 16MB
  pg_hba:
  - local all all trust
  - local replication all trust
  - host all all 127.0.0.1/32 trust
  # Patroni reads a stopped primary's timeline through a local replication connection
  # before it decides on pg_rewind.
  - host replication all 127.0.0.1/32 trust
  - host all all %[11]s trust
  - host replication all %[11]s trust
`, Scope, n.Name, n.Addr, dcs, SwitchAddr, o.TTL, o.LoopWait, o.RetryTimeout,
		n.pgDir, o.Stack.PGBinDir, Subnet)
}

// patronictlConfig is enough for patronictl to find the cluster.
func (c *Cluster) patronictlConfig() string {
	dcs := "etcd3"
	if c.opts.DCSv2 {
		dcs = "etcd"
	}
	return fmt.Sprintf("scope: %s\n%s:\n  hosts: %s:2379\n", Scope, dcs, SwitchAddr)
}

var ipv4Re = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// NodeKeepalivedConf derives node self's keepalived.conf (0-based) from the configuration
// written for node 0 by swapping the two nodes' addresses wherever they appear outside
// comments: node 0's own address becomes self's, and self's (one of node 0's peers)
// becomes node 0's. Nothing else changes, so every node runs the example as shipped.
func NodeKeepalivedConf(example string, addrs []string, self int) string {
	if self == 0 {
		return example
	}
	swap := map[string]string{addrs[0]: addrs[self], addrs[self]: addrs[0]}
	lines := strings.Split(example, "\n")
	for i, line := range lines {
		code, comment, hasComment := strings.Cut(line, "#")
		code = ipv4Re.ReplaceAllStringFunc(code, func(a string) string {
			if b, ok := swap[a]; ok {
				return b
			}
			return a
		})
		if hasComment {
			code += "#" + comment
		}
		lines[i] = code
	}
	return strings.Join(lines, "\n")
}

// scriptLine matches a vrrp_script's script line; group 1 is the command.
var scriptLine = regexp.MustCompile(`(?m)^\s*script\s+"([^"]*)"`)

// ReplaceScript replaces the command of the (first) vrrp_script's script line.
func ReplaceScript(conf, command string) (string, error) {
	loc := scriptLine.FindStringSubmatchIndex(conf)
	if loc == nil {
		return "", fmt.Errorf("no script \"…\" line in the keepalived configuration")
	}
	return conf[:loc[2]] + command + conf[loc[3]:], nil
}

// ScriptCommand returns the command of the (first) vrrp_script's script line.
func ScriptCommand(conf string) string {
	if m := scriptLine.FindStringSubmatch(conf); m != nil {
		return m[1]
	}
	return ""
}
