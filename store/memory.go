package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory keeps facts in process memory. It is fast and forgets everything on
// exit; use it for tests, demos and benchmarks.
type Memory struct {
	onAppend func([]Fact)

	mu       sync.RWMutex
	facts    []Fact // facts[i].Seq == i+1
	byID     map[string]uint64
	idem     map[string]idemRecord
	idemFIFO []string // keys in insertion order, for expiry
	closed   bool
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts Options) *Memory {
	return &Memory{
		onAppend: opts.OnAppend,
		byID:     make(map[string]uint64),
		idem:     make(map[string]idemRecord),
	}
}

// Append implements Store.
func (m *Memory) Append(ctx context.Context, req AppendRequest) (AppendResult, error) {
	if len(req.Drafts) == 0 {
		return AppendResult{}, fmt.Errorf("append: no drafts")
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return AppendResult{}, ErrClosed
	}
	m.expireIdem(now)
	if req.Idem != nil {
		rec, found := m.idem[req.Idem.Key]
		replay, err := replayOf(req, rec, found, now)
		if err != nil {
			return AppendResult{}, err
		}
		if replay {
			facts := append([]Fact(nil), m.facts[rec.First-1:rec.Last]...)
			return AppendResult{Facts: facts, Batch: rec.Batch, Replayed: true}, nil
		}
	}
	facts, err := newFacts(req, uint64(len(m.facts)), now)
	if err != nil {
		return AppendResult{}, err
	}
	m.facts = append(m.facts, facts...)
	for _, f := range facts {
		m.byID[f.ID] = f.Seq
	}
	if req.Idem != nil {
		m.idem[req.Idem.Key] = recordOf(req, facts, now)
		m.idemFIFO = append(m.idemFIFO, req.Idem.Key)
	}
	// Still under the lock, so listeners see appends in seq order.
	if m.onAppend != nil {
		m.onAppend(facts)
	}
	return AppendResult{Facts: facts, Batch: req.Batch}, nil
}

func (m *Memory) expireIdem(now time.Time) {
	for len(m.idemFIFO) > 0 {
		key := m.idemFIFO[0]
		rec, ok := m.idem[key]
		if ok && !rec.expired(now) {
			return
		}
		if ok {
			delete(m.idem, key)
		}
		m.idemFIFO = m.idemFIFO[1:]
	}
}

// Range implements Store.
func (m *Memory) Range(ctx context.Context, after, upTo uint64, limit int) ([]Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	end := uint64(len(m.facts))
	if upTo != 0 && upTo < end {
		end = upTo
	}
	if after >= end || limit <= 0 {
		return nil, nil
	}
	if end-after > uint64(limit) {
		end = after + uint64(limit)
	}
	return append([]Fact(nil), m.facts[after:end]...), nil
}

// Before implements Store.
func (m *Memory) Before(ctx context.Context, before uint64, limit int) ([]Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	top := uint64(len(m.facts)) // highest seq included
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var out []Fact
	for seq := top; seq >= 1 && len(out) < limit; seq-- {
		out = append(out, m.facts[seq-1])
	}
	return out, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seq, ok := m.byID[id]
	if !ok {
		return Fact{}, ErrNotFound
	}
	return m.facts[seq-1], nil
}

// Stats implements Store.
func (m *Memory) Stats(ctx context.Context) (Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := uint64(len(m.facts))
	return Stats{Count: n, LastSeq: n}, nil
}

// Ping implements Store.
func (m *Memory) Ping(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

var _ Store = (*Memory)(nil)
