package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/internal/doctor"
	"github.com/patroni-vip-check/patroni-vip-check/internal/keepalived"
	"github.com/patroni-vip-check/patroni-vip-check/internal/system"
)

const doctorUsage = `usage: patroni-vip-check doctor [--keepalived-conf FILE] [flags]

Diagnoses this node's keepalived set-up for patroni-vip-check: reads the
keepalived configuration with its includes as keepalived does, looks at the
machine as keepalived will see it, with the watch units that keep its track
files, runs the check, and prints one line per finding: "ok", "warning" or
"failure", each with the fix. Exit status 1 if any failure: something that
puts the VIP on a node that never passed a check, makes the VIP useless,
stops keepalived's VRRP process, or makes keepalived -t refuse the
configuration. Run it as root, as keepalived runs.

  --keepalived-conf FILE    the configuration keepalived reads
                            (default ` + doctor.DefaultKeepalivedConf + `)
  --patroni-config FILE     Patroni's configuration (default: the one found in
                            /etc/patroni/*.yml or /etc/patroni.yml)
  --keepalived-version V    judge by this keepalived (default: the running one's,
                            else the installed one's)
  --config-id ID            keepalived's -i, for "@ID" lines (default: the host
                            name up to its first dot)
  --binary PATH             the check as installed (default /usr/bin/patroni-vip-check)
  -h, --help                print this help
`

// runDoctor is `patroni-vip-check doctor ARGS`: the findings on stdout,
// exit status 1 if any is a failure; a usage error on stderr, 1.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	return doctorCommand(ctx, args, stdout, stderr, system.Host{}, host)
}

func doctorCommand(ctx context.Context, args []string, stdout, stderr io.Writer, sys system.System, hostname string) int {
	opts := doctor.Options{ConfigID: hostname}
	var version string
	set := flag.NewFlagSet("doctor", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&opts.KeepalivedConf, "keepalived-conf", doctor.DefaultKeepalivedConf, "")
	set.StringVar(&opts.PatroniConfig, "patroni-config", "", "")
	set.StringVar(&version, "keepalived-version", "", "")
	set.StringVar(&opts.ConfigID, "config-id", hostname, "")
	set.StringVar(&opts.InstalledBinary, "binary", "", "")
	help := set.Bool("help", false, "")
	set.BoolVar(help, "h", false, "")
	err := set.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp) || err == nil && *help:
		fmt.Fprint(stdout, doctorUsage)
		return 0
	case err != nil:
		return subcommandError(stderr, fmt.Errorf("doctor: %w (see --help)", subcommandFlagError(err)))
	case set.NArg() > 0:
		return subcommandError(stderr, fmt.Errorf("doctor: unexpected argument %q (see --help)", set.Arg(0)))
	}
	if version != "" {
		if opts.KeepalivedVersion, err = keepalived.ParseVersion(version); err != nil {
			return subcommandError(stderr, fmt.Errorf("doctor: --keepalived-version: %w", err))
		}
	}
	if !strings.HasPrefix(opts.KeepalivedConf, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return subcommandError(stderr, fmt.Errorf("doctor: %w", err))
		}
		opts.KeepalivedConf = wd + "/" + opts.KeepalivedConf
	}
	findings := doctor.Run(ctx, sys, opts)
	var b strings.Builder
	for _, f := range findings {
		b.WriteString(f.String() + "\n")
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return subcommandError(stderr, fmt.Errorf("doctor: writing the findings: %w", err))
	}
	if doctor.Failed(findings) {
		return 1
	}
	return 0
}
