package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Load is a full CPU with clients writing through the VIP.
type Load struct {
	For     time.Duration // how long the clients write (whole seconds: pgbench -T)
	Clients int           // pgbench clients, each on one connection to the VIP
	// Busy is how many processes that only spin run beside them, in the primary's
	// namespace. They load the whole machine, as they would the primary's host: every
	// node of the lab shares the same cores.
	Busy int
}

// LoadResult is what the clients saw.
type LoadResult struct {
	Transactions int // committed
	Failed       int // pgbench's "failed transactions"
	Exit         int // pgbench's exit status: 0, or 2 when a client aborted
	// Errors are pgbench's lines about a client that aborted or an error it met.
	Errors []string
	Output string
}

// LoadPrimary loads the machine (see Load) while pgbench writes through the VIP; res,
// if not nil, receives what pgbench saw. The primary should not change.
func LoadPrimary(l Load, res *LoadResult) Trigger {
	return Trigger{Name: fmt.Sprintf("CPU load %v", l.For), Timeout: 30 * time.Second, SamePrimaryOK: true,
		Fire: func(ctx context.Context, c *Cluster, p *Node) error {
			r, err := c.Load(ctx, p, l)
			if res != nil {
				*res = r
			}
			return err
		}}
}

// Load runs l with its busy loops in node p's namespace; it returns once pgbench is done
// and the busy loops are gone. An error means the load could not be run; what the
// clients met is in the result.
func (c *Cluster) Load(ctx context.Context, p *Node, l Load) (LoadResult, error) {
	// pgbench's tables, through the VIP (scale 1: 100 000 accounts).
	if _, err := c.pgbench(ctx, "-i", "-q", "-s", "1"); err != nil {
		return LoadResult{}, err
	}
	var busy []*proc
	defer func() {
		for _, b := range busy {
			_ = b.signal(syscall.SIGKILL)
			_ = b.wait(context.Background(), 5*time.Second)
		}
	}()
	for i := 0; i < l.Busy; i++ {
		b, err := startProc(fmt.Sprintf("busy loop %d", i+1), filepath.Join(c.logDir, "load.log"),
			[]string{"ip", "netns", "exec", p.NS, "sh", "-c", "while :; do :; done"})
		if err != nil {
			return LoadResult{}, err
		}
		busy = append(busy, b)
	}
	// -N: the simple-update script, which spends the time on the CPU rather than waiting
	// for the one row of pgbench_branches that every tpcb-like transaction updates.
	secs := max(1, int(l.For.Round(time.Second)/time.Second))
	out, err := c.pgbench(ctx, "-n", "-N", "-c", strconv.Itoa(l.Clients), "-j", "2", "-T", strconv.Itoa(secs))
	r := parsePgbench(out)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	default:
		return r, err
	}
	return r, nil
}

// pgbench runs the stack's pgbench from the switch namespace against the VIP.
func (c *Cluster) pgbench(ctx context.Context, args ...string) (string, error) {
	argv := c.command(placement{ns: c.swNS, env: []string{"PATH=/usr/bin:/bin", "PGCONNECT_TIMEOUT=3", "HOME=" + c.dir}},
		c.opts.Stack.PGBinDir+"/pgbench", append([]string{"-h", VIP, "-U", "postgres"}, append(args, "postgres")...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = hostEnv
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if f, ferr := os.OpenFile(filepath.Join(c.logDir, "pgbench.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "=== %s pgbench %s\n%s", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "), out.String())
		f.Close()
	}
	if err != nil && len(args) > 0 && args[0] == "-i" {
		return out.String(), fmt.Errorf("pgbench %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), err
}

var (
	pgbenchDone   = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgbenchFailed = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	pgbenchError  = regexp.MustCompile(`(?m)^.*(aborted|error|ERROR|FATAL).*$`)
)

// parsePgbench reads pgbench's summary (PostgreSQL 15 and later print the count of
// failed transactions) and its lines about errors.
func parsePgbench(out string) LoadResult {
	r := LoadResult{Output: out}
	if m := pgbenchDone.FindStringSubmatch(out); m != nil {
		r.Transactions, _ = strconv.Atoi(m[1])
	}
	if m := pgbenchFailed.FindStringSubmatch(out); m != nil {
		r.Failed, _ = strconv.Atoi(m[1])
	}
	r.Errors = pgbenchError.FindAllString(out, 20)
	return r
}
