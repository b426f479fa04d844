package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"factstream/store"
)

// sweepBatch bounds how many facts one transaction of the age sweep
// removes, so that a large backlog (retention switched on for an old file)
// does not make one huge transaction.
const sweepBatch = 10000

// initMeta records the last seq and the count in a file written before
// they were kept, from the facts it holds, whose seqs were gapless then.
func initMeta(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyLastSeq) != nil {
		return nil
	}
	var last uint64
	if k, _ := tx.Bucket(bucketFacts).Cursor().Last(); k != nil {
		last = binary.BigEndian.Uint64(k)
	}
	if err := metaPut(tx, keyLastSeq, last); err != nil {
		return err
	}
	return metaPut(tx, keyCount, uint64(tx.Bucket(bucketFacts).Stats().KeyN))
}

func metaGet(tx *bbolt.Tx, key []byte) uint64 {
	v := tx.Bucket(bucketMeta).Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func metaPut(tx *bbolt.Tx, key []byte, n uint64) error {
	if err := tx.Bucket(bucketMeta).Put(key, seqKey(n)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// retain applies both retention bounds in tx and returns how many facts it
// removed.
func (b *Store) retain(tx *bbolt.Tx) (int, error) {
	n, err := b.trimCount(tx)
	if err != nil {
		return n, err
	}
	for {
		m, err := b.expire(tx, 0)
		n += m
		if err != nil || m == 0 {
			return n, err
		}
	}
}

// trimCount removes the oldest facts beyond RetentionFacts.
func (b *Store) trimCount(tx *bbolt.Tx) (int, error) {
	r := b.opts.RetentionFacts
	if r <= 0 {
		return 0, nil
	}
	n := 0
	for metaGet(tx, keyCount) > uint64(r) {
		if _, _, err := removeFirst(tx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// expire removes facts past RetentionAge, oldest first, up to limit (0:
// sweepBatch) and returns how many it removed.
func (b *Store) expire(tx *bbolt.Tx, limit int) (int, error) {
	if b.opts.RetentionAge <= 0 {
		return 0, nil
	}
	if limit <= 0 {
		limit = sweepBatch
	}
	now := b.now()
	n := 0
	for n < limit {
		_, v := tx.Bucket(bucketFacts).Cursor().First()
		if v == nil {
			return n, nil
		}
		var f store.Fact
		if err := json.Unmarshal(v, &f); err != nil {
			return n, fmt.Errorf("decode oldest fact: %w", err)
		}
		// Facts are in created_at order: the first one kept ends it.
		if !b.opts.Expired(f.CreatedAt, now) {
			return n, nil
		}
		if _, _, err := removeFirst(tx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// removeFirst removes the oldest fact and its id entry. The cursor is
// made anew for every fact: deleting under a cursor and stepping on can
// skip a key in bbolt.
func removeFirst(tx *bbolt.Tx) (uint64, []byte, error) {
	k, v := tx.Bucket(bucketFacts).Cursor().First()
	if k == nil {
		return 0, nil, errors.New("remove oldest fact: none left")
	}
	seq := binary.BigEndian.Uint64(k)
	var f struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, nil, fmt.Errorf("decode fact %d: %w", seq, err)
	}
	return seq, v, removeFact(tx, seq, f.ID)
}

// removeFact removes the fact seq, whose id is id, and counts it.
func removeFact(tx *bbolt.Tx, seq uint64, id string) error {
	if err := tx.Bucket(bucketFacts).Delete(seqKey(seq)); err != nil {
		return fmt.Errorf("remove fact %d: %w", seq, err)
	}
	if err := tx.Bucket(bucketIDs).Delete([]byte(id)); err != nil {
		return fmt.Errorf("remove id of fact %d: %w", seq, err)
	}
	return metaPut(tx, keyCount, metaGet(tx, keyCount)-1)
}

// sweep removes the facts past RetentionAge, a batch per transaction. A
// failed sweep only keeps them until the next one.
func (b *Store) sweep() {
	for {
		n := 0
		err := b.db.Update(func(tx *bbolt.Tx) error {
			var err error
			n, err = b.expire(tx, sweepBatch)
			return err
		})
		if err != nil {
			return
		}
		b.opts.Removed(store.RemovedRetention, n)
		if n < sweepBatch {
			return
		}
	}
}

// Delete implements store.Store. Deletions go through the writer, so that
// OnDelete comes in order with OnAppend.
func (b *Store) Delete(ctx context.Context, id string) (store.Fact, error) {
	d := &deletion{id: id, ok: make(chan struct{})}
	select {
	case b.dels <- d:
	case <-b.quit:
		return store.Fact{}, store.ErrClosed
	case <-ctx.Done():
		return store.Fact{}, ctx.Err()
	}
	<-d.ok
	return d.fact, d.err
}

// delete runs d in a transaction of its own, then reports it.
func (b *Store) delete(d *deletion) {
	defer close(d.ok)
	err := b.db.Update(func(tx *bbolt.Tx) error {
		if len(d.id) == 0 || len(d.id) > bbolt.MaxKeySize {
			return store.ErrNotFound
		}
		k := tx.Bucket(bucketIDs).Get([]byte(d.id))
		if k == nil {
			return store.ErrNotFound
		}
		seq := binary.BigEndian.Uint64(k)
		if err := json.Unmarshal(tx.Bucket(bucketFacts).Get(k), &d.fact); err != nil {
			return fmt.Errorf("decode fact %d: %w", seq, err)
		}
		return removeFact(tx, seq, d.id)
	})
	if errors.Is(err, store.ErrNotFound) {
		d.err = err
		return
	}
	if err != nil {
		d.fact, d.err = store.Fact{}, b.wrap("delete fact", err)
		return
	}
	if b.opts.OnDelete != nil {
		b.opts.OnDelete(d.fact)
	}
	b.opts.Removed(store.RemovedDeleted, 1)
}
