package redis

import (
	"context"
	"time"

	"factstream/store"
)

// probeTTL keeps the probe key from outliving the probes.
const probeTTL = 30 * time.Second

// ProbeWrite implements store.WriteProber: a SET of a key that expires, which
// Redis refuses as it would an append when it is out of memory (a PING is
// still answered then).
func (r *Store) ProbeWrite(ctx context.Context) error {
	ctx, cancel, err := r.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return r.wrap("probe write", r.rdb.Set(ctx, r.keys.probe, "1", probeTTL).Err())
}

var _ store.WriteProber = (*Store)(nil)
