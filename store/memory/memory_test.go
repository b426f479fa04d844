package memory

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

// The memory store finds facts by id with a binary search while ids
// increase, and through a map once one does not. Both ways must find every
// fact, across chunk boundaries.
func TestMemoryGetWhateverTheOrderOfIDs(t *testing.T) {
	n := factLogChunk + 10
	for _, tc := range []struct {
		name    string
		breakAt int // seq whose id is out of order; 0 for none
	}{
		{"increasing ids", 0},
		{"an id out of order late", factLogChunk + 5},
		{"an id out of order early", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(store.Options{})
			ids := make([]string, n+1)
			for seq := 1; seq <= n; seq++ {
				ids[seq] = fmt.Sprintf("id-%08d", seq)
				if seq == tc.breakAt {
					ids[seq] = "id-0" // sorts before every other id
				}
				f := store.Fact{ID: ids[seq], Seq: uint64(seq)}
				m.index(f)
				m.facts.add(f)
			}
			if (m.byID != nil) != (tc.breakAt != 0) {
				t.Fatalf("map built: %v, want %v", m.byID != nil, tc.breakAt != 0)
			}
			for seq := 1; seq <= n; seq++ {
				f, err := m.Get(context.Background(), ids[seq])
				if err != nil || f.Seq != uint64(seq) {
					t.Fatalf("Get(%s) = seq %d, %v; want seq %d", ids[seq], f.Seq, err, seq)
				}
			}
			for _, missing := range []string{"", "id-00000000x", "id-99999999", "zz"} {
				if _, err := m.Get(context.Background(), missing); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get(%q): %v, want store.ErrNotFound", missing, err)
				}
			}
		})
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) store.Store {
		s := New(opts)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Retention drops the oldest chunks of the log: what is kept stays
// findable, and the log holds no more chunks than the facts kept need.
func TestMemoryRetentionDropsOldChunks(t *testing.T) {
	m := New(store.Options{RetentionFacts: 10})
	defer m.Close()
	for range 3 * factLogChunk / 100 {
		storetest.MustAppend(t, m, store.AppendRequest{Drafts: storetest.Drafts(100, "chunk"), Batch: true})
	}
	last := uint64(3 * factLogChunk / 100 * 100)
	if n := len(m.facts.chunks); n > 2 {
		t.Fatalf("log holds %d chunks for 10 facts", n)
	}
	storetest.CheckKept(t, m, last, storetest.SeqRange(last-9, last), nil)
}
