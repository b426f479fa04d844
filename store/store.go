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
	Count   uint64
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
	// Stats reports the number of facts and the last seq.
	Stats(ctx context.Context) (Stats, error)
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
	// KeyPrefix namespaces the keys of a shared store (Redis).
	KeyPrefix string
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
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store closed")
)
