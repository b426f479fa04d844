// Package storetest is the contract every store backend honours, as a test
// suite each backend's own tests run against it:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts store.Options) store.Store { ... })
//	}
//
// Each behaviour is one subtest on a fresh store; a new behaviour of the
// contract is one more entry in cases.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"factstream/store"
)

// Opener opens a fresh, empty store for t, with opts, and closes it when t
// ends.
type Opener func(t *testing.T, opts store.Options) store.Store

// Run runs every case of the contract against the stores open returns, each
// as a subtest.
func Run(t *testing.T, open Opener) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// cases are the behaviours of the contract, one subtest each.
var cases = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"EmptyStore", emptyStore},
	{"AppendAssignsSeqIDAndTime", appendAssignsSeqIDAndTime},
	{"BatchIsContiguous", batchIsContiguous},
	{"RangeAndBefore", rangeAndBefore},
	{"ConcurrentAppendsAreGaplessAndReportedInOrder", concurrentAppendsAreGaplessAndReportedInOrder},
	{"IdempotentReplay", idempotentReplay},
	{"ConcurrentSameKeyStoresOnce", concurrentSameKeyStoresOnce},
	{"AppendAfterCloseFails", appendAfterCloseFails},
	{"RetentionByCount", retentionByCount},
	{"RetentionByAge", retentionByAge},
	{"Delete", deleteFact},
	{"LastSeqOutlivesEveryFact", lastSeqOutlivesEveryFact},
	{"IdempotencyKeyGoesWithItsFacts", idempotencyKeyGoesWithItsFacts},
}

// Recorder collects what a store reports through OnAppend.
type Recorder struct {
	mu    sync.Mutex
	facts []store.Fact
}

// OnAppend is the function to pass as Options.OnAppend.
func (r *Recorder) OnAppend(fs []store.Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.facts = append(r.facts, fs...)
}

// Seqs returns the seqs reported so far, in the order reported.
func (r *Recorder) Seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.facts))
	for i, f := range r.facts {
		out[i] = f.Seq
	}
	return out
}

// WaitSeqs polls until n facts have been reported, or five seconds have
// passed, and returns the seqs reported: a Redis store reports appends from
// its tail loop, a little after Append returns.
func (r *Recorder) WaitSeqs(tb testing.TB, n int) []uint64 {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.Seqs()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Drafts returns n valid drafts whose info starts with prefix.
func Drafts(n int, prefix string) []store.Draft {
	out := make([]store.Draft, n)
	for i := range out {
		out[i] = store.Draft{Info: fmt.Sprintf("%s %d", prefix, i), Source: "https://example.com/" + prefix}
	}
	return out
}

// MustAppend appends req and fails tb on an error. Call it from the test's
// own goroutine only.
func MustAppend(tb testing.TB, s store.Store, req store.AppendRequest) store.AppendResult {
	tb.Helper()
	res, err := s.Append(context.Background(), req)
	if err != nil {
		tb.Fatalf("append: %v", err)
	}
	return res
}

// Idem is an idempotency key for a request with the given body.
func Idem(key, body string) *store.Idempotency {
	return &store.Idempotency{Key: key, Hash: sha256.Sum256([]byte(body))}
}

func emptyStore(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	st, err := s.Stats(ctx)
	if err != nil || st.Count != 0 || st.LastSeq != 0 {
		t.Fatalf("stats = %+v, %v; want zero", st, err)
	}
	if got, err := s.Range(ctx, 0, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("range = %v, %v; want empty", got, err)
	}
	if _, err := s.Get(ctx, uuid.Must(uuid.NewV7()).String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown id: err = %v, want store.ErrNotFound", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func appendAssignsSeqIDAndTime(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	before := time.Now().Add(-time.Second)
	for i := 1; i <= 3; i++ {
		res := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "single")})
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
}

func batchIsContiguous(t *testing.T, open Opener) {
	s := open(t, store.Options{})
	MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "first")})
	res := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(5, "batch"), Batch: true})
	if len(res.Facts) != 5 || !res.Batch {
		t.Fatalf("batch result = %d facts, batch=%v", len(res.Facts), res.Batch)
	}
	for i, f := range res.Facts {
		if got, want := f.Seq, uint64(i+2); got != want {
			t.Fatalf("batch fact %d seq = %d, want %d", i, got, want)
		}
	}
}

func rangeAndBefore(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	MustAppend(t, s, store.AppendRequest{Drafts: Drafts(10, "r"), Batch: true})
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
}

func concurrentAppendsAreGaplessAndReportedInOrder(t *testing.T, open Opener) {
	ctx := context.Background()
	rec := &Recorder{}
	s := open(t, store.Options{OnAppend: rec.OnAppend})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := 1 + (w+i)%3
				if _, err := s.Append(ctx, store.AppendRequest{Drafts: Drafts(n, "c"), Batch: n > 1}); err != nil {
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
	seqs := rec.WaitSeqs(t, int(st.LastSeq))
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
}

func idempotentReplay(t *testing.T, open Opener) {
	ctx := context.Background()
	rec := &Recorder{}
	s := open(t, store.Options{OnAppend: rec.OnAppend})
	first := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(2, "idem"), Batch: true, Idem: Idem("k1", "body")})
	again := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(2, "idem"), Batch: true, Idem: Idem("k1", "body")})
	if !again.Replayed || first.Replayed || !again.Batch {
		t.Fatalf("replayed: first=%v again=%v batch=%v", first.Replayed, again.Replayed, again.Batch)
	}
	if len(again.Facts) != 2 || again.Facts[0].ID != first.Facts[0].ID || again.Facts[1].Seq != first.Facts[1].Seq {
		t.Fatalf("replay = %+v, want %+v", again.Facts, first.Facts)
	}
	if _, err := s.Append(ctx, store.AppendRequest{Drafts: Drafts(1, "other"), Idem: Idem("k1", "other body")}); !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other body: err = %v, want store.ErrIdempotencyMismatch", err)
	}
	if st, _ := s.Stats(ctx); st.Count != 2 {
		t.Fatalf("count = %d after replays, want 2", st.Count)
	}
	if got := rec.WaitSeqs(t, 2); len(got) != 2 {
		t.Fatalf("reported %v, want the first append only", got)
	}
}

func concurrentSameKeyStoresOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	var wg sync.WaitGroup
	ids := make(chan string, 16)
	for range 16 {
		wg.Go(func() {
			res, err := s.Append(ctx, store.AppendRequest{Drafts: Drafts(1, "same"), Idem: Idem("shared", "b")})
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
}

func appendAfterCloseFails(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := s.Append(ctx, store.AppendRequest{Drafts: Drafts(1, "late")}); err == nil {
		t.Fatal("append after close succeeded")
	}
}

// Clock is a fake clock for Options.Now: it stands still until advanced.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at the current time.
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now is the function to pass as Options.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Removals collects what a store reports through OnRemove and OnDelete.
type Removals struct {
	mu      sync.Mutex
	n       map[store.RemovalReason]int
	deleted []store.Fact
}

// OnRemove is the function to pass as Options.OnRemove.
func (r *Removals) OnRemove(reason store.RemovalReason, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[store.RemovalReason]int{}
	}
	r.n[reason] += n
}

// OnDelete is the function to pass as Options.OnDelete.
func (r *Removals) OnDelete(f store.Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, f)
}

// Count returns how many removals for reason were reported.
func (r *Removals) Count(reason store.RemovalReason) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// Deleted returns the seqs reported to OnDelete, in order.
func (r *Removals) Deleted() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.deleted))
	for i, f := range r.deleted {
		out[i] = f.Seq
	}
	return out
}

// Eventually polls cond until it holds or five seconds have passed: a
// sweep runs on its own ticker, a Redis store reports from its tail loop.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still not true after 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// CheckKept checks that s keeps exactly the facts with the seqs want, in
// Stats, Range (also in pages of 2), Before and Get, and that every fact of
// gone answers ErrNotFound.
func CheckKept(tb testing.TB, s store.Store, lastSeq uint64, want []uint64, gone []store.Fact) {
	tb.Helper()
	ctx := context.Background()
	st, err := s.Stats(ctx)
	wantFirst := uint64(0)
	if len(want) > 0 {
		wantFirst = want[0]
	}
	if err != nil || st.Count != uint64(len(want)) || st.FirstSeq != wantFirst || st.LastSeq != lastSeq {
		tb.Fatalf("stats = %+v, %v; want count %d, first %d, last %d", st, err, len(want), wantFirst, lastSeq)
	}
	all, err := s.Range(ctx, 0, 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	if got := seqsOf(all); fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("range = %v, want %v", got, want)
	}
	var paged []uint64
	for after := uint64(0); ; {
		page, err := s.Range(ctx, after, 0, 2)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, seqsOf(page)...)
		after = page[len(page)-1].Seq
	}
	if fmt.Sprint(paged) != fmt.Sprint(want) {
		tb.Fatalf("range in pages of 2 = %v, want %v", paged, want)
	}
	desc, err := s.Before(ctx, 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	got := seqsOf(desc)
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("before, reversed = %v, want %v", got, want)
	}
	if len(want) > 1 {
		if top, err := s.Before(ctx, want[len(want)-1], 1); err != nil || len(top) != 1 || top[0].Seq != want[len(want)-2] {
			tb.Fatalf("before(%d, 1) = %v, %v; want seq %d", want[len(want)-1], seqsOf(top), err, want[len(want)-2])
		}
	}
	for _, f := range all {
		if g, err := s.Get(ctx, f.ID); err != nil || g.Seq != f.Seq {
			tb.Fatalf("get(%s) = %+v, %v; want seq %d", f.ID, g, err, f.Seq)
		}
	}
	for _, f := range gone {
		if _, err := s.Get(ctx, f.ID); !errors.Is(err, store.ErrNotFound) {
			tb.Fatalf("get removed fact %d: err = %v, want store.ErrNotFound", f.Seq, err)
		}
	}
}

func seqsOf(fs []store.Fact) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

// SeqRange returns the seqs lo to hi.
func SeqRange(lo, hi uint64) []uint64 {
	var out []uint64
	for seq := lo; seq <= hi; seq++ {
		out = append(out, seq)
	}
	return out
}

func retentionByCount(t *testing.T, open Opener) {
	rm := &Removals{}
	s := open(t, store.Options{RetentionFacts: 5, OnRemove: rm.OnRemove})
	first := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(3, "old"), Batch: true})
	CheckKept(t, s, 3, SeqRange(1, 3), nil)
	MustAppend(t, s, store.AppendRequest{Drafts: Drafts(4, "new"), Batch: true})
	CheckKept(t, s, 7, SeqRange(3, 7), first.Facts[:2])
	for range 6 {
		MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "more")})
	}
	CheckKept(t, s, 13, SeqRange(9, 13), first.Facts)
	if got := rm.Count(store.RemovedRetention); got != 8 {
		t.Fatalf("reported %d removals for retention, want 8", got)
	}
	if got := rm.Count(store.RemovedDeleted); got != 0 {
		t.Fatalf("reported %d deletions, want 0", got)
	}
}

func retentionByAge(t *testing.T, open Opener) {
	clock := NewClock()
	rm := &Removals{}
	s := open(t, store.Options{RetentionAge: time.Hour, SweepInterval: 5 * time.Millisecond, Now: clock.Now, OnRemove: rm.OnRemove})
	old := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(3, "old"), Batch: true})
	clock.Advance(30 * time.Minute)
	young := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(2, "young"), Batch: true})
	if got := young.Facts[0].CreatedAt; !got.Equal(clock.Now().UTC().Truncate(time.Microsecond)) {
		t.Fatalf("created_at = %v, want the store's clock, %v", got, clock.Now())
	}
	CheckKept(t, s, 5, SeqRange(1, 5), nil)
	clock.Advance(40 * time.Minute) // old: 70 minutes, young: 40
	Eventually(t, "the facts older than an hour are removed", func() bool {
		st, err := s.Stats(context.Background())
		return err == nil && st.Count == 2
	})
	CheckKept(t, s, 5, SeqRange(4, 5), old.Facts)
	clock.Advance(time.Hour)
	Eventually(t, "every fact is removed", func() bool {
		st, err := s.Stats(context.Background())
		return err == nil && st.Count == 0
	})
	CheckKept(t, s, 5, nil, append(old.Facts, young.Facts...))
	// A sweep reports what it removed once it has committed.
	Eventually(t, "5 removals for retention reported", func() bool { return rm.Count(store.RemovedRetention) == 5 })
	next := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "next")})
	if got := next.Facts[0].Seq; got != 6 {
		t.Fatalf("seq after every fact expired = %d, want 6", got)
	}
	CheckKept(t, s, 6, []uint64{6}, nil)
}

func deleteFact(t *testing.T, open Opener) {
	ctx := context.Background()
	rec, rm := &Recorder{}, &Removals{}
	s := open(t, store.Options{OnAppend: rec.OnAppend, OnDelete: rm.OnDelete, OnRemove: rm.OnRemove})
	facts := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(5, "d"), Batch: true}).Facts
	rec.WaitSeqs(t, 5)
	got, err := s.Delete(ctx, facts[2].ID)
	if err != nil || got.ID != facts[2].ID || got.Seq != 3 || got.Info != facts[2].Info {
		t.Fatalf("delete = %+v, %v; want %+v", got, err, facts[2])
	}
	CheckKept(t, s, 5, []uint64{1, 2, 4, 5}, facts[2:3])
	if _, err := s.Delete(ctx, facts[2].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete again: err = %v, want store.ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, uuid.Must(uuid.NewV7()).String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown id: err = %v, want store.ErrNotFound", err)
	}
	for _, i := range []int{0, 4} { // the first and the newest
		if _, err := s.Delete(ctx, facts[i].ID); err != nil {
			t.Fatalf("delete seq %d: %v", facts[i].Seq, err)
		}
	}
	CheckKept(t, s, 5, []uint64{2, 4}, []store.Fact{facts[0], facts[2], facts[4]})
	next := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "next")})
	if next.Facts[0].Seq != 6 {
		t.Fatalf("seq after deleting the newest = %d, want 6", next.Facts[0].Seq)
	}
	Eventually(t, "three deletions reported", func() bool { return len(rm.Deleted()) == 3 })
	if got := fmt.Sprint(rm.Deleted()); got != "[3 1 5]" {
		t.Fatalf("OnDelete reported seqs %s, want [3 1 5]", got)
	}
	if got := rm.Count(store.RemovedDeleted); got != 3 {
		t.Fatalf("reported %d deletions, want 3", got)
	}
	if got := fmt.Sprint(rec.WaitSeqs(t, 6)); got != "[1 2 3 4 5 6]" {
		t.Fatalf("OnAppend reported %s, want every append once", got)
	}
}

func lastSeqOutlivesEveryFact(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{RetentionFacts: 2})
	facts := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(4, "e"), Batch: true}).Facts
	for _, f := range facts[2:] {
		if _, err := s.Delete(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	CheckKept(t, s, 4, nil, facts)
	next := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(3, "next"), Batch: true})
	if next.Facts[0].Seq != 5 {
		t.Fatalf("seq after every fact went = %d, want 5", next.Facts[0].Seq)
	}
	CheckKept(t, s, 7, []uint64{6, 7}, append(facts, next.Facts[0]))
}

func idempotencyKeyGoesWithItsFacts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	req := store.AppendRequest{Drafts: Drafts(2, "k"), Batch: true, Idem: Idem("gone", "body")}
	first := MustAppend(t, s, req)
	if _, err := s.Delete(ctx, first.Facts[1].ID); err != nil {
		t.Fatal(err)
	}
	again := MustAppend(t, s, req)
	if again.Replayed || again.Facts[0].Seq != 3 {
		t.Fatalf("the key of a deleted fact replayed %+v, want a new append at seq 3", again)
	}
	if third := MustAppend(t, s, req); !third.Replayed || third.Facts[0].ID != again.Facts[0].ID {
		t.Fatalf("the key's new append is not replayed: %+v", third)
	}
	CheckKept(t, s, 4, []uint64{1, 3, 4}, first.Facts[1:])
}
