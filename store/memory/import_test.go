package memory

import (
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

func TestImportContract(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T, opts store.Options) store.Store {
		s := New(opts)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
