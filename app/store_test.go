package app

import (
	"fmt"
	"path/filepath"
	"testing"

	"factstream/store"
)

func TestOpenStoreRejectsUnknownSpec(t *testing.T) {
	for _, spec := range []string{"", "bolt:", "postgres://x", "file:/tmp/x"} {
		if _, err := openStore(spec, store.Options{}); err == nil {
			t.Errorf("openStore(%q) succeeded, want an error", spec)
		}
	}
}

// Each kind of specification opens its backend, ready to serve. (The Redis
// store has tests of its own, against a real server.)
func TestOpenStorePicksTheBackend(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string
	}{
		{"memory:", "*memory.Store"},
		{"memory", "*memory.Store"},
		{"bolt:" + filepath.Join(t.TempDir(), "facts.db"), "*bolt.Store"},
	} {
		st, err := openStore(tc.spec, store.Options{})
		if err != nil {
			t.Fatalf("openStore(%q): %v", tc.spec, err)
		}
		if got := fmt.Sprintf("%T", st); got != tc.want {
			t.Errorf("openStore(%q) = %s, want %s", tc.spec, got, tc.want)
		}
		if err := st.Ping(t.Context()); err != nil {
			t.Errorf("openStore(%q): ping: %v", tc.spec, err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("openStore(%q): close: %v", tc.spec, err)
		}
	}
}
