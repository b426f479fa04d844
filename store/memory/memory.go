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
	opts store.Options
	now  func() time.Time

	mu    sync.RWMutex
	facts factLog
	// byID is nil while ids increase with seq, which UUIDv7 ids made in
	// one process do: Get then searches facts. Built in full the first
	// time an id breaks that order, and kept from then on.
	byID     map[string]uint64
	idem     map[string]store.IdempotencyRecord
	idemFIFO []string // keys in insertion order, for expiry
	closed   bool

	quit      chan struct{} // closed by Close: ends the sweep
	sweepDone chan struct{}
	closeOnce sync.Once
}

// New returns an empty in-memory store. With a retention age it runs a
// sweep until Close.
func New(opts store.Options) *Store {
	m := &Store{
		opts:      opts,
		now:       opts.Clock(),
		facts:     factLog{lo: 1},
		idem:      make(map[string]store.IdempotencyRecord),
		quit:      make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	if opts.RetentionAge > 0 {
		go m.sweep()
	} else {
		close(m.sweepDone)
	}
	return m
}

// sweep removes facts past the retention age every sweep interval, until
// Close.
func (m *Store) sweep() {
	defer close(m.sweepDone)
	t := time.NewTicker(m.opts.Interval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.mu.Lock()
			n := m.expire(m.now())
			m.mu.Unlock()
			m.opts.Removed(store.RemovedRetention, n)
		case <-m.quit:
			return
		}
	}
}

// Append implements store.Store.
func (m *Store) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	if len(req.Drafts) == 0 {
		return store.AppendResult{}, fmt.Errorf("append: no drafts")
	}
	now := m.now()
	m.mu.Lock()
	res, removed, err := m.append(req, now)
	m.mu.Unlock()
	m.opts.Removed(store.RemovedRetention, removed)
	return res, err
}

// append does Append's work under the write lock, and returns how many facts
// retention removed.
func (m *Store) append(req store.AppendRequest, now time.Time) (store.AppendResult, int, error) {
	if m.closed {
		return store.AppendResult{}, 0, store.ErrClosed
	}
	m.expireIdem(now)
	if req.Idem != nil {
		rec, found := m.idem[req.Idem.Key]
		replay, err := store.ReplayOf(req, rec, found, now)
		if err != nil {
			return store.AppendResult{}, 0, err
		}
		// A record whose facts were removed is gone with them.
		if replay && m.facts.allKept(rec.First, rec.Last) {
			facts := m.facts.copyRange(rec.First-1, rec.Last, int(rec.Last-rec.First+1))
			return store.AppendResult{Facts: facts, Batch: rec.Batch, Replayed: true}, 0, nil
		}
	}
	facts, err := store.NewFacts(req, m.facts.last(), now)
	if err != nil {
		return store.AppendResult{}, 0, err
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
	if m.opts.OnAppend != nil {
		m.opts.OnAppend(facts)
	}
	removed := 0
	if r := m.opts.RetentionFacts; r > 0 {
		for m.facts.count > uint64(r) {
			m.removeFirst()
			removed++
		}
	}
	return store.AppendResult{Facts: facts, Batch: req.Batch}, removed, nil
}

// expire removes the facts past the retention age at now and returns how
// many it removed. Facts are in created_at order, so it stops at the first
// one kept.
func (m *Store) expire(now time.Time) int {
	n := 0
	for m.facts.count > 0 && m.opts.Expired(m.facts.at(m.facts.lo).f.CreatedAt, now) {
		m.removeFirst()
		n++
	}
	return n
}

// removeFirst removes the oldest fact kept.
func (m *Store) removeFirst() {
	if m.byID != nil {
		delete(m.byID, m.facts.at(m.facts.lo).f.ID)
	}
	m.facts.remove(m.facts.lo)
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

// Delete implements store.Store.
func (m *Store) Delete(ctx context.Context, id string) (store.Fact, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return store.Fact{}, store.ErrClosed
	}
	seq, ok := m.lookup(id)
	if !ok {
		m.mu.Unlock()
		return store.Fact{}, store.ErrNotFound
	}
	f := m.facts.at(seq).f
	if m.byID != nil {
		delete(m.byID, id)
	}
	m.facts.remove(seq)
	// Under the lock, so that it comes in order with OnAppend.
	if m.opts.OnDelete != nil {
		m.opts.OnDelete(f)
	}
	m.mu.Unlock()
	m.opts.Removed(store.RemovedDeleted, 1)
	return f, nil
}

// Range implements store.Store.
func (m *Store) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	end := m.facts.hi
	if upTo != 0 && upTo < end {
		end = upTo
	}
	if after >= end || limit <= 0 {
		return nil, nil
	}
	return m.facts.copyRange(after, end, limit), nil
}

// Before implements store.Store.
func (m *Store) Before(ctx context.Context, before uint64, limit int) ([]store.Fact, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	top := m.facts.hi // highest seq included
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var out []store.Fact
	for seq := top; seq >= m.facts.lo && seq >= 1 && len(out) < limit; seq-- {
		if e := m.facts.at(seq); !e.gone {
			out = append(out, e.f)
		}
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
	return m.facts.at(seq).f, nil
}

// index records f's id before f is added, building byID if f breaks the
// order of ids.
func (m *Store) index(f store.Fact) {
	if m.byID == nil {
		l := &m.facts
		if l.hi < l.lo || l.at(l.hi).f.ID < f.ID {
			return
		}
		m.byID = make(map[string]uint64, l.hi-l.lo+2)
		for seq := l.lo; seq <= l.hi; seq++ {
			if e := l.at(seq); !e.gone {
				m.byID[e.f.ID] = seq
			}
		}
	}
	m.byID[f.ID] = f.Seq
}

// lookup finds the seq of the kept fact with id.
func (m *Store) lookup(id string) (uint64, bool) {
	if m.byID != nil {
		seq, ok := m.byID[id]
		return seq, ok
	}
	l := &m.facts
	if l.hi < l.lo {
		return 0, false
	}
	// Removed facts keep their ids in place, so the order holds.
	i, found := sort.Find(int(l.hi-l.lo+1), func(i int) int { return strings.Compare(id, l.at(l.lo+uint64(i)).f.ID) })
	seq := l.lo + uint64(i)
	return seq, found && !l.at(seq).gone
}

// Stats implements store.Store.
func (m *Store) Stats(ctx context.Context) (store.Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := store.Stats{Count: m.facts.count, LastSeq: m.facts.last()}
	if st.Count > 0 {
		st.FirstSeq = m.facts.lo
	}
	return st, nil
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
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.quit)
		<-m.sweepDone
	})
	return nil
}

var _ store.Store = (*Store)(nil)

// factLogChunk is how many facts one chunk of a factLog holds.
const factLogChunk = 4096

// entry is one slot of a factLog: a fact, or, once gone, the id of a
// deleted one, kept so that ids stay in order for the search.
type entry struct {
	f    store.Fact
	gone bool
}

// factLog holds facts by seq in fixed-size chunks, so that a growing log
// never copies what it holds, a long one is not one huge allocation for the
// garbage collector to replace, and the oldest are dropped a chunk at a
// time.
//
// Seqs base+1 to hi have slots, in the chunks; slots of removed facts are
// marked gone. lo is the oldest fact kept, or hi+1 while none is. Facts
// are added with seq hi+1, so a new log starts with lo 1.
type factLog struct {
	chunks [][]entry
	base   uint64 // seq of the first slot of chunks[0], minus one
	lo, hi uint64
	count  uint64 // slots not gone
}

// last is the highest seq ever added.
func (l *factLog) last() uint64 { return l.hi }

// at returns the slot of seq, lo <= seq <= hi.
func (l *factLog) at(seq uint64) *entry {
	i := seq - l.base - 1
	return &l.chunks[i/factLogChunk][i%factLogChunk]
}

func (l *factLog) add(f store.Fact) {
	if (l.hi-l.base)%factLogChunk == 0 {
		l.chunks = append(l.chunks, nil) // grows by append up to factLogChunk
	}
	last := len(l.chunks) - 1
	l.chunks[last] = append(l.chunks[last], entry{f: f})
	l.hi = f.Seq
	l.count++
}

// remove marks the fact at seq gone, moves lo to the oldest fact kept,
// and drops the chunks below it.
func (l *factLog) remove(seq uint64) {
	e := l.at(seq)
	// The id stays for the search; the text goes.
	e.f = store.Fact{ID: e.f.ID, Seq: e.f.Seq}
	e.gone = true
	l.count--
	for l.lo <= l.hi && l.at(l.lo).gone {
		l.lo++
	}
	for l.lo-l.base-1 >= factLogChunk {
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		l.base += factLogChunk
	}
}

// allKept reports whether every fact from first to last is kept.
func (l *factLog) allKept(first, last uint64) bool {
	if first < l.lo || last > l.hi {
		return false
	}
	for seq := first; seq <= last; seq++ {
		if l.at(seq).gone {
			return false
		}
	}
	return true
}

// copyRange returns up to limit kept facts with seqs after+1 to end.
func (l *factLog) copyRange(after, end uint64, limit int) []store.Fact {
	start := max(after+1, l.lo)
	var out []store.Fact
	for seq := start; seq <= end && len(out) < limit; seq++ {
		if e := l.at(seq); !e.gone {
			out = append(out, e.f)
		}
	}
	return out
}
