// Package bolt is the store in an embedded bbolt file, with group commit.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"factstream/store"
)

var (
	bucketFacts = []byte("facts") // seq (8 bytes, big endian) -> fact JSON
	bucketIDs   = []byte("ids")   // id -> seq
	bucketIdem  = []byte("idem")  // idempotency key -> store.IdempotencyRecord JSON
	bucketMeta  = []byte("meta")  // keyLastSeq, keyCount -> 8 bytes, big endian
)

var (
	keyLastSeq = []byte("last_seq") // the highest seq ever assigned
	keyCount   = []byte("count")    // the facts kept
)

// maxGroup bounds how many appends share one transaction.
const maxGroup = 512

// Store keeps facts in an embedded bbolt file. Every append is fsynced before
// it returns; concurrent appends share one transaction and one fsync (group
// commit), so durability does not cost an fsync per request.
type Store struct {
	db   *bbolt.DB
	path string
	opts store.Options
	now  func() time.Time

	// Group-commit counters, for metrics.
	commits, appends atomic.Uint64

	reqs      chan *pending
	dels      chan *deletion
	quit      chan struct{} // closed by Close: no more appends
	done      chan struct{} // closed when the writer has finished
	closeOnce sync.Once
	closeErr  error
}

type pending struct {
	req store.AppendRequest
	res store.AppendResult
	err error
	ok  chan struct{}
}

// deletion is a Delete waiting for the writer.
type deletion struct {
	id   string
	fact store.Fact
	err  error
	ok   chan struct{}
}

// Open opens (creating it and its directory if needed) the bbolt file at
// path and starts its writer.
func Open(path string, opts store.Options) (*Store, error) {
	db, err := openFile(path)
	if err != nil {
		return nil, err
	}
	b := &Store{
		db:   db,
		path: path,
		opts: opts,
		now:  opts.Clock(),
		reqs: make(chan *pending),
		dels: make(chan *deletion),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	removed := 0
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketFacts, bucketIDs, bucketIdem, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := initMeta(tx); err != nil {
			return err
		}
		// Retention applies from the start, whatever changed while the
		// file was closed: the clock, or the settings.
		n, err := b.retain(tx)
		removed = n
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare bolt file %q: %w", path, err)
	}
	opts.Removed(store.RemovedRetention, removed)
	go b.writer()
	return b, nil
}

// Append implements store.Store. Once the request is handed to the writer it is
// committed even if ctx ends, so a caller never mistakes a commit for a
// failure.
func (b *Store) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	if len(req.Drafts) == 0 {
		return store.AppendResult{}, fmt.Errorf("append: no drafts")
	}
	p := &pending{req: req, ok: make(chan struct{})}
	select {
	case b.reqs <- p:
	case <-b.quit:
		return store.AppendResult{}, store.ErrClosed
	case <-ctx.Done():
		return store.AppendResult{}, ctx.Err()
	}
	<-p.ok
	return p.res, p.err
}

// writer is the only goroutine that writes to the file. It takes every
// append waiting while the previous commit was being fsynced into the next
// transaction.
func (b *Store) writer() {
	defer close(b.done)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	var sweep <-chan time.Time // nil, never ready, without a retention age
	if b.opts.RetentionAge > 0 {
		t := time.NewTicker(b.opts.Interval())
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case p := <-b.reqs:
			b.commit(b.gather(p))
		case d := <-b.dels:
			b.delete(d)
		case <-sweep:
			b.sweep()
		case <-prune.C:
			b.pruneIdem(b.now())
		case <-b.quit:
			return
		}
	}
}

// gather returns first and every append waiting behind it, up to maxGroup.
// The sender that woke the writer hands it the processor before the other
// handlers have sent theirs, so the writer yields until no more arrive;
// without that, on one core, a commit held about 2 appends in the publish
// benchmark instead of 35, each paying for its own fsyncs.
func (b *Store) gather(first *pending) []*pending {
	group := []*pending{first}
	for grew := true; grew && len(group) < maxGroup; {
		runtime.Gosched()
		before := len(group)
	drain:
		for len(group) < maxGroup {
			select {
			case p := <-b.reqs:
				group = append(group, p)
			default:
				break drain
			}
		}
		grew = len(group) > before
	}
	return group
}

// commit runs group in one transaction. A request that cannot be committed
// (an idempotency key reused with another body, or one bbolt cannot store)
// fails alone, before anything of it is written. A write that fails leaves
// the transaction half done, so it fails the whole group: no request of it
// is committed, and every one gets the error.
func (b *Store) commit(group []*pending) {
	now := b.now()
	var fresh []store.Fact
	removed := 0
	err := b.db.Update(func(tx *bbolt.Tx) error {
		fresh = fresh[:0]
		for _, p := range group {
			w, res, err := prepare(tx, p.req, now)
			p.res, p.err = res, err
			if err != nil || res.Replayed {
				continue
			}
			if err := w.put(tx); err != nil {
				return err
			}
			fresh = append(fresh, res.Facts...)
		}
		var err error
		removed, err = b.trimCount(tx)
		return err
	})
	if err != nil {
		err = fmt.Errorf("%w: commit to bolt: %w", store.ErrUnavailable, err)
		for _, p := range group {
			p.res, p.err = store.AppendResult{}, err
		}
	} else {
		if len(fresh) > 0 && b.opts.OnAppend != nil {
			b.opts.OnAppend(fresh)
		}
		b.opts.Removed(store.RemovedRetention, removed)
	}
	if err == nil {
		b.commits.Add(1)
		b.appends.Add(uint64(len(group)))
	}
	for _, p := range group {
		close(p.ok)
	}
}

// Commits returns the transactions committed since the file was opened and
// the appends they held: their ratio is how many publishes shared each
// fsync.
func (b *Store) Commits() (commits, appends uint64) {
	return b.commits.Load(), b.appends.Load()
}

// write is what one request adds to a transaction, made in full before
// any of it is written.
type write struct {
	facts   []store.Fact
	encoded [][]byte // facts[i] as JSON
	idemKey []byte   // nil without an idempotency key
	idemRec []byte
}

// prepare does every fallible step of adding req to tx, writing nothing: it
// returns the write to make, or the replayed result, or the request's
// error.
func prepare(tx *bbolt.Tx, req store.AppendRequest, now time.Time) (write, store.AppendResult, error) {
	var w write
	if req.Idem != nil {
		if n := len(req.Idem.Key); n == 0 || n > bbolt.MaxKeySize {
			return w, store.AppendResult{}, fmt.Errorf("idempotency key of %d bytes: must be 1 to %d", n, bbolt.MaxKeySize)
		}
		w.idemKey = []byte(req.Idem.Key)
		var rec store.IdempotencyRecord
		raw := tx.Bucket(bucketIdem).Get(w.idemKey)
		found := raw != nil
		if found {
			if err := json.Unmarshal(raw, &rec); err != nil {
				return w, store.AppendResult{}, fmt.Errorf("decode idempotency record: %w", err)
			}
		}
		replay, err := store.ReplayOf(req, rec, found, now)
		if err != nil {
			return w, store.AppendResult{}, err
		}
		if replay {
			out, err := rangeTx(tx, rec.First-1, rec.Last, int(rec.Last-rec.First+1))
			if err != nil {
				return w, store.AppendResult{}, err
			}
			// A record whose facts were removed is gone with them.
			if uint64(len(out)) == rec.Last-rec.First+1 {
				return w, store.AppendResult{Facts: out, Batch: rec.Batch, Replayed: true}, nil
			}
		}
	}
	facts, err := store.NewFacts(req, metaGet(tx, keyLastSeq), now)
	if err != nil {
		return w, store.AppendResult{}, err
	}
	w.facts = facts
	w.encoded = make([][]byte, len(facts))
	for i, f := range facts {
		w.encoded[i] = f.AppendJSON(nil)
	}
	if w.idemKey != nil {
		if w.idemRec, err = json.Marshal(store.NewIdempotencyRecord(req, facts, now)); err != nil {
			return w, store.AppendResult{}, fmt.Errorf("encode idempotency record: %w", err)
		}
	}
	return w, store.AppendResult{Facts: facts, Batch: req.Batch}, nil
}

// put writes w into tx. An error leaves part of w in tx: the transaction
// must not commit.
func (w write) put(tx *bbolt.Tx) error {
	facts, ids := tx.Bucket(bucketFacts), tx.Bucket(bucketIDs)
	// Both are appended to in key order (seqs, and UUIDv7 ids that grow
	// with time), so full pages split less and leave fewer pages to write
	// and fsync per commit than the default of half-full ones.
	facts.FillPercent, ids.FillPercent = 1, 1
	for i, f := range w.facts {
		if err := facts.Put(seqKey(f.Seq), w.encoded[i]); err != nil {
			return fmt.Errorf("put fact: %w", err)
		}
		if err := ids.Put([]byte(f.ID), seqKey(f.Seq)); err != nil {
			return fmt.Errorf("put fact id: %w", err)
		}
	}
	if w.idemKey != nil {
		if err := tx.Bucket(bucketIdem).Put(w.idemKey, w.idemRec); err != nil {
			return fmt.Errorf("put idempotency record: %w", err)
		}
	}
	if err := metaPut(tx, keyLastSeq, w.facts[len(w.facts)-1].Seq); err != nil {
		return err
	}
	return metaPut(tx, keyCount, metaGet(tx, keyCount)+uint64(len(w.facts)))
}

func (b *Store) pruneIdem(now time.Time) {
	// A failed prune only keeps expired keys a little longer; the next
	// tick tries again.
	_ = b.db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketIdem).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec store.IdempotencyRecord
			if json.Unmarshal(v, &rec) == nil && !rec.Expired(now) {
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func rangeTx(tx *bbolt.Tx, after, upTo uint64, limit int) ([]store.Fact, error) {
	var out []store.Fact
	c := tx.Bucket(bucketFacts).Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
		if upTo != 0 && binary.BigEndian.Uint64(k) > upTo {
			break
		}
		var f store.Fact
		if err := json.Unmarshal(v, &f); err != nil {
			return nil, fmt.Errorf("decode fact %d: %w", binary.BigEndian.Uint64(k), err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Range implements store.Store.
func (b *Store) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	var out []store.Fact
	err := b.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = rangeTx(tx, after, upTo, limit)
		return err
	})
	return out, b.wrap("read facts", err)
}

// Before implements store.Store.
func (b *Store) Before(ctx context.Context, before uint64, limit int) ([]store.Fact, error) {
	var out []store.Fact
	err := b.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketFacts).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(seqKey(before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var f store.Fact
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("decode fact %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, f)
		}
		return nil
	})
	return out, b.wrap("read facts", err)
}

// Get implements store.Store.
func (b *Store) Get(ctx context.Context, id string) (store.Fact, error) {
	var f store.Fact
	err := b.db.View(func(tx *bbolt.Tx) error {
		seq := tx.Bucket(bucketIDs).Get([]byte(id))
		if seq == nil {
			return store.ErrNotFound
		}
		return json.Unmarshal(tx.Bucket(bucketFacts).Get(seq), &f)
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Fact{}, err
	}
	return f, b.wrap("read fact", err)
}

// Stats implements store.Store.
func (b *Store) Stats(ctx context.Context) (store.Stats, error) {
	var s store.Stats
	err := b.db.View(func(tx *bbolt.Tx) error {
		s.LastSeq = metaGet(tx, keyLastSeq)
		s.Count = metaGet(tx, keyCount)
		if k, _ := tx.Bucket(bucketFacts).Cursor().First(); k != nil {
			s.FirstSeq = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return s, b.wrap("read stats", err)
}

// Ping implements store.Store.
func (b *Store) Ping(ctx context.Context) error {
	select {
	case <-b.quit:
		return store.ErrClosed
	default:
	}
	return b.wrap("ping", b.db.View(func(*bbolt.Tx) error { return nil }))
}

// Close stops taking appends, lets the writer finish the one in progress
// and closes the file.
func (b *Store) Close() error {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.done
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("close bolt file: %w", err)
		}
	})
	return b.closeErr
}

func (b *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return fmt.Errorf("%w: %s: %w", store.ErrUnavailable, op, err)
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.WriteProber = (*Store)(nil)
)
