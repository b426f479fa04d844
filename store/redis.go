package store

import "fmt"

// OpenRedis opens a Redis-backed store.
func OpenRedis(url string, opts Options) (Store, error) {
	return nil, fmt.Errorf("open redis store %q: not available yet", url)
}
