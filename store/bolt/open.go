package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockWait is how long Open waits for another process to release the
// file's lock before it gives up.
const lockWait = 2 * time.Second

// ErrLocked means another process holds the bolt file open.
var ErrLocked = errors.New("locked by another process")

// ErrCorrupt means the bolt file is damaged: truncated, overwritten or not a
// bolt file at all.
var ErrCorrupt = errors.New("corrupt or truncated bolt file")

// openFile opens the bbolt file at path and reads its top pages.
// bbolt answers some damage (a bad freelist or page) with a panic rather
// than an error; that is recovered here, and only here, so that a damaged
// file stops start-up with one line saying so instead of a goroutine trace.
// A panic leaves bbolt's file handle open: the caller is expected to give
// up, as the process does.
func openFile(path string) (db *bbolt.DB, err error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create directory for bolt file %q: %w", path, err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				closeQuietly(db)
			}
			db, err = nil, fmt.Errorf("open bolt file %q: %w (%v)", path, ErrCorrupt, r)
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockWait})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open bolt file %q: %w (a factstream serving it?): %w", path, ErrLocked, err)
	case err != nil && !isAccess(err):
		return nil, fmt.Errorf("open bolt file %q: %w (%w)", path, ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("open bolt file %q: %w", path, err)
	}
	// Walking every bucket to its newest key reads the pages every
	// append and every read starts from: damage there shows now, not at
	// the first request.
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			b.Cursor().Last()
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read bolt file %q: %w (%w)", path, ErrCorrupt, err)
	}
	return db, nil
}

// isAccess tells an error about reaching the file (a path, a permission,
// a lock, mapping it) from one about what the file holds: bbolt reports the
// latter as sentinels or bare messages ("file size too small").
func isAccess(err error) bool {
	var pathErr *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno)
}

// closeQuietly closes a db that has just panicked; it may panic again.
func closeQuietly(db *bbolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}
