package readiness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"factstream/store"
)

type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}

func TestCauseNamesWhatAnOperatorFixes(t *testing.T) {
	unavailable := func(err error) error { return fmt.Errorf("%w: commit: %w", store.ErrUnavailable, err) }
	cases := []struct {
		name, kind string
		err        error
		want       string
	}{
		{"NoSpace", "bolt", unavailable(&os.PathError{Op: "write", Path: "facts.db", Err: syscall.ENOSPC}), "disk full"},
		{"FileTooLarge", "bolt", unavailable(syscall.EFBIG), "disk full"},
		{"Immutable", "bolt", unavailable(syscall.EPERM), "permission denied"},
		{"ReadOnlyFS", "bolt", unavailable(syscall.EROFS), "permission denied"},
		{"RedisOOM", "redis", unavailable(redisReply("OOM command not allowed when used memory > 'maxmemory'.")), "Redis out of memory"},
		{"RedisRefused", "redis", unavailable(syscall.ECONNREFUSED), "Redis unreachable"},
		{"RedisEOF", "redis", unavailable(io.EOF), "Redis unreachable"},
		{"Other", "bolt", unavailable(errors.New("bad page")), "bolt store error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cause(tc.kind, tc.err); got != tc.want {
				t.Fatalf("Cause(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

type probeFunc func(context.Context) error

func (f probeFunc) ProbeWrite(ctx context.Context) error { return f(ctx) }

func TestCheckerFollowsProbesAndPublishes(t *testing.T) {
	full := fmt.Errorf("%w: %w", store.ErrUnavailable, syscall.ENOSPC)
	probes, calls := make(chan error), make(chan struct{})
	st := probeFunc(func(ctx context.Context) error {
		select {
		case calls <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-probes:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := New(st, "bolt", 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The next probe starts only once the last one's outcome is recorded.
	<-calls
	probe := func(err error) { probes <- err; <-calls }

	probe(nil)
	if err := c.WriteErr(); err != nil {
		t.Fatalf("after a good probe: %v", err)
	}
	c.Observe(full)
	var r *Refusal
	if err := c.WriteErr(); !errors.As(err, &r) || r.Cause != "disk full" {
		t.Fatalf("after a failed publish: %v, want a refusal for a full disk", err)
	}
	c.Observe(store.ErrIdempotencyMismatch) // says nothing about the store
	if c.WriteErr() == nil {
		t.Fatal("a client's mistake cleared the refusal")
	}
	probe(nil)
	if err := c.WriteErr(); err != nil {
		t.Fatalf("a good probe did not clear a failed publish: %v", err)
	}
	probe(full)
	c.Observe(nil)
	if c.WriteErr() == nil {
		t.Fatal("a publish that fit hid a failing probe")
	}
}
