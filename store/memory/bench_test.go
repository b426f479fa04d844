package memory

import (
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

// BenchmarkAppend measures concurrent single-fact appends.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, New(store.Options{}))
}
