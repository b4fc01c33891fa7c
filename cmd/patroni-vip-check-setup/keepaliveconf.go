package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/check"
	"github.com/patroni-vip-check/patroni-vip-check/internal/sink"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
	"github.com/patroni-vip-check/patroni-vip-check/internal/vipconf"
)

const keepalivedConfUsage = `usage: patroni-vip-check keepalived-conf --vip ADDR/PREFIX [flags]

Prints a complete, commented keepalived.conf for this node: the VIP follows
the Patroni primary, gated by patroni-vip-check, and a read VIP, if asked,
a replica within a lag bound. What it needs is read from Patroni's
configuration (its REST API's address and TLS), Patroni's /cluster answer
(the peers), this machine's interfaces and keepalived's version; flags
override each.

  --vip ADDR/PREFIX        the virtual IP with the prefix of its subnet (required)
  --replica-vip ADDR/PREFIX
                           a read VIP, held by one replica that Patroni's
                           /replica?lag= passes, by none while none does
  --max-lag SIZE           the read VIP's bound on a replica's lag, in Patroni's
                           units: bytes, kB, MB, GB, TB (default ` + vipconf.DefaultMaxLag + `)
  --instance NAME          name the cluster, when several share these hosts: its
                           keepalived names, track files and watch units carry
                           NAME (patroni-vip-check@NAME), and it picks the
                           Patroni configuration whose scope or file is NAME
  --mode MODE              oneshot: keepalived runs the check as a vrrp_script;
                           watch: patroni-vip-check.service keeps a file that
                           keepalived tracks (default ` + string(vipconf.RecommendedMode) + `)
  --patroni-config FILE    Patroni's configuration (default: the one found in
                           /etc/patroni/*.yml or /etc/patroni.yml)
  --node ADDR              this node's address (default: restapi.connect_address)
  --peer ADDR              another node's address, once for each (default: the
                           members of Patroni's /cluster)
  --interface NAME         the interface for VRRP and the VIP (default: the one
                           that holds the node's address)
  --label LABEL            the VIP's label, "" for none (default: INTERFACE:1)
  --router-id N            virtual_router_id, the same on every node (default:
                           the VIP's last byte)
  --replica-router-id N    the read VIP's (default: its last byte)
  --priority N             the priority, the same on every node (default 100)
  --url URL                what the check asks (default: the node's /primary);
                           no credentials in it: see --user
  --pgdata DIR             watch: PostgreSQL's data directory, whose files wake
                           the watch (default: Patroni's postgresql.data_dir)
  --cacert FILE, --cert FILE, --key FILE, --servername NAME, --insecure
                           the check's TLS flags (default: from Patroni's restapi
                           and ctl settings)
  --user USER, --password-file FILE
                           the check's basic auth; the password is the file's
                           first line, never written into the configuration
  --keepalived-version V   the keepalived it is for (default: keepalived --version)
  --keepalived-conf FILE   keepalived's present configuration, whose other
                           instances' virtual_router_ids are refused (default
                           ` + vipconf.DefaultKeepalivedConf + `; "" for none)
  -h, --help               print this help
`

// runKeepalivedConf is `patroni-vip-check keepalived-conf ARGS`: the
// configuration on stdout and exit status 0, or one error line on
// stderr and 1.
func runKeepalivedConf(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return keepalivedConf(ctx, args, stdout, stderr, system.Host{})
}

func keepalivedConf(ctx context.Context, args []string, stdout, stderr io.Writer, sys system.System) int {
	in, help, err := parseKeepalivedConfArgs(args)
	if err != nil {
		return subcommandError(stderr, fmt.Errorf("keepalived-conf: %w (see --help)", err))
	}
	if help {
		fmt.Fprint(stdout, keepalivedConfUsage)
		return 0
	}
	setup, warnings, err := vipconf.Gather(ctx, sys, in)
	if err != nil {
		return subcommandError(stderr, err)
	}
	out, err := vipconf.Render(setup)
	if err != nil {
		return subcommandError(stderr, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "patroni-vip-check: warning: %s\n", oneLine(w))
	}
	if _, err := stdout.Write(out); err != nil {
		return subcommandError(stderr, fmt.Errorf("writing the configuration: %w", err))
	}
	return 0
}

func parseKeepalivedConfArgs(args []string) (vipconf.Input, bool, error) {
	var in vipconf.Input
	var mode, label, cacert, cert, key, servername, pgdata, kaconf string
	set := flag.NewFlagSet("keepalived-conf", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&in.VIP, "vip", "", "")
	set.StringVar(&mode, "mode", string(vipconf.RecommendedMode), "")
	set.StringVar(&in.PatroniConfig, "patroni-config", "", "")
	set.StringVar(&in.Node, "node", "", "")
	set.Func("peer", "", func(s string) error { in.Peers = append(in.Peers, s); return nil })
	set.StringVar(&in.Interface, "interface", "", "")
	set.StringVar(&label, "label", "", "")
	set.IntVar(&in.RouterID, "router-id", 0, "")
	set.IntVar(&in.Priority, "priority", 100, "")
	set.StringVar(&in.URL, "url", "", "")
	set.StringVar(&pgdata, "pgdata", "", "")
	set.StringVar(&cacert, "cacert", "", "")
	set.StringVar(&cert, "cert", "", "")
	set.StringVar(&key, "key", "", "")
	set.StringVar(&servername, "servername", "", "")
	set.BoolVar(&in.Insecure, "insecure", false, "")
	set.StringVar(&in.Instance, "instance", "", "")
	set.StringVar(&in.ReadVIP, "replica-vip", "", "")
	set.StringVar(&in.MaxLag, "max-lag", "", "")
	set.IntVar(&in.ReadRouterID, "replica-router-id", 0, "")
	set.StringVar(&kaconf, "keepalived-conf", "", "")
	set.StringVar(&in.User, "user", "", "")
	set.StringVar(&in.PasswordFile, "password-file", "", "")
	set.StringVar(&in.KeepalivedVersion, "keepalived-version", "", "")
	help := set.Bool("help", false, "")
	set.BoolVar(help, "h", false, "")
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return in, true, nil
		}
		return in, false, subcommandFlagError(err)
	}
	if *help {
		return in, true, nil
	}
	if set.NArg() > 0 {
		return in, false, fmt.Errorf("unexpected argument %q", set.Arg(0))
	}
	in.Mode = vipconf.Mode(mode)
	var err error
	set.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "label":
			in.Label = &label
		case "cacert":
			in.CACert = &cacert
		case "cert":
			in.Cert = &cert
		case "key":
			in.Key = &key
		case "servername":
			in.ServerName = &servername
		case "pgdata":
			in.PGData = &pgdata
		case "router-id":
			if in.RouterID == 0 {
				in.RouterID = -1 // given as 0: invalid, not "derive it"
			}
		case "replica-router-id":
			if in.ReadRouterID == 0 {
				in.ReadRouterID = -1
			}
		case "keepalived-conf":
			in.KeepalivedConf = &kaconf
		case "instance":
			if in.Instance == "" {
				err = errors.New("--instance \"\": name the cluster")
			}
		}
	})
	return in, false, err
}

// subcommandFlagError rewords the flag package's errors: "-x" becomes "--x".
func subcommandFlagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown flag --%s", strings.TrimPrefix(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s needs a value", strings.TrimPrefix(name, "-"))
	}
	return errors.New(strings.ReplaceAll(msg, " for flag -", " for --"))
}

// subcommandError writes err as the command's one error line; 1.
func subcommandError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "patroni-vip-check: error: %s\n", oneLine(err.Error()))
	return 1
}

// oneLine makes a message of keepalived-conf or doctor, which may quote
// Patroni's configuration and answers or a URL, safe for one line: its
// whitespace folded, a URL's password hidden, control characters escaped
// and the length bounded, as in the check's own lines.
func oneLine(s string) string {
	return sink.Clean(check.RedactText(strings.Join(strings.Fields(s), " ")), sink.MaxMessage)
}
