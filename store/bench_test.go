package store

import (
	"context"
	"testing"
)

// BenchmarkAppend measures concurrent single-fact appends, the shape of
// many clients publishing at once (group commit for bolt).
func BenchmarkAppend(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			var s Store = NewMemory(Options{})
			if kind == "bolt" {
				s = mustOpenBolt(b, b.TempDir()+"/facts.db", Options{})
			}
			req := AppendRequest{Drafts: []Draft{{Info: "A fact of ordinary length, about eighty characters long, give or take."}}}
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
		})
	}
}
