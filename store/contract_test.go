package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// opener opens a fresh, empty store of one kind for a test.
type opener func(tb testing.TB, opts Options) Store

// recorder collects what a store reports through OnAppend.
type recorder struct {
	mu    sync.Mutex
	facts []Fact
}

func (r *recorder) onAppend(fs []Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.facts = append(r.facts, fs...)
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.facts))
	for i, f := range r.facts {
		out[i] = f.Seq
	}
	return out
}

func drafts(n int, prefix string) []Draft {
	out := make([]Draft, n)
	for i := range out {
		out[i] = Draft{Info: fmt.Sprintf("%s %d", prefix, i), Source: "https://example.com/" + prefix}
	}
	return out
}

func mustAppend(tb testing.TB, s Store, req AppendRequest) AppendResult {
	tb.Helper()
	res, err := s.Append(context.Background(), req)
	if err != nil {
		tb.Fatalf("append: %v", err)
	}
	return res
}

func idem(key, body string) *Idempotency {
	return &Idempotency{Key: key, Hash: sha256.Sum256([]byte(body))}
}

// waitSeqs polls until the recorder has seen n facts: a Redis store reports
// appends from its tail loop, a little after Append returns.
func waitSeqs(tb testing.TB, r *recorder, n int) []uint64 {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.seqs()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runContract is the behaviour every Store implementation must show.
func runContract(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("EmptyStore", func(t *testing.T) {
		s := open(t, Options{})
		st, err := s.Stats(ctx)
		if err != nil || st.Count != 0 || st.LastSeq != 0 {
			t.Fatalf("stats = %+v, %v; want zero", st, err)
		}
		if got, err := s.Range(ctx, 0, 0, 10); err != nil || len(got) != 0 {
			t.Fatalf("range = %v, %v; want empty", got, err)
		}
		if _, err := s.Get(ctx, uuid.Must(uuid.NewV7()).String()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get unknown id: err = %v, want ErrNotFound", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
	})

	t.Run("AppendAssignsSeqIDAndTime", func(t *testing.T) {
		s := open(t, Options{})
		before := time.Now().Add(-time.Second)
		for i := 1; i <= 3; i++ {
			res := mustAppend(t, s, AppendRequest{Drafts: drafts(1, "single")})
			f := res.Facts[0]
			if got, want := f.Seq, uint64(i); got != want {
				t.Fatalf("seq = %d, want %d", got, want)
			}
			id, err := uuid.Parse(f.ID)
			if err != nil || id.Version() != 7 {
				t.Fatalf("id %q is not a UUIDv7 (%v)", f.ID, err)
			}
			if f.CreatedAt.Location() != time.UTC || f.CreatedAt.Before(before) || f.CreatedAt.After(time.Now().Add(time.Second)) {
				t.Fatalf("created_at = %v, want UTC now", f.CreatedAt)
			}
			got, err := s.Get(ctx, f.ID)
			if err != nil || got.Seq != f.Seq || got.Info != f.Info || !got.CreatedAt.Equal(f.CreatedAt) {
				t.Fatalf("get(%s) = %+v, %v; want %+v", f.ID, got, err, f)
			}
		}
		if st, _ := s.Stats(ctx); st.Count != 3 || st.LastSeq != 3 {
			t.Fatalf("stats = %+v, want 3 facts", st)
		}
	})

	t.Run("BatchIsContiguous", func(t *testing.T) {
		s := open(t, Options{})
		mustAppend(t, s, AppendRequest{Drafts: drafts(1, "first")})
		res := mustAppend(t, s, AppendRequest{Drafts: drafts(5, "batch"), Batch: true})
		if len(res.Facts) != 5 || !res.Batch {
			t.Fatalf("batch result = %d facts, batch=%v", len(res.Facts), res.Batch)
		}
		for i, f := range res.Facts {
			if got, want := f.Seq, uint64(i+2); got != want {
				t.Fatalf("batch fact %d seq = %d, want %d", i, got, want)
			}
		}
	})

	t.Run("RangeAndBefore", func(t *testing.T) {
		s := open(t, Options{})
		mustAppend(t, s, AppendRequest{Drafts: drafts(10, "r"), Batch: true})
		cases := []struct {
			name             string
			after, upTo      uint64
			limit            int
			wantFirst, wantN int
		}{
			{"All", 0, 0, 100, 1, 10},
			{"After", 4, 0, 100, 5, 6},
			{"Limit", 0, 0, 3, 1, 3},
			{"UpTo", 2, 5, 100, 3, 3},
			{"PastHead", 10, 0, 100, 0, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Range(ctx, tc.after, tc.upTo, tc.limit)
				if err != nil || len(got) != tc.wantN {
					t.Fatalf("range = %d facts, %v; want %d", len(got), err, tc.wantN)
				}
				for i, f := range got {
					if want := uint64(tc.wantFirst + i); f.Seq != want {
						t.Fatalf("fact %d seq = %d, want %d", i, f.Seq, want)
					}
				}
			})
		}
		desc, err := s.Before(ctx, 0, 3)
		if err != nil || len(desc) != 3 || desc[0].Seq != 10 || desc[2].Seq != 8 {
			t.Fatalf("before(0,3) = %v, %v; want 10,9,8", desc, err)
		}
		desc, err = s.Before(ctx, 3, 10)
		if err != nil || len(desc) != 2 || desc[0].Seq != 2 || desc[1].Seq != 1 {
			t.Fatalf("before(3,10) = %v, %v; want 2,1", desc, err)
		}
	})

	t.Run("ConcurrentAppendsAreGaplessAndReportedInOrder", func(t *testing.T) {
		rec := &recorder{}
		s := open(t, Options{OnAppend: rec.onAppend})
		const workers, each = 8, 40
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					n := 1 + (w+i)%3
					if _, err := s.Append(ctx, AppendRequest{Drafts: drafts(n, "c"), Batch: n > 1}); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seqs := waitSeqs(t, rec, int(st.LastSeq))
		if uint64(len(seqs)) != st.LastSeq || st.Count != st.LastSeq {
			t.Fatalf("reported %d facts, stats %+v", len(seqs), st)
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("reported seq #%d = %d, want %d", i, seq, i+1)
			}
		}
		all, err := s.Range(ctx, 0, 0, 10000)
		if err != nil || uint64(len(all)) != st.LastSeq {
			t.Fatalf("range = %d, %v; want %d", len(all), err, st.LastSeq)
		}
		ids := map[string]bool{}
		for i, f := range all {
			if f.Seq != uint64(i+1) || ids[f.ID] {
				t.Fatalf("fact %d: seq %d id %s (duplicate or gap)", i, f.Seq, f.ID)
			}
			ids[f.ID] = true
		}
	})

	t.Run("IdempotentReplay", func(t *testing.T) {
		rec := &recorder{}
		s := open(t, Options{OnAppend: rec.onAppend})
		first := mustAppend(t, s, AppendRequest{Drafts: drafts(2, "idem"), Batch: true, Idem: idem("k1", "body")})
		again := mustAppend(t, s, AppendRequest{Drafts: drafts(2, "idem"), Batch: true, Idem: idem("k1", "body")})
		if !again.Replayed || first.Replayed || !again.Batch {
			t.Fatalf("replayed: first=%v again=%v batch=%v", first.Replayed, again.Replayed, again.Batch)
		}
		if len(again.Facts) != 2 || again.Facts[0].ID != first.Facts[0].ID || again.Facts[1].Seq != first.Facts[1].Seq {
			t.Fatalf("replay = %+v, want %+v", again.Facts, first.Facts)
		}
		if _, err := s.Append(ctx, AppendRequest{Drafts: drafts(1, "other"), Idem: idem("k1", "other body")}); !errors.Is(err, ErrIdempotencyMismatch) {
			t.Fatalf("same key, other body: err = %v, want ErrIdempotencyMismatch", err)
		}
		if st, _ := s.Stats(ctx); st.Count != 2 {
			t.Fatalf("count = %d after replays, want 2", st.Count)
		}
		if got := waitSeqs(t, rec, 2); len(got) != 2 {
			t.Fatalf("reported %v, want the first append only", got)
		}
	})

	t.Run("ConcurrentSameKeyStoresOnce", func(t *testing.T) {
		s := open(t, Options{})
		var wg sync.WaitGroup
		ids := make(chan string, 16)
		for range 16 {
			wg.Go(func() {
				res, err := s.Append(ctx, AppendRequest{Drafts: drafts(1, "same"), Idem: idem("shared", "b")})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				ids <- res.Facts[0].ID
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("16 appends with one key stored %d distinct facts, want 1", len(seen))
		}
		if st, _ := s.Stats(ctx); st.Count != 1 {
			t.Fatalf("count = %d, want 1", st.Count)
		}
	})

	t.Run("AppendAfterCloseFails", func(t *testing.T) {
		s := open(t, Options{})
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := s.Append(ctx, AppendRequest{Drafts: drafts(1, "late")}); err == nil {
			t.Fatal("append after close succeeded")
		}
	})
}

func TestMemoryContract(t *testing.T) {
	runContract(t, func(tb testing.TB, opts Options) Store {
		s := NewMemory(opts)
		tb.Cleanup(func() { s.Close() })
		return s
	})
}

func mustOpenBolt(tb testing.TB, path string, opts Options) *Bolt {
	tb.Helper()
	s, err := OpenBolt(path, opts)
	if err != nil {
		tb.Fatalf("open bolt: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestBoltContract(t *testing.T) {
	runContract(t, func(tb testing.TB, opts Options) Store {
		return mustOpenBolt(tb, tb.TempDir()+"/facts.db", opts)
	})
}

func TestBoltKeepsFactsAndKeysAcrossReopen(t *testing.T) {
	path := t.TempDir() + "/nested/dir/facts.db"
	s := mustOpenBolt(t, path, Options{})
	first := mustAppend(t, s, AppendRequest{Drafts: drafts(3, "durable"), Batch: true, Idem: idem("k", "b")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenBolt(t, path, Options{})
	again := mustAppend(t, s, AppendRequest{Drafts: drafts(3, "durable"), Batch: true, Idem: idem("k", "b")})
	if !again.Replayed || again.Facts[2].ID != first.Facts[2].ID {
		t.Fatalf("replay after reopen = %+v, want the first facts", again)
	}
	next := mustAppend(t, s, AppendRequest{Drafts: drafts(1, "next")})
	if got, want := next.Facts[0].Seq, uint64(4); got != want {
		t.Fatalf("seq after reopen = %d, want %d", got, want)
	}
}

func TestOpenRejectsUnknownSpec(t *testing.T) {
	for _, spec := range []string{"", "bolt:", "postgres://x", "file:/tmp/x"} {
		if _, err := Open(spec, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", spec)
		}
	}
}

// TestBoltGroupsConcurrentAppends checks the group-commit counters: every
// append is counted once, in fewer transactions when they arrive together.
func TestBoltGroupsConcurrentAppends(t *testing.T) {
	b := mustOpenBolt(t, t.TempDir()+"/facts.db", Options{})
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := b.Append(context.Background(), AppendRequest{Drafts: []Draft{{Info: fmt.Sprint("fact ", i)}}}); err != nil {
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
