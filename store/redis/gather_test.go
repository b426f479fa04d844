package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

// appendInOneCall appends reqs concurrently and makes them share one script
// call: the writer is held after taking the first until the others are
// queued behind it, in the order given. It returns what each request got and
// checks that they took exactly one call.
func appendInOneCall(t *testing.T, s *Store, reqs ...store.AppendRequest) ([]store.AppendResult, []error) {
	t.Helper()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.holdGroup = func() {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	commits, _ := s.Commits()
	res, errs := make([]store.AppendResult, len(reqs)), make([]error, len(reqs))
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Go(func() { res[i], errs[i] = s.Append(context.Background(), reqs[i]) })
	}
	run(0)
	<-held
	// One at a time, so that they queue in the order given.
	for i := 1; i < len(reqs); i++ {
		run(i)
		eventuallyTrue(t, fmt.Sprintf("request %d queued behind the held one", i), func() bool { return len(s.reqs) == i })
	}
	close(release)
	wg.Wait()
	if after, _ := s.Commits(); after != commits+1 {
		t.Fatalf("%d requests took %d script calls, want 1", len(reqs), after-commits)
	}
	return res, errs
}

// One request of a shared call that fails (an idempotency key reused with
// another body, a request too large for a call) fails alone: the others
// commit with gapless seqs in the order they were queued, a key met twice
// in the call commits once and replays once, and OnAppend reports exactly
// what was committed.
func TestRedisRefusedRequestFailsAloneInItsCall(t *testing.T) {
	srv := redistest.Start(t)
	rec := &storetest.Recorder{}
	s := mustOpen(t, srv, testPrefix(t), store.Options{OnAppend: rec.OnAppend})
	taken := storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "taken"), Idem: storetest.Idem("taken", "first body")})
	s.maxRequestBytes = 10 * requestSize(make([]store.Fact, 1)) // a few small facts

	good := store.AppendRequest{Drafts: storetest.Drafts(1, "good")}
	batch := store.AppendRequest{Drafts: storetest.Drafts(3, "batch"), Batch: true}
	reused := store.AppendRequest{Drafts: storetest.Drafts(1, "reused"), Idem: storetest.Idem("taken", "another body")}
	tooLarge := store.AppendRequest{Drafts: storetest.Drafts(50, "too large"), Batch: true}
	twice := store.AppendRequest{Drafts: storetest.Drafts(2, "twice"), Batch: true, Idem: storetest.Idem("twice", "body")}
	replayed := store.AppendRequest{Drafts: storetest.Drafts(1, "replayed"), Idem: storetest.Idem("taken", "first body")}

	res, errs := appendInOneCall(t, s, good, reused, batch, tooLarge, twice, twice, replayed, good)

	if !errors.Is(errs[1], store.ErrIdempotencyMismatch) {
		t.Errorf("reused key: err = %v, want ErrIdempotencyMismatch", errs[1])
	}
	var tooBig *store.TooLargeError
	if !errors.As(errs[3], &tooBig) || errors.Is(errs[3], store.ErrUnavailable) || tooBig.Max != s.maxRequestBytes {
		t.Errorf("too large request: err = %v, want a store.TooLargeError with Max %d", errs[3], s.maxRequestBytes)
	}
	for _, i := range []int{0, 2, 4, 5, 6, 7} {
		if errs[i] != nil {
			t.Fatalf("request %d of the call: %v, want it committed", i, errs[i])
		}
	}
	// Seq 1 is the fact committed before; the call commits 2 to 8.
	for _, c := range []struct {
		i     int
		first uint64
		n     int
	}{{0, 2, 1}, {2, 3, 3}, {4, 6, 2}, {7, 8, 1}} {
		if got := res[c.i]; got.Replayed || len(got.Facts) != c.n || got.Facts[0].Seq != c.first {
			t.Errorf("request %d = %+v, want %d new facts from seq %d", c.i, got, c.n, c.first)
		}
	}
	if r := res[5]; !r.Replayed || !r.Batch || len(r.Facts) != 2 || r.Facts[0].ID != res[4].Facts[0].ID {
		t.Errorf("second request with a key first used in the same call = %+v, want a replay of %+v", r, res[4])
	}
	if r := res[6]; !r.Replayed || len(r.Facts) != 1 || r.Facts[0].ID != taken.Facts[0].ID {
		t.Errorf("replay of an earlier key = %+v, want %+v", r, taken)
	}

	assertContiguous(t, rec.WaitSeqs(t, 8), 8)
	all, err := s.Range(t.Context(), 0, 0, 100)
	if err != nil || len(all) != 8 {
		t.Fatalf("stored %d facts, %v; want 8", len(all), err)
	}
	for _, f := range all {
		if strings.HasPrefix(f.Info, "too large") || strings.HasPrefix(f.Info, "reused") || strings.HasPrefix(f.Info, "replayed") {
			t.Errorf("a refused or replayed request left fact %+v behind", f)
		}
	}
}

// TestRedisGroupsConcurrentAppends checks the group-commit counters: every
// append is counted once, in fewer calls when they arrive together, and
// appends across instances stay gapless (TestRedisSeqIsGaplessAcrossInstances
// covers the order).
func TestRedisGroupsConcurrentAppends(t *testing.T) {
	srv := redistest.Start(t)
	s := mustOpen(t, srv, testPrefix(t), store.Options{})
	reqs := make([]store.AppendRequest, 64)
	for i := range reqs {
		reqs[i] = store.AppendRequest{Drafts: []store.Draft{{Info: fmt.Sprint("fact ", i)}}}
	}
	_, errs := appendInOneCall(t, s, reqs...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if commits, appends := s.Commits(); commits != 1 || appends != 64 {
		t.Fatalf("%d appends in %d commits, want 64 in 1", appends, commits)
	}
	if st, err := s.Stats(t.Context()); err != nil || st.LastSeq != 64 {
		t.Fatalf("stats = %+v, %v; want 64 facts", st, err)
	}
}

// A group larger than a call may carry is split: every request commits,
// in more than one call.
func TestRedisSplitsGroupsAtTheirBound(t *testing.T) {
	srv := redistest.Start(t)
	s := mustOpen(t, srv, testPrefix(t), store.Options{})
	// Three requests of about 600 KB: no two fit within maxGroupBytes.
	big := strings.Repeat("x", 4000)
	drafts := make([]store.Draft, 150)
	for i := range drafts {
		drafts[i] = store.Draft{Info: big}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := s.Append(context.Background(), store.AppendRequest{Drafts: drafts, Batch: true}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if commits, appends := s.Commits(); appends != 3 || commits != 3 {
		t.Fatalf("%d appends of 600 KB in %d calls, want 3 in 3 (a call carries %d bytes)", appends, commits, maxGroupBytes)
	}
	if st, err := s.Stats(t.Context()); err != nil || st.LastSeq != 450 {
		t.Fatalf("stats = %+v, %v; want 450 facts", st, err)
	}
}
