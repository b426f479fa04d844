package bolt

import (
	"context"
	"testing"

	"factstream/store"
)

// BenchmarkAppend measures concurrent single-fact appends, the shape of
// many clients publishing at once: group commit at work.
func BenchmarkAppend(b *testing.B) {
	s := mustOpen(b, b.TempDir()+"/facts.db", store.Options{})
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
}
