package bolt

import (
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

// BenchmarkAppend measures concurrent single-fact appends: group commit at
// work.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, mustOpen(b, b.TempDir()+"/facts.db", store.Options{}))
}
