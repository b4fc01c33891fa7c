// Command patroni-vip-check-setup holds the commands a person runs once to
// set a node up: `patroni-vip-check keepalived-conf` writes this node's
// keepalived.conf, and `patroni-vip-check doctor` checks a node's set-up.
// patroni-vip-check runs this binary for them (see its main.go), so that
// the binary keepalived starts every second carries none of their code:
// the keepalived parser, the YAML library, the generator and the doctor.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: a subcommand, its exit status 0 or 1.
func run(args []string, stdout, stderr io.Writer) int {
	// A person's Ctrl-C or a SIGTERM ends either command with status 1;
	// neither leaves anything half done (each only reads, and prints).
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(1)
	}()
	if len(args) > 0 {
		switch args[0] {
		case "keepalived-conf":
			return runKeepalivedConf(args[1:], stdout, stderr)
		case "doctor":
			return runDoctor(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, "usage: patroni-vip-check keepalived-conf --vip ADDR/PREFIX [flags]\n       patroni-vip-check doctor [--keepalived-conf FILE] [flags]\n")
	return 1
}
