package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

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

// commitGroup commits reqs as one group, the way the writer does with
// appends that arrive together, and returns what each request got.
func commitGroup(b *Store, reqs ...store.AppendRequest) []*pending {
	group := make([]*pending, len(reqs))
	for i, req := range reqs {
		group[i] = &pending{req: req, ok: make(chan struct{})}
	}
	b.commit(group)
	return group
}

// checkCommitted checks that the file holds exactly the facts with seqs
// 1..n and that OnAppend reported exactly those, in order.
func checkCommitted(t *testing.T, b *Store, rec *storetest.Recorder, n int) {
	t.Helper()
	st, err := b.Stats(t.Context())
	if err != nil || st.Count != uint64(n) {
		t.Fatalf("stats = %+v, %v; want %d facts", st, err, n)
	}
	all, err := b.Range(t.Context(), 0, 0, 100)
	if err != nil || len(all) != n {
		t.Fatalf("range = %d facts, %v; want %d", len(all), err, n)
	}
	seqs := rec.Seqs()
	if len(seqs) != n {
		t.Fatalf("OnAppend reported seqs %v, want 1 to %d", seqs, n)
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) || all[i].Seq != seq {
			t.Fatalf("OnAppend reported seqs %v, stored %+v; want 1 to %d in both", seqs, all, n)
		}
	}
}

// A request that cannot be committed fails alone and leaves nothing behind:
// the rest of its group commits with gapless seqs, and OnAppend reports
// exactly what the file holds.
func TestBoltRefusedRequestLeavesNothingInItsGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  store.AppendRequest
	}{
		{"empty idempotency key", store.AppendRequest{Drafts: storetest.Drafts(2, "bad"), Idem: storetest.Idem("", "b")}},
		{"idempotency key too long", store.AppendRequest{Drafts: storetest.Drafts(2, "bad"),
			Idem: storetest.Idem(strings.Repeat("k", bbolt.MaxKeySize+1), "b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &storetest.Recorder{}
			b := mustOpen(t, t.TempDir()+"/facts.db", store.Options{OnAppend: rec.OnAppend})
			good := store.AppendRequest{Drafts: storetest.Drafts(1, "good")}
			got := commitGroup(b, good, tc.bad, good)
			if got[1].err == nil {
				t.Fatalf("bad request committed: %+v", got[1].res)
			}
			for _, i := range []int{0, 2} {
				if got[i].err != nil {
					t.Fatalf("request %d of the group: %v, want it committed", i, got[i].err)
				}
			}
			if got[0].res.Facts[0].Seq != 1 || got[2].res.Facts[0].Seq != 2 {
				t.Fatalf("seqs of the good requests = %d, %d; want 1, 2", got[0].res.Facts[0].Seq, got[2].res.Facts[0].Seq)
			}
			checkCommitted(t, b, rec, 2)
		})
	}
}

// A write that fails inside the transaction fails the whole group: no
// client is told its facts are stored when they are not, and none is told
// they are not when they are. The file here holds a bucket where the
// record of an idempotency key belongs, so writing that record fails.
func TestBoltFailedWriteFailsTheWholeGroup(t *testing.T) {
	path := t.TempDir() + "/facts.db"
	b := mustOpen(t, path, store.Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.Bucket(bucketIdem).CreateBucket([]byte("poisoned"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	rec := &storetest.Recorder{}
	b = mustOpen(t, path, store.Options{OnAppend: rec.OnAppend})
	good := store.AppendRequest{Drafts: storetest.Drafts(1, "good")}
	poisoned := store.AppendRequest{Drafts: storetest.Drafts(2, "poisoned"), Batch: true, Idem: storetest.Idem("poisoned", "b")}
	for i, p := range commitGroup(b, good, poisoned, good) {
		if !errors.Is(p.err, store.ErrUnavailable) {
			t.Fatalf("request %d of the failed group: err = %v, want ErrUnavailable", i, p.err)
		}
	}
	checkCommitted(t, b, rec, 0)
	// The next group is not affected.
	storetest.MustAppend(t, b, good)
	checkCommitted(t, b, rec, 1)
}

// Retention applies when the file opens, to what the clock or the settings
// changed while it was closed, before any sweep has run.
func TestBoltRetentionAppliesAtOpen(t *testing.T) {
	path := t.TempDir() + "/facts.db"
	clock := storetest.NewClock()
	s := mustOpen(t, path, store.Options{Now: clock.Now})
	old := storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(3, "old"), Batch: true})
	clock.Advance(2 * time.Hour)
	young := storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(4, "young"), Batch: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rm := &storetest.Removals{}
	s = mustOpen(t, path, store.Options{Now: clock.Now, RetentionAge: time.Hour, RetentionFacts: 2,
		SweepInterval: time.Hour, OnRemove: rm.OnRemove})
	storetest.CheckKept(t, s, 7, []uint64{6, 7}, append(old.Facts, young.Facts[:2]...))
	if got := rm.Count(store.RemovedRetention); got != 5 {
		t.Fatalf("reported %d removals at open, want 5", got)
	}
}

// With a bound on the facts kept, the file stops growing: bbolt reuses
// the pages of removed facts.
func TestBoltFileStopsGrowingUnderRetention(t *testing.T) {
	path := t.TempDir() + "/facts.db"
	s := mustOpen(t, path, store.Options{RetentionFacts: 200})
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	batch := store.AppendRequest{Drafts: storetest.Drafts(100, strings.Repeat("x", 200)), Batch: true}
	for range 20 {
		storetest.MustAppend(t, s, batch)
	}
	settled := size()
	for range 100 {
		storetest.MustAppend(t, s, batch)
	}
	if grown := size(); grown > settled {
		t.Fatalf("file grew from %d to %d bytes while keeping 200 facts", settled, grown)
	}
}
