package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

func TestOpenNamesTheProblem(t *testing.T) {
	t.Run("Locked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "facts.db")
		mustOpen(t, path, store.Options{})
		_, err := Open(path, store.Options{})
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
			t.Fatalf("second open = %v, want %v naming %s", err, ErrLocked, path)
		}
	})
	t.Run("Corrupt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "facts.db")
		s := mustOpen(t, path, store.Options{})
		storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(50, "soon damaged")})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		clear(b[2*os.Getpagesize():]) // everything after the two meta pages
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, store.Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("open = %v, want %v", err, ErrCorrupt)
		}
	})
}
