package bolt

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

func mustOpen(tb testing.TB, path string, opts store.Options) *Store {
	tb.Helper()
	s, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("open bolt: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestBoltContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) store.Store {
		return mustOpen(t, t.TempDir()+"/facts.db", opts)
	})
}

func TestBoltKeepsFactsAndKeysAcrossReopen(t *testing.T) {
	path := t.TempDir() + "/nested/dir/facts.db"
	s := mustOpen(t, path, store.Options{})
	req := store.AppendRequest{Drafts: storetest.Drafts(3, "durable"), Batch: true, Idem: storetest.Idem("k", "b")}
	first := storetest.MustAppend(t, s, req)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, store.Options{})
	again := storetest.MustAppend(t, s, req)
	if !again.Replayed || again.Facts[2].ID != first.Facts[2].ID {
		t.Fatalf("replay after reopen = %+v, want the first facts", again)
	}
	next := storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "next")})
	if got, want := next.Facts[0].Seq, uint64(4); got != want {
		t.Fatalf("seq after reopen = %d, want %d", got, want)
	}
}

// TestBoltGroupsConcurrentAppends checks the group-commit counters: every
// append is counted once, in fewer transactions when they arrive together.
func TestBoltGroupsConcurrentAppends(t *testing.T) {
	b := mustOpen(t, t.TempDir()+"/facts.db", store.Options{})
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := b.Append(context.Background(), store.AppendRequest{Drafts: []store.Draft{{Info: fmt.Sprint("fact ", i)}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	commits, appends := b.Commits()
	if appends != n || commits < 1 || commits >= n {
		t.Fatalf("%d appends in %d commits, want %d appends in fewer commits", appends, commits, n)
	}
}
