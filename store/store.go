// Package store holds facts: the domain types, the Store contract every
// backend honours, and what the backends share (validation, JSON encoding,
// idempotency records). The backends live in packages of their own
// (store/memory, store/bolt, store/redis), and store/storetest holds the
// contract suite each of them passes.
//
// A store assigns each fact its seq, id and creation time when it commits, and
// reports every committed fact, in seq order and exactly once, to the
// OnAppend function it was opened with. That callback is how live delivery
// learns about facts, whichever instance committed them.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Fact is one stored fact, as every endpoint returns it.
type Fact struct {
	ID        string    `json:"id"`
	Seq       uint64    `json:"seq"`
	Info      string    `json:"info"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// Draft is a fact as a client proposes it, before the store commits it.
type Draft struct {
	Info   string
	Source string
}

// IdempotencyTTL is how long an idempotency key is remembered.
const IdempotencyTTL = 24 * time.Hour

// Idempotency ties an append to a client-chosen key. Hash identifies the
// request body, so that the same key sent with another body is refused.
type Idempotency struct {
	Key  string
	Hash [32]byte
}

// AppendRequest is one all-or-nothing append of one or more drafts.
type AppendRequest struct {
	Drafts []Draft
	// Batch records whether the client sent an array, so that a replay of
	// the request answers in the same shape.
	Batch bool
	// Idem, when set, makes the append idempotent under Idem.Key.
	Idem *Idempotency
}

// AppendResult is what an append committed, or, for a replayed idempotency
// key, what the first request with that key committed.
type AppendResult struct {
	Facts    []Fact
	Batch    bool
	Replayed bool
}

// Stats describes a store's content.
type Stats struct {
	// Count is the number of facts kept.
	Count uint64
	// FirstSeq is the seq of the oldest fact kept, 0 while none is.
	FirstSeq uint64
	// LastSeq is the highest seq ever assigned, kept or not.
	LastSeq uint64
}

// Store is the contract every backend implements. All methods are safe for
// concurrent use.
type Store interface {
	// Append commits the drafts atomically and returns only once they are
	// durable (for a durable backend). It assigns seq, id and created_at.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// Range returns up to limit facts with after < seq <= upTo, ascending.
	// upTo == 0 means no upper bound.
	Range(ctx context.Context, after, upTo uint64, limit int) ([]Fact, error)
	// Before returns up to limit facts with seq < before, descending.
	// before == 0 means from the newest.
	Before(ctx context.Context, before uint64, limit int) ([]Fact, error)
	// Get returns the fact with the given id, or ErrNotFound.
	Get(ctx context.Context, id string) (Fact, error)
	// Stats reports the number of facts kept, the first seq kept and the
	// last seq assigned.
	Stats(ctx context.Context) (Stats, error)
	// Delete removes the fact with the given id, and its id entry, for
	// good, and returns it; ErrNotFound when no fact has that id. Every
	// store sharing the data reports it to its OnDelete.
	Delete(ctx context.Context, id string) (Fact, error)
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close waits for in-flight appends and releases the store.
	Close() error
}

// Options configure a store when it is opened.
type Options struct {
	// OnAppend is called with committed facts, in seq order, each fact
	// exactly once, never concurrently with itself. It must not block.
	OnAppend func([]Fact)
	// OnReset is called, in OnAppend's sequence, when the facts reported
	// so far are gone: a Redis restarted without its data hands out seqs
	// from 1 again. Whoever streams those facts must start over; OnAppend
	// then goes on from the new head. Only the Redis store calls it.
	OnReset func()
	// OnDelete is called with each deleted fact, in OnAppend's sequence
	// (after the fact itself was reported, if it was), on every instance
	// sharing the store. It must not block.
	OnDelete func(Fact)
	// OnRemove is told how many facts this instance removed and why, for
	// metrics: facts removed by retention are not reported one by one.
	OnRemove func(reason RemovalReason, n int)
	// KeyPrefix namespaces the keys of a shared store (Redis).
	KeyPrefix string

	// RetentionFacts, when above 0, is how many facts are kept: older ones
	// are removed as newer ones are committed.
	RetentionFacts int
	// RetentionAge, when above 0, is how long a fact is kept: older ones
	// are removed by a sweep every SweepInterval and when the store opens.
	RetentionAge time.Duration
	// SweepInterval is how often the age sweep runs; 0 means
	// DefaultSweepInterval. Tests shorten it.
	SweepInterval time.Duration
	// Now is the store's clock (created_at, expiry); nil means time.Now.
	// Tests give a fake one.
	Now func() time.Time
}

// DefaultSweepInterval is how often facts past RetentionAge are looked
// for: often enough that they go within a minute.
const DefaultSweepInterval = 30 * time.Second

// RemovalReason says why facts were removed.
type RemovalReason string

// The reasons a fact is removed.
const (
	RemovedRetention RemovalReason = "retention"
	RemovedDeleted   RemovalReason = "deleted"
)

// Clock returns the clock the options name: Now, or time.Now.
func (o Options) Clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Interval returns how often the age sweep runs.
func (o Options) Interval() time.Duration {
	if o.SweepInterval > 0 {
		return o.SweepInterval
	}
	return DefaultSweepInterval
}

// Removed reports n removals for reason to OnRemove, if set and n > 0.
func (o Options) Removed(reason RemovalReason, n int) {
	if o.OnRemove != nil && n > 0 {
		o.OnRemove(reason, n)
	}
}

// Expired reports whether a fact created at createdAt is past the
// retention age at now.
func (o Options) Expired(createdAt, now time.Time) bool {
	return o.RetentionAge > 0 && now.Sub(createdAt) >= o.RetentionAge
}

// Errors every store reports the same way, so callers can map them with
// errors.Is.
var (
	// ErrNotFound means no fact has the requested id.
	ErrNotFound = errors.New("fact not found")
	// ErrIdempotencyMismatch means the key was used before with another body.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request body")
	// ErrUnavailable means the store cannot take the request now.
	ErrUnavailable = errors.New("store unavailable")
	// ErrOutcomeUnknown means a write was sent and its answer lost (a
	// timeout, a dropped connection): it may have been stored. It comes
	// with ErrUnavailable; a retry with the same idempotency key is safe.
	ErrOutcomeUnknown = errors.New("the write was sent but not answered; it may have been stored")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store closed")
)

// TooLargeError means a request's facts take more room than the store
// takes in one write; nothing of it was stored. Fewer facts per request
// fit.
type TooLargeError struct {
	Size, Max int // bytes the request takes, and the most one write takes
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the request's facts take %d bytes in the store, more than the %d it takes in one write", e.Size, e.Max)
}
