package storetest

import (
	"context"
	"testing"

	"factstream/store"
)

// BenchAppend measures concurrent single-fact appends on s, the shape of
// many clients publishing at once: where a backend gathers appends into
// one commit, this is group commit at work. Every backend's BenchmarkAppend
// runs it, so their figures compare.
func BenchAppend(b *testing.B, s store.Store) {
	req := store.AppendRequest{Drafts: []store.Draft{{Info: "A fact of ordinary length, about eighty characters long, give or take."}}}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Append(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
}
