// Package readiness tells whether the store accepts writes now. It learns
// from a small write probe run at an interval and from every publish's
// outcome, so that /readyz turns 503 when writes start failing and 200
// again when they work, without a restart and without waiting for a
// client to publish.
package readiness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"factstream/store"
)

// DefaultInterval is how often the store's writes are probed.
const DefaultInterval = 2 * time.Second

// probeTimeout bounds one probe; a probe that takes longer is a failure.
const probeTimeout = 2 * time.Second

// ErrRefused wraps every error WriteErr returns.
var ErrRefused = errors.New("the store refuses writes")

// Refusal is why the store refuses writes: a short cause a person acts on
// ("disk full") and the error behind it.
type Refusal struct {
	Cause string
	Err   error
}

func (r *Refusal) Error() string { return fmt.Sprintf("%s: %s: %v", ErrRefused, r.Cause, r.Err) }

// Unwrap returns ErrRefused and the error behind the refusal.
func (r *Refusal) Unwrap() []error { return []error{ErrRefused, r.Err} }

// Checker holds the store's write readiness. Create it with New and run it
// with Run; its methods are safe for concurrent use.
type Checker struct {
	probe    store.WriteProber // nil: the store always accepts writes
	kind     string
	interval time.Duration
	log      *slog.Logger

	mu sync.Mutex
	// probeErr is the last probe's failure; publishErr the last publish's,
	// cleared by a later success of either. A failing probe wins over a
	// publish that succeeded: a nearly full disk still takes a small fact.
	probeErr, publishErr error
	refused              bool // what was last logged
}

// New returns a checker for a store of the given kind ("bolt", "redis"):
// it probes st if st is a store.WriteProber.
func New(st any, kind string, interval time.Duration, log *slog.Logger) *Checker {
	if interval <= 0 {
		interval = DefaultInterval
	}
	p, _ := st.(store.WriteProber)
	return &Checker{probe: p, kind: kind, interval: interval, log: log}
}

// Run probes at once and then every interval until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	if c.probe == nil {
		return
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := c.probe.ProbeWrite(pctx)
		cancel()
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		c.mu.Lock()
		c.probeErr = err
		if err == nil {
			c.publishErr = nil
		}
		c.changed()
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Observe learns from a publish's outcome: a store that failed it
// (store.ErrUnavailable) refuses writes until a publish or a probe
// succeeds. Other errors (a bad request) say nothing about the store.
func (c *Checker) Observe(err error) {
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.publishErr = err
	c.changed()
}

// WriteErr is nil while the store accepts writes, and a *Refusal naming
// the cause while it does not.
func (c *Checker) WriteErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current()
}

func (c *Checker) current() error {
	err := c.probeErr
	if err == nil {
		err = c.publishErr
	}
	if err == nil {
		return nil
	}
	return &Refusal{Cause: Cause(c.kind, err), Err: err}
}

// changed logs a change of state, once; c.mu is held.
func (c *Checker) changed() {
	err := c.current()
	switch refused := err != nil; {
	case refused && !c.refused:
		c.log.Warn("the store refuses writes; /readyz answers 503 until it accepts them", "store", c.kind, "error", err)
	case !refused && c.refused:
		c.log.Info("the store accepts writes again", "store", c.kind)
	}
	c.refused = err != nil
}
