package bolt

import (
	"fmt"
	"io"

	bbolt "go.etcd.io/bbolt"
)

// BackupTo writes a consistent copy of the file to w, taken in one read
// transaction, so appends go on meanwhile and the copy holds every fact
// committed before it began. It calls size with the copy's length before
// writing any of it. While the copy runs, the file cannot be remapped: an
// append that needs the file to grow waits for the copy to end.
func (b *Store) BackupTo(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := b.db.View(func(tx *bbolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy bolt file: %w", err)
	}
	return n, nil
}
