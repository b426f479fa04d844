package redis

import (
	"testing"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

func TestRedisImportContract(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunImport(t, func(t *testing.T, opts store.Options) store.Store {
		return mustOpen(t, srv, testPrefix(t), opts)
	})
}
