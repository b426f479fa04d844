//go:build unix

package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"factstream/internal/redistest"
	"factstream/store"
	"factstream/store/storetest"
)

// TestRedisFailsFastWhenHung covers a Redis that accepts connections but does
// not answer (a hung process or a partition): the read timeouts, not a
// refused connection, must end the calls.
func TestRedisFailsFastWhenHung(t *testing.T) {
	srv := redistest.Start(t)
	rec := &storetest.Recorder{}
	s := mustOpen(t, srv, testPrefix(t), store.Options{OnAppend: rec.OnAppend})
	storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "before")})
	rec.WaitSeqs(t, 1)
	srv.Freeze()
	expectUnavailable(t, s)
	srv.Thaw()
	appendEventually(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "after")})
	// An append that timed out may still have reached Redis and commit once
	// it wakes up: a 503 means "not known to be stored", never "stored".
	// What must hold is that the tail reports whatever was committed, once
	// and in order.
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq < 2 || st.LastSeq > 3 {
		t.Fatalf("stats after thaw = %+v, want 2 or 3 facts", st)
	}
	assertContiguous(t, rec.WaitSeqs(t, int(st.LastSeq)), int(st.LastSeq))
}

// TestRedisTrimMissedInAnOutageIsMadeGood: an append whose reply is lost
// (Redis hung while it ran) commits with no trim after it. The sweep makes
// the trim good as soon as Redis answers, not at its next interval.
func TestRedisTrimMissedInAnOutageIsMadeGood(t *testing.T) {
	srv := redistest.Start(t)
	s := mustOpen(t, srv, testPrefix(t), store.Options{RetentionFacts: 10, SweepInterval: time.Hour})
	storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(10, "kept"), Batch: true})
	srv.Freeze()
	_, err := s.Append(context.WithoutCancel(t.Context()), store.AppendRequest{Drafts: storetest.Drafts(5, "reply lost"), Batch: true})
	srv.Thaw()
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("append to a hung Redis: err = %v, want ErrOutcomeUnknown", err)
	}
	// Redis ran the call when it woke: 15 facts committed, 10 kept.
	storetest.Eventually(t, "the missed trim is made good", func() bool {
		st, err := s.Stats(t.Context())
		return err == nil && st.LastSeq == 15 && st.Count == 10 && st.FirstSeq == 6
	})
}
