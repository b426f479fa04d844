package redis

import (
	"context"
	"testing"

	"factstream/internal/redistest"
	"factstream/store"
)

// BenchmarkAppend measures concurrent single-fact appends on a Redis with
// appendfsync always, the shape of many clients publishing at once: group
// commit at work. appends/commit is how many shared each script call.
func BenchmarkAppend(b *testing.B) {
	s := mustOpen(b, redistest.Start(b), testPrefix(b), store.Options{})
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
	if commits, appends := s.Commits(); commits > 0 {
		b.ReportMetric(float64(appends)/float64(commits), "appends/commit")
	}
}
