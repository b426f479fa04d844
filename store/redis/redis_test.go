package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

// mustOpenRedis opens a store on srv under prefix and closes it when the test
// ends.
func mustOpen(tb testing.TB, srv *redistest.Server, prefix string, opts store.Options) *Store {
	tb.Helper()
	opts.KeyPrefix = prefix
	s, err := Open(srv.URL(), opts)
	if err != nil {
		tb.Fatalf("open redis store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// testPrefix gives each test its own keys, so one server serves many tests.
func testPrefix(tb testing.TB) string {
	return "test:" + strings.ReplaceAll(tb.Name(), "/", ":") + ":"
}

func TestRedisContract(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T, opts store.Options) store.Store {
		return mustOpen(t, srv, testPrefix(t), opts)
	})
}

func TestOpenRedisRejectsWhatWaitingCannotMend(t *testing.T) {
	srv := redistest.Start(t)
	locked := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: locked.Addr()})
	defer admin.Close()
	if err := admin.ConfigSet(t.Context(), "requirepass", "secret").Err(); err != nil {
		t.Fatalf("set a password: %v", err)
	}
	for _, tc := range []struct {
		name, url, want string
	}{
		{"bad url", "redis://127.0.0.1:notaport/0", "parse url"},
		{"no such database", strings.TrimSuffix(srv.URL(), "/0") + "/99", "DB index"},
		{"wrong password", strings.Replace(locked.URL(), "redis://", "redis://default:wrong@", 1), "WRONGPASS"},
		{"no password", locked.URL(), "NOAUTH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.url, store.Options{OnAppend: func([]store.Fact) {}})
			if err == nil {
				s.Close()
				t.Fatalf("open %s: no error", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open %s: err = %v, want it to mention %q", tc.url, err, tc.want)
			}
		})
	}
}

// TestRedisOpensBeforeRedisIsUp starts a store while Redis is down, as
// containers starting together do: it answers as during an outage until
// Redis is up, then serves, and its tail reports facts from the head it
// found, those of other instances included.
func TestRedisOpensBeforeRedisIsUp(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	writer := mustOpen(t, srv, prefix, store.Options{})
	storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(2, "earlier"), Batch: true})
	srv.Kill()

	rec := &storetest.Recorder{}
	s := mustOpen(t, srv, prefix, store.Options{OnAppend: rec.OnAppend})
	expectUnavailable(t, s)

	srv.Restart()
	res := appendEventually(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "mine")})
	if got, want := res.Facts[0].Seq, uint64(3); got != want {
		t.Fatalf("first seq = %d, want %d", got, want)
	}
	storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(1, "theirs")})
	seqs := rec.WaitSeqs(t, 2)
	if len(seqs) != 2 || seqs[0] != 3 || seqs[1] != 4 {
		t.Fatalf("reported seqs %v, want [3 4]: the facts after the head it started from, once", seqs)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping once redis is up: %v", err)
	}
}

func TestRedisKeyPrefixFromURL(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(srv.URL()+"?key_prefix=app1:", store.Options{KeyPrefix: "ignored:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := s.keys.stream, "{app1:}facts"; got != want {
		t.Fatalf("stream key = %q, want %q", got, want)
	}
	storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "p")})
	other := mustOpen(t, srv, "", store.Options{})
	if st, err := other.Stats(t.Context()); err != nil || st.Count != 0 {
		t.Fatalf("default prefix sees %+v, %v; want an empty store", st, err)
	}
	if _, err := Open(srv.URL()+"?key_prefix=", store.Options{}); err == nil {
		t.Fatal("empty key_prefix accepted")
	}
}

func TestRedisSeqIsGaplessAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	const instances, workers, each = 3, 4, 25
	recs := make([]*storetest.Recorder, instances)
	stores := make([]*Store, instances)
	for i := range stores {
		recs[i] = &storetest.Recorder{}
		stores[i] = mustOpen(t, srv, prefix, store.Options{OnAppend: recs[i].OnAppend})
	}
	var wg sync.WaitGroup
	size := func(i int) int { return 1 + i%2 }
	want := uint64(0)
	for i := range each {
		want += uint64(workers * size(i))
	}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				s := stores[(w+i)%instances]
				n := size(i)
				if _, err := s.Append(t.Context(), store.AppendRequest{Drafts: storetest.Drafts(n, "x"), Batch: n > 1}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := stores[0].Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != want || st.Count != want {
		t.Fatalf("stats = %+v, want %d facts", st, want)
	}
	for i, rec := range recs {
		seqs := rec.WaitSeqs(t, int(st.LastSeq))
		if uint64(len(seqs)) != st.LastSeq {
			t.Fatalf("instance %d saw %d facts, want %d", i, len(seqs), st.LastSeq)
		}
		for j, seq := range seqs {
			if seq != uint64(j+1) {
				t.Fatalf("instance %d: fact #%d has seq %d, want %d", i, j, seq, j+1)
			}
		}
	}
}

func TestRedisReplayAcrossInstancesAndKeyExpiry(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	a := mustOpen(t, srv, prefix, store.Options{})
	b := mustOpen(t, srv, prefix, store.Options{})
	first := storetest.MustAppend(t, a, store.AppendRequest{Drafts: storetest.Drafts(3, "k"), Batch: true, Idem: storetest.Idem("key", "body")})
	again := storetest.MustAppend(t, b, store.AppendRequest{Drafts: storetest.Drafts(3, "k"), Batch: true, Idem: storetest.Idem("key", "body")})
	if !again.Replayed || !again.Batch || again.Facts[2].ID != first.Facts[2].ID {
		t.Fatalf("replay on another instance = %+v, want the first facts", again)
	}
	for i, f := range again.Facts {
		if !f.CreatedAt.Equal(first.Facts[i].CreatedAt) || f.Info != first.Facts[i].Info || f.Source != first.Facts[i].Source {
			t.Fatalf("replayed fact %d = %+v, want %+v", i, f, first.Facts[i])
		}
	}
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	ttl, err := raw.PTTL(t.Context(), a.keys.idem+"key").Result()
	if err != nil || ttl <= store.IdempotencyTTL-time.Minute || ttl > store.IdempotencyTTL {
		t.Fatalf("idempotency record ttl = %v, %v; want about %v", ttl, err, store.IdempotencyTTL)
	}
	if err := raw.Del(t.Context(), a.keys.idem+"key").Err(); err != nil {
		t.Fatal(err)
	}
	fresh := storetest.MustAppend(t, b, store.AppendRequest{Drafts: storetest.Drafts(1, "k"), Idem: storetest.Idem("key", "other body")})
	if fresh.Replayed || fresh.Facts[0].Seq != 4 {
		t.Fatalf("after the key expired: %+v, want a new fact with seq 4", fresh)
	}
}

func TestRedisKeysShareOneSlot(t *testing.T) {
	k := newRedisKeys("")
	for _, key := range []string{k.stream, k.ids, k.idem + "x", k.presence} {
		if !strings.HasPrefix(key, "{"+DefaultKeyPrefix+"}") {
			t.Errorf("key %q lacks the hash tag {%s}", key, DefaultKeyPrefix)
		}
	}
}

func TestRedisFailsFastWhenDownAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	rec := &storetest.Recorder{}
	s := mustOpen(t, srv, testPrefix(t), store.Options{OnAppend: rec.OnAppend})
	storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(3, "before"), Batch: true})
	rec.WaitSeqs(t, 3)

	srv.Kill()
	expectUnavailable(t, s)

	srv.Restart()
	res := appendEventually(t, s, store.AppendRequest{Drafts: storetest.Drafts(2, "after"), Batch: true})
	if got, want := res.Facts[0].Seq, uint64(4); got != want {
		t.Fatalf("first seq after restart = %d, want %d", got, want)
	}
	storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "later")})
	assertContiguous(t, rec.WaitSeqs(t, 6), 6)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

// TestRedisTailResumesWithoutGap commits facts through a second instance
// while the first one's tail loop is cut off, and checks that the first one
// reports them all, in order, once Redis is back.
func TestRedisTailResumesWithoutGap(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	rec := &storetest.Recorder{}
	reader := mustOpen(t, srv, prefix, store.Options{OnAppend: rec.OnAppend})
	writer := mustOpen(t, srv, prefix, store.Options{})
	storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(2, "a"), Batch: true})
	rec.WaitSeqs(t, 2)
	for round := range 3 {
		srv.Kill()
		if _, err := writer.Append(t.Context(), store.AppendRequest{Drafts: storetest.Drafts(1, "down")}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("round %d: append with redis down: err = %v, want ErrUnavailable", round, err)
		}
		srv.Restart()
		appendEventually(t, writer, store.AppendRequest{Drafts: storetest.Drafts(3, "b"), Batch: true})
	}
	assertContiguous(t, rec.WaitSeqs(t, 11), 11)
	if err := reader.Ping(t.Context()); err != nil {
		t.Fatalf("reader ping: %v", err)
	}
}

// TestRedisTailHandsOutBacklogInSmallBatches checks that a backlog reaches
// OnAppend in batches well below a subscriber's queue (1024 events by
// default), so catching up after an outage does not drop subscribers.
func TestRedisTailHandsOutBacklogInSmallBatches(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	var mu sync.Mutex
	var sizes []int
	total := 0
	mustOpen(t, srv, prefix, store.Options{OnAppend: func(fs []store.Fact) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(fs))
		total += len(fs)
	}})
	writer := mustOpen(t, srv, prefix, store.Options{})
	for range 3 {
		storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(1000, "bulk"), Batch: true})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n == 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported %d of 3000 facts", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range sizes {
		if n > tailBatch {
			t.Fatalf("OnAppend got %d facts at once, want at most %d", n, tailBatch)
		}
	}
}

func TestRedisPresence(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	a := mustOpen(t, srv, prefix, store.Options{})
	b := mustOpen(t, srv, prefix, store.Options{})
	ctx := t.Context()
	if n, err := a.ClusterClients(ctx); err != nil || n != 0 {
		t.Fatalf("no reports: cluster clients = %d, %v; want 0", n, err)
	}
	for _, r := range []struct {
		s    *Store
		inst string
		n    int
	}{{a, "a", 2}, {b, "b", 5}, {a, "a", 3}} {
		if err := r.s.ReportClients(ctx, r.inst, r.n); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.ClusterClients(ctx); err != nil || n != 8 {
		t.Fatalf("cluster clients = %d, %v; want 8", n, err)
	}
	// An instance that stops reporting drops out after the TTL.
	b.presenceTTL = 50 * time.Millisecond
	if err := b.ReportClients(ctx, "b", 5); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := a.ClusterClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster clients = %d long after b expired, want 3", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.ReportClients(ctx, "a", -1); err == nil {
		t.Fatal("negative count accepted")
	}
}

func TestRedisCloseEndsTailAndRefusesCalls(t *testing.T) {
	srv := redistest.Start(t)
	s := mustOpen(t, srv, testPrefix(t), store.Options{OnAppend: func([]store.Fact) {}})
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return: the tail loop kept blocking")
	}
	for name, err := range map[string]error{
		"ping":  s.Ping(t.Context()),
		"stats": func() error { _, err := s.Stats(t.Context()); return err }(),
		"get":   func() error { _, err := s.Get(t.Context(), "x"); return err }(),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after close: err = %v, want ErrClosed", name, err)
		}
	}
}

// expectUnavailable checks that every call fails with ErrUnavailable by
// itself: the caller's context has no deadline, so only the store's own
// timeouts (redisOpTimeout, under the two seconds the HTTP layer has to
// answer 503) can end a call to a Redis that does not answer. The bound
// here only tells such a call from one that hangs, with room for a loaded
// machine.
func expectUnavailable(t *testing.T, s *Store) {
	t.Helper()
	const hangBound = 15 * time.Second
	calls := map[string]func(context.Context) error{
		"append": func(ctx context.Context) error {
			_, err := s.Append(ctx, store.AppendRequest{Drafts: storetest.Drafts(1, "down")})
			return err
		},
		"range": func(ctx context.Context) error { _, err := s.Range(ctx, 0, 0, 10); return err },
		"stats": func(ctx context.Context) error { _, err := s.Stats(ctx); return err },
		"ping":  s.Ping,
	}
	for name, call := range calls {
		done := make(chan error, 1) // a hung call's goroutine must not block
		go func() { done <- call(context.WithoutCancel(t.Context())) }()
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with redis down: err = %v, want ErrUnavailable", name, err)
			}
		case <-time.After(hangBound):
			t.Errorf("%s with redis down has not returned after %v: the store does not bound its calls", name, hangBound)
		}
	}
}

// appendEventually retries an append until Redis is back (it is reloading
// its AOF right after a restart), and fails the test after a while.
func appendEventually(t *testing.T, s store.Store, req store.AppendRequest) store.AppendResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := s.Append(t.Context(), req)
		if err == nil {
			return res
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("append after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertContiguous(t *testing.T, seqs []uint64, n int) {
	t.Helper()
	if len(seqs) != n {
		t.Fatalf("reported %d facts (%v), want %d", len(seqs), seqs, n)
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("reported seqs %v: #%d is %d, want %d", seqs, i, seq, i+1)
		}
	}
}

// journal records what a tail loop reports, resets included, in order.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) onAppend(fs []store.Fact) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, f := range fs {
		j.entries = append(j.entries, fmt.Sprintf("%d:%s", f.Seq, f.Info))
	}
}

func (j *journal) onReset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "reset")
}

func (j *journal) snapshot() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (j *journal) waitFor(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := j.snapshot()
		if len(got) >= len(want) || time.Now().After(deadline) {
			if !slices.Equal(got, want) {
				t.Fatalf("reported %q, want %q", got, want)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForReset waits until the tail has reported the last of fresh, then
// checks it reported before, a reset, and a tail end of fresh: each fact
// once, in order, none of before again.
func (j *journal) waitForReset(t *testing.T, before, fresh []string) {
	t.Helper()
	last := fresh[len(fresh)-1]
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for {
		got = j.snapshot()
		if len(got) > 0 && got[len(got)-1] == last || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := len(before)
	ok := len(got) > n+1 && slices.Equal(got[:n], before) && got[n] == "reset"
	if ok {
		after := got[n+1:] // not empty: it ends with last
		ok = len(after) <= len(fresh) && slices.Equal(after, fresh[len(fresh)-len(after):])
	}
	if !ok {
		t.Fatalf("reported %q, want %q, a reset, then the end of %q", got, before, fresh)
	}
}

// tailWithFiveFacts starts a Redis, a store whose tail loop (idle checks
// every 100 ms) reports to a journal, and a second store as the writer,
// which appends five facts; it returns once the tail reported them.
func tailWithFiveFacts(t *testing.T) (srv *redistest.Server, s *Store, writer *Store, j *journal, want []string) {
	t.Helper()
	srv = redistest.Start(t)
	j = &journal{}
	s, err := open(srv.URL(), store.Options{OnAppend: j.onAppend, OnReset: j.onReset}, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	writer = mustOpen(t, srv, DefaultKeyPrefix, store.Options{})
	storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(5, "old"), Batch: true})
	want = []string{"1:old 0", "2:old 1", "3:old 2", "4:old 3", "5:old 4"}
	j.waitFor(t, want)
	return srv, s, writer, j, want
}

// TestRedisTailStartsOverWhenRedisLosesItsData restarts Redis without its
// data. Seqs go on from 6, above those the instances saw, and the tail
// must not wait for ever for facts of a stream that is gone: it reports a
// reset, then the facts committed after it.
func TestRedisTailStartsOverWhenRedisLosesItsData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after int // facts committed after the loss, before the check
	}{
		// None: the tail finds out while idle.
		{"noticed while idle", 0},
		// Some: the tail may read one of another epoch first.
		{"noticed on a new fact", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, writer, j, want := tailWithFiveFacts(t)

			srv.RestartEmpty()
			if tc.after == 0 {
				eventuallyTrue(t, "a reset", func() bool { return slices.Contains(j.snapshot(), "reset") })
			} else {
				appendEventually(t, writer, store.AppendRequest{Drafts: storetest.Drafts(tc.after, "new"), Batch: true})
			}
			res := appendEventually(t, writer, store.AppendRequest{Drafts: storetest.Drafts(1, "next")})
			if got, want := res.Facts[0].Seq, uint64(5+tc.after+1); got != want {
				t.Fatalf("seq after the loss = %d, want %d", got, want)
			}
			// The tail may notice before or after those were appended:
			// after the reset it reports the facts past the head it found
			// then, some of them or none. A fact appended after the reset
			// is reported in any case.
			eventuallyTrue(t, "a reset", func() bool { return slices.Contains(j.snapshot(), "reset") })
			storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(1, "later")})
			var fresh []string
			for i := range tc.after {
				fresh = append(fresh, fmt.Sprintf("%d:new %d", 5+i+1, i))
			}
			fresh = append(fresh, fmt.Sprintf("%d:next 0", 5+tc.after+1), fmt.Sprintf("%d:later 0", 5+tc.after+2))
			j.waitForReset(t, want, fresh)
		})
	}
}

// TestRedisTailStartsOverWhenRedisGoesBack loses the newest facts but not
// the epoch, as a Redis restored from an older copy of its data would. The
// tail finds the head behind the seqs it saw while idle and starts over;
// the next fact gets seq 6, not 3 once more.
func TestRedisTailStartsOverWhenRedisGoesBack(t *testing.T) {
	srv, s, writer, j, want := tailWithFiveFacts(t)

	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer admin.Close()
	// The stream as it was after seq 2. (XDEL alone would not do: a stream
	// keeps its last id, and a restored one would not.)
	kept, err := admin.XRange(t.Context(), s.keys.stream, "-", "2-0").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Del(t.Context(), s.keys.stream).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range kept {
		if err := admin.XAdd(t.Context(), &goredis.XAddArgs{Stream: s.keys.stream, ID: m.ID, Values: m.Values}).Err(); err != nil {
			t.Fatalf("restore fact %s: %v", m.ID, err)
		}
	}
	j.waitFor(t, append(want, "reset"))
	storetest.MustAppend(t, writer, store.AppendRequest{Drafts: storetest.Drafts(1, "next")})
	j.waitFor(t, append(want, "reset", "6:next 0"))
	if st, err := writer.Stats(t.Context()); err != nil || st.Count != 3 || st.FirstSeq != 1 || st.LastSeq != 6 {
		t.Fatalf("stats = %+v, %v; want the 2 facts kept and seq 6", st, err)
	}
}

// Two instances share one Redis: a deletion made through one reaches the
// OnDelete of both, after the fact itself; the count trim runs once, so
// the removals they report add up to the facts removed.
func TestRedisRemovalsAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	type instance struct {
		s   *Store
		rec *storetest.Recorder
		rm  *storetest.Removals
	}
	var inst [2]instance
	for i := range inst {
		rec, rm := &storetest.Recorder{}, &storetest.Removals{}
		inst[i] = instance{mustOpen(t, srv, prefix, store.Options{RetentionFacts: 10,
			OnAppend: rec.OnAppend, OnDelete: rm.OnDelete, OnRemove: rm.OnRemove}), rec, rm}
	}
	var wg sync.WaitGroup
	for i := range inst {
		wg.Go(func() {
			for range 25 {
				if _, err := inst[i].s.Append(t.Context(), store.AppendRequest{Drafts: storetest.Drafts(1, "shared")}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	storetest.CheckKept(t, inst[0].s, 50, storetest.SeqRange(41, 50), nil)
	if a, b := inst[0].rm.Count(store.RemovedRetention), inst[1].rm.Count(store.RemovedRetention); a+b != 40 {
		t.Fatalf("instances reported %d + %d removals for retention, want 40 in all", a, b)
	}
	last, err := inst[0].s.Range(t.Context(), 49, 0, 1)
	if err != nil || len(last) != 1 {
		t.Fatalf("range = %v, %v", last, err)
	}
	if _, err := inst[1].s.Delete(t.Context(), last[0].ID); err != nil {
		t.Fatal(err)
	}
	for i := range inst {
		storetest.Eventually(t, "the deletion reaches every instance", func() bool { return len(inst[i].rm.Deleted()) == 1 })
		if got := inst[i].rm.Deleted(); got[0] != 50 {
			t.Fatalf("instance %d: OnDelete got seq %d, want 50", i, got[0])
		}
		if got := inst[i].rec.WaitSeqs(t, 50); len(got) != 50 {
			t.Fatalf("instance %d: OnAppend reported %d facts, want 50", i, len(got))
		}
	}
	if a, b := inst[0].rm.Count(store.RemovedDeleted), inst[1].rm.Count(store.RemovedDeleted); a != 0 || b != 1 {
		t.Fatalf("deletions counted %d and %d, want only by the instance that deleted", a, b)
	}
}

// A store opened with a retention age removes, at once, what is past it,
// whichever instance wrote it.
func TestRedisRetentionAppliesAtOpen(t *testing.T) {
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	clock := storetest.NewClock()
	w := mustOpen(t, srv, prefix, store.Options{Now: clock.Now})
	old := storetest.MustAppend(t, w, store.AppendRequest{Drafts: storetest.Drafts(3, "old"), Batch: true})
	clock.Advance(2 * time.Hour)
	storetest.MustAppend(t, w, store.AppendRequest{Drafts: storetest.Drafts(2, "young"), Batch: true})
	rm := &storetest.Removals{}
	s := mustOpen(t, srv, prefix, store.Options{Now: clock.Now, RetentionAge: time.Hour, SweepInterval: time.Hour, OnRemove: rm.OnRemove})
	storetest.Eventually(t, "the old facts are removed", func() bool { return rm.Count(store.RemovedRetention) == 3 })
	storetest.CheckKept(t, s, 5, []uint64{4, 5}, old.Facts)
}

// TestRedisReadBurstQueuesInsteadOfFailing: more reads of facts at once
// than the pool has connections (a whole instance's clients reconnecting,
// each reading its snapshot) wait for a read slot and all succeed, instead
// of outwaiting the pool's short timeout and answering ErrUnavailable.
func TestRedisReadBurstQueuesInsteadOfFailing(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(srv.URL()+"?pool_size=3", store.Options{KeyPrefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range 2 {
		storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1000, fmt.Sprint("burst ", i)), Batch: true})
	}
	const readers = 200
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			facts, err := s.Range(context.Background(), 0, 0, 2000)
			if err == nil && len(facts) != 2000 {
				err = fmt.Errorf("read %d facts, want 2000", len(facts))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	failed, first := 0, error(nil)
	for err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent reads failed, the first with: %v", failed, readers, first)
	}
}
