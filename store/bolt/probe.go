package bolt

import (
	"context"
	"fmt"
	"syscall"

	bbolt "go.etcd.io/bbolt"

	"factstream/store"
)

// probeHeadroom is the free space below which the file system counts as
// full: bbolt reuses freed pages, so a tiny write can still succeed on a
// disk too full for the next batch of facts.
const probeHeadroom = 1 << 20

var (
	bucketProbe = []byte("probe")
	keyProbe    = []byte("probe")
)

// ProbeWrite implements store.WriteProber: it checks the file system's free
// space and commits a tiny transaction to a bucket of its own, which fails
// as an append would on a file made read-only or a failing disk.
func (b *Store) ProbeWrite(ctx context.Context) error {
	select {
	case <-b.quit:
		return store.ErrClosed
	default:
	}
	if free, ok := freeBytes(b.path); ok && free < probeHeadroom {
		return fmt.Errorf("%w: %d bytes free on the file system of %q: %w", store.ErrUnavailable, free, b.path, syscall.ENOSPC)
	}
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketProbe)
		if err != nil {
			return err
		}
		return bk.Put(keyProbe, []byte{1})
	})
	return b.wrap("probe write", err)
}
