package redis

import (
	"testing"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

// BenchmarkAppend measures concurrent single-fact appends on a Redis with
// appendfsync always, the shape of many clients publishing at once: group
// commit at work. appends/commit is how many shared each script call.
func BenchmarkAppend(b *testing.B) {
	s := mustOpen(b, redistest.Start(b), testPrefix(b), store.Options{})
	storetest.BenchAppend(b, s)
	if commits, appends := s.Commits(); commits > 0 {
		b.ReportMetric(float64(appends)/float64(commits), "appends/commit")
	}
}
