package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The machine is shared: a measurement taken while other work loads it says more about
// that work than about the set-up. Before each set-up the bench waits until the
// 1-minute load average is below -max-load, then records the load while the set-up
// runs, and every table says what it was.

// loadAvg is the 1-minute load average (/proc/loadavg's first field).
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// loadRecord is the load while one set-up ran: at its start (after the wait) and the
// highest seen since, sampled every few seconds.
type loadRecord struct {
	mu         sync.Mutex
	start, max float64
	waited     time.Duration
	stop       chan struct{}
	done       chan struct{}
}

// quiet waits until the load is below limit (no wait for limit 0), then records it until
// end. Waiting is said on stderr, once a minute.
func quiet(ctx context.Context, limit float64, what string) (*loadRecord, error) {
	t0 := time.Now()
	said := time.Time{}
	for {
		l, err := loadAvg()
		if err != nil {
			return nil, err
		}
		if limit <= 0 || l < limit {
			r := &loadRecord{start: l, max: l, waited: time.Since(t0), stop: make(chan struct{}), done: make(chan struct{})}
			go r.watch()
			return r, nil
		}
		if time.Since(said) >= time.Minute {
			fmt.Fprintf(os.Stderr, "%s bench: load %.2f, waiting for less than %.2f before %s\n", time.Now().Format("15:04:05"), l, limit, what)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (r *loadRecord) watch() {
	defer close(r.done)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if l, err := loadAvg(); err == nil {
				r.mu.Lock()
				r.max = max(r.max, l)
				r.mu.Unlock()
			}
		}
	}
}

// end stops recording and says what the load was: "0.84 → max 1.73".
func (r *loadRecord) end() string {
	close(r.stop)
	<-r.done
	if l, err := loadAvg(); err == nil {
		r.max = max(r.max, l)
	}
	return fmt.Sprintf("%.2f → max %.2f", r.start, r.max)
}
