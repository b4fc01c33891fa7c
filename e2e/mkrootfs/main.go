// Command mkrootfs builds, or finds in the cache, the root filesystem of a stack that the
// end-to-end suite runs from a Debian release other than the host's, and prints its
// directory: `make rootfs` runs it. The suite builds the root itself when it needs one;
// this command lets a person build it ahead, or look inside. Root, debootstrap.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/patroni-vip-check/patroni-vip-check/e2e/rootfs"
)

func main() {
	cache := flag.String("cache", rootfs.DefaultCacheDir, "where the roots are kept")
	mirror := flag.String("mirror", "", "Debian mirror (default: the one the host's apt uses, else "+rootfs.FallbackMirror+")")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mkrootfs [flags] STACK...   (debian13, sid)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mkrootfs: needs root (debootstrap, chroot, namespaces)")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	for _, name := range flag.Args() {
		spec, err := rootfs.Lookup(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkrootfs:", err)
			os.Exit(1)
		}
		t := time.Now()
		r, err := rootfs.Ensure(ctx, spec, rootfs.Options{CacheDir: *cache, Mirror: *mirror, Logf: logf})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkrootfs:", err)
			os.Exit(1)
		}
		how := "cached"
		if r.Built {
			how = fmt.Sprintf("built in %.0fs", r.BuildTime.Seconds())
		}
		logf("%s: %s (%s, %.1fs in all)", name, r.Dir, how, time.Since(t).Seconds())
		fmt.Println(r.Dir)
		r.Close()
	}
}
