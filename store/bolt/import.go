package bolt

import (
	"context"
	"errors"
	"fmt"
	"iter"

	bbolt "go.etcd.io/bbolt"

	"factstream/store"
)

// importBatch is how many facts one import transaction holds: a whole
// export in one transaction would hold all of it in memory until commit.
const importBatch = 10_000

// Import loads facts, exported from a store, into this empty one, keeping
// their ids, seqs, texts and times. It refuses a store that holds or held
// facts (store.ErrNotEmpty), seqs that do not strictly increase, an id
// seen twice (*store.DuplicateIDError) and an invalid fact, and stops at
// the first error facts yields. It is all or nothing: on any error what
// it had written is removed again. Facts go to the file in transactions of
// importBatch, not to OnAppend: import into a store nobody serves.
func (b *Store) Import(ctx context.Context, facts iter.Seq2[store.Fact, error]) error {
	empty := false
	err := b.db.View(func(tx *bbolt.Tx) error {
		empty = emptyTx(tx)
		return nil
	})
	if err != nil {
		return b.wrap("read bolt file", err)
	}
	if !empty {
		return store.ErrNotEmpty
	}
	wrote := false
	err = b.importAll(ctx, facts, &wrote)
	if err != nil && wrote {
		if rerr := b.db.Update(resetTx); rerr != nil {
			return fmt.Errorf("%w; removing the facts imported so far failed too, so the file holds part of the import: %w", err, rerr)
		}
	}
	return err
}

func (b *Store) importAll(ctx context.Context, facts iter.Seq2[store.Fact, error], wrote *bool) error {
	batch := make([]store.Fact, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := b.db.Update(func(tx *bbolt.Tx) error { return putImported(tx, batch) })
		var dup *store.DuplicateIDError
		if errors.As(err, &dup) {
			return err
		}
		if err != nil {
			return b.wrap("import into bolt file", err)
		}
		*wrote = true
		batch = batch[:0]
		return nil
	}
	for f, err := range store.Checked(facts) {
		if err != nil {
			return err
		}
		batch = append(batch, f)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// putImported writes facts, checking first that none of their ids is
// taken, so a refused batch writes nothing.
func putImported(tx *bbolt.Tx, facts []store.Fact) error {
	ids := tx.Bucket(bucketIDs)
	seen := make(map[string]struct{}, len(facts))
	w := write{facts: facts, encoded: make([][]byte, len(facts))}
	for i, f := range facts {
		if _, dup := seen[f.ID]; dup || ids.Get([]byte(f.ID)) != nil {
			return &store.DuplicateIDError{ID: f.ID, Seq: f.Seq}
		}
		seen[f.ID] = struct{}{}
		w.encoded[i] = f.AppendJSON(nil)
	}
	return w.put(tx)
}

// emptyTx reports whether the file holds no fact and no id.
func emptyTx(tx *bbolt.Tx) bool {
	k, _ := tx.Bucket(bucketFacts).Cursor().First()
	id, _ := tx.Bucket(bucketIDs).Cursor().First()
	// A store whose facts all expired still numbers after its last seq: it
	// held facts, and an import would hand out those seqs again.
	return k == nil && id == nil && metaGet(tx, keyLastSeq) == 0
}

// resetTx empties the facts, their ids and the counters kept beside them,
// as before an import.
func resetTx(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketFacts, bucketIDs, bucketMeta} {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return nil
}
