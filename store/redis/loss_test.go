package redis

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

// twoTailsWithFiveFacts starts a Redis and two stores on it whose tail
// loops (idle checks every 100 ms) report to journals; the first commits
// three facts, the second two, and it returns once both tails reported
// all five.
func twoTailsWithFiveFacts(t *testing.T) (srv *redistest.Server, stores [2]*Store, journals [2]*journal, want []string) {
	t.Helper()
	srv = redistest.Start(t)
	for i := range stores {
		journals[i] = &journal{}
		s, err := open(srv.URL(), store.Options{OnAppend: journals[i].onAppend, OnReset: journals[i].onReset}, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	storetest.MustAppend(t, stores[0], store.AppendRequest{Drafts: storetest.Drafts(3, "old a"), Batch: true})
	storetest.MustAppend(t, stores[1], store.AppendRequest{Drafts: storetest.Drafts(2, "old b"), Batch: true})
	want = []string{"1:old a 0", "2:old a 1", "3:old a 2", "4:old b 0", "5:old b 1"}
	for _, j := range journals {
		j.waitFor(t, want)
	}
	return srv, stores, journals, want
}

// statsEventually reads s's stats, retrying while Redis is coming back.
func statsEventually(t *testing.T, s *Store) store.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.Stats(t.Context())
		if err == nil {
			return st
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("stats after the loss: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func flushAll(t *testing.T, srv *redistest.Server) {
	t.Helper()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer admin.Close()
	if err := admin.FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
}

// TestRedisSeqsGoOnAfterRedisLosesItsData empties Redis under two
// instances that have seen seqs up to 5. Seqs never go backwards: the
// facts committed after the loss, by either instance, get 6 onwards,
// gapless and in commit order, so an id from before the loss is older
// than every fact the store keeps instead of naming a new one; the last
// seq the stats report never drops below 5; each tail reports the reset,
// then the facts after it.
func TestRedisSeqsGoOnAfterRedisLosesItsData(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(*testing.T, *redistest.Server)
	}{
		{"FLUSHALL", flushAll},
		{"restart without the AOF", func(_ *testing.T, srv *redistest.Server) { srv.RestartEmpty() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, stores, journals, want := twoTailsWithFiveFacts(t)
			a, b := stores[0], stores[1]

			tc.lose(t, srv)
			for i, s := range stores {
				if st := statsEventually(t, s); st.LastSeq != 5 || st.Count != 0 {
					t.Fatalf("instance %d: stats right after the loss = %+v, want no fact and last seq 5", i, st)
				}
			}
			var got []uint64
			for _, step := range []struct {
				s *Store
				n int
			}{{b, 1}, {a, 2}, {b, 1}, {a, 1}} {
				res := appendEventually(t, step.s, store.AppendRequest{Drafts: storetest.Drafts(step.n, "new"), Batch: step.n > 1})
				for _, f := range res.Facts {
					got = append(got, f.Seq)
				}
			}
			if want := []uint64{6, 7, 8, 9, 10}; !slices.Equal(got, want) {
				t.Fatalf("seqs after the loss = %v, want %v", got, want)
			}
			for i, s := range stores {
				st := statsEventually(t, s)
				if st.Count != 5 || st.FirstSeq != 6 || st.LastSeq != 10 {
					t.Fatalf("instance %d: stats = %+v, want 5 facts, seqs 6 to 10", i, st)
				}
			}

			// Each tail resets, and reports from the head it found then:
			// a fact committed after both resets reaches both.
			for i, j := range journals {
				eventuallyTrue(t, fmt.Sprintf("a reset on instance %d", i), func() bool { return slices.Contains(j.snapshot(), "reset") })
			}
			storetest.MustAppend(t, a, store.AppendRequest{Drafts: storetest.Drafts(1, "later")})
			fresh := []string{"6:new 0", "7:new 0", "8:new 1", "9:new 0", "10:new 0", "11:later 0"}
			for _, j := range journals {
				j.waitForReset(t, want, fresh)
			}
		})
	}
}

// TestRedisFirstToNoticeALossSetsTheNumbering empties Redis under an idle
// instance that has seen seqs up to 5. Its tail notices the loss, and
// from then on the numbering it set holds for everyone: a store opened
// afterwards, which never saw a fact, reports last seq 5 and appends 6.
func TestRedisFirstToNoticeALossSetsTheNumbering(t *testing.T) {
	srv, stores, journals, _ := twoTailsWithFiveFacts(t)
	flushAll(t, srv)
	eventuallyTrue(t, "a reset", func() bool { return slices.Contains(journals[0].snapshot(), "reset") })
	stores[0].Close()
	stores[1].Close()

	late := mustOpen(t, srv, DefaultKeyPrefix, store.Options{})
	if st, err := late.Stats(t.Context()); err != nil || st.LastSeq != 5 || st.Count != 0 {
		t.Fatalf("stats of a store opened after the loss = %+v, %v; want no fact and last seq 5", st, err)
	}
	res := storetest.MustAppend(t, late, store.AppendRequest{Drafts: storetest.Drafts(1, "new")})
	if got := res.Facts[0].Seq; got != 6 {
		t.Fatalf("first seq after the loss = %d, want 6", got)
	}
}
