package store

import "context"

// WriteProber is implemented by stores whose writes can fail while reads
// still work: a full disk, a file made read-only, a Redis out of memory.
// Check for it with a type assertion; a store without it (memory) always
// accepts writes.
type WriteProber interface {
	// ProbeWrite makes a small write where facts are written, or checks
	// what a write needs (free space), and reports why it would fail.
	// It must never touch facts.
	ProbeWrite(ctx context.Context) error
}
