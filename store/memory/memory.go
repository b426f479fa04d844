// Package memory is the in-process store: fast, and gone on exit.
package memory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"factstream/store"
)

// Store keeps facts in process memory. It is fast and forgets everything on
// exit; use it for tests, demos and benchmarks.
type Store struct {
	onAppend func([]store.Fact)

	mu    sync.RWMutex
	facts factLog
	// byID is nil while ids increase with seq, which UUIDv7 ids made in
	// one process do: Get then searches facts. Built in full the first
	// time an id breaks that order, and kept from then on.
	byID     map[string]uint64
	idem     map[string]store.IdempotencyRecord
	idemFIFO []string // keys in insertion order, for expiry
	closed   bool
}

// New returns an empty in-memory store.
func New(opts store.Options) *Store {
	return &Store{
		onAppend: opts.OnAppend,
		idem:     make(map[string]store.IdempotencyRecord),
	}
}

// Append implements store.Store.
func (m *Store) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	if len(req.Drafts) == 0 {
		return store.AppendResult{}, fmt.Errorf("append: no drafts")
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.AppendResult{}, store.ErrClosed
	}
	m.expireIdem(now)
	if req.Idem != nil {
		rec, found := m.idem[req.Idem.Key]
		replay, err := store.ReplayOf(req, rec, found, now)
		if err != nil {
			return store.AppendResult{}, err
		}
		if replay {
			facts := m.facts.copyRange(rec.First-1, rec.Last)
			return store.AppendResult{Facts: facts, Batch: rec.Batch, Replayed: true}, nil
		}
	}
	facts, err := store.NewFacts(req, m.facts.len(), now)
	if err != nil {
		return store.AppendResult{}, err
	}
	for _, f := range facts {
		m.index(f)
		m.facts.add(f)
	}
	if req.Idem != nil {
		m.idem[req.Idem.Key] = store.NewIdempotencyRecord(req, facts, now)
		m.idemFIFO = append(m.idemFIFO, req.Idem.Key)
	}
	// Still under the lock, so listeners see appends in seq order.
	if m.onAppend != nil {
		m.onAppend(facts)
	}
	return store.AppendResult{Facts: facts, Batch: req.Batch}, nil
}

func (m *Store) expireIdem(now time.Time) {
	for len(m.idemFIFO) > 0 {
		key := m.idemFIFO[0]
		rec, ok := m.idem[key]
		if ok && !rec.Expired(now) {
			return
		}
		if ok {
			delete(m.idem, key)
		}
		m.idemFIFO = m.idemFIFO[1:]
	}
}

// Range implements store.Store.
func (m *Store) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	end := m.facts.len()
	if upTo != 0 && upTo < end {
		end = upTo
	}
	if after >= end || limit <= 0 {
		return nil, nil
	}
	if end-after > uint64(limit) {
		end = after + uint64(limit)
	}
	return m.facts.copyRange(after, end), nil
}

// Before implements store.Store.
func (m *Store) Before(ctx context.Context, before uint64, limit int) ([]store.Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	top := m.facts.len() // highest seq included
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var out []store.Fact
	for seq := top; seq >= 1 && len(out) < limit; seq-- {
		out = append(out, *m.facts.at(seq))
	}
	return out, nil
}

// Get implements store.Store.
func (m *Store) Get(ctx context.Context, id string) (store.Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seq, ok := m.lookup(id)
	if !ok {
		return store.Fact{}, store.ErrNotFound
	}
	return *m.facts.at(seq), nil
}

// index records f's id before f is added, building byID if f breaks the
// order of ids.
func (m *Store) index(f store.Fact) {
	if m.byID == nil {
		n := m.facts.len()
		if n == 0 || m.facts.at(n).ID < f.ID {
			return
		}
		m.byID = make(map[string]uint64, n+1)
		for seq := uint64(1); seq <= n; seq++ {
			m.byID[m.facts.at(seq).ID] = seq
		}
	}
	m.byID[f.ID] = f.Seq
}

func (m *Store) lookup(id string) (uint64, bool) {
	if m.byID != nil {
		seq, ok := m.byID[id]
		return seq, ok
	}
	n := m.facts.len()
	i, found := sort.Find(int(n), func(i int) int { return strings.Compare(id, m.facts.at(uint64(i)+1).ID) })
	return uint64(i) + 1, found
}

// Stats implements store.Store.
func (m *Store) Stats(ctx context.Context) (store.Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := m.facts.len()
	return store.Stats{Count: n, LastSeq: n}, nil
}

// Ping implements store.Store.
func (m *Store) Ping(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return store.ErrClosed
	}
	return nil
}

// Close implements store.Store.
func (m *Store) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

var _ store.Store = (*Store)(nil)

// factLogChunk is how many facts one chunk of a factLog holds.
const factLogChunk = 4096

// factLog holds facts by seq in fixed-size chunks, so that a growing log
// never copies what it holds, and a long one is not one huge allocation
// for the garbage collector to replace.
type factLog struct {
	chunks [][]store.Fact
	n      uint64
}

func (l *factLog) len() uint64 { return l.n }

// at returns the fact with seq, 1 <= seq <= len().
func (l *factLog) at(seq uint64) *store.Fact {
	i := seq - 1
	return &l.chunks[i/factLogChunk][i%factLogChunk]
}

func (l *factLog) add(f store.Fact) {
	if l.n%factLogChunk == 0 {
		l.chunks = append(l.chunks, nil) // grows by append up to factLogChunk
	}
	last := len(l.chunks) - 1
	l.chunks[last] = append(l.chunks[last], f)
	l.n++
}

// copyRange returns a copy of the facts with seqs after+1 to end.
func (l *factLog) copyRange(after, end uint64) []store.Fact {
	out := make([]store.Fact, 0, end-after)
	for seq := after + 1; seq <= end; seq++ {
		out = append(out, *l.at(seq))
	}
	return out
}
