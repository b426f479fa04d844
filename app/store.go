package app

import (
	"strings"

	"factstream/store"
	"factstream/store/bolt"
	"factstream/store/memory"
	"factstream/store/redis"
)

// openStore opens the store a specification names: "memory:",
// "bolt:<path>" or "redis://host:port/db" (see store.Kind).
func openStore(spec string, opts store.Options) (store.Store, error) {
	kind, err := store.Kind(spec)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "memory":
		return memory.New(opts), nil
	case "bolt":
		b, err := bolt.Open(strings.TrimPrefix(spec, "bolt:"), opts)
		if err != nil {
			return nil, err // not a typed nil inside a non-nil Store
		}
		return b, nil
	default:
		r, err := redis.Open(spec, opts)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}
