package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"factstream/store"
)

// Importer is a store that loads exported facts.
type Importer interface {
	Import(ctx context.Context, facts iter.Seq2[store.Fact, error]) error
}

// RunImport runs the import contract against the stores open returns,
// which must implement Importer, each case as a subtest.
func RunImport(t *testing.T, open Opener) {
	for _, c := range importCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

var importCases = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"ImportKeepsEveryField", importKeepsEveryField},
	{"ImportIntoNonEmptyStoreFails", importIntoNonEmptyStoreFails},
	{"ImportIsAllOrNothing", importIsAllOrNothing},
}

// ExportedFacts returns n valid facts with seqs 1 to n, as an export of
// another store would hold them: UUIDv7 ids, times in the past, some
// without a source.
func ExportedFacts(n int) []store.Fact {
	base := time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)
	out := make([]store.Fact, n)
	for i := range out {
		src := fmt.Sprintf("https://example.com/%d?q=<&>", i)
		if i%3 == 0 {
			src = ""
		}
		out[i] = store.Fact{
			ID:        uuid.Must(uuid.NewV7()).String(),
			Seq:       uint64(i + 1),
			Info:      fmt.Sprintf("imported fact %d: \"quoted\", tab\there, 🦈", i),
			Source:    src,
			CreatedAt: base.Add(time.Duration(i) * 1234567 * time.Microsecond),
		}
	}
	return out
}

// Facts yields facts, then err if it is not nil.
func Facts(facts []store.Fact, err error) iter.Seq2[store.Fact, error] {
	return func(yield func(store.Fact, error) bool) {
		for _, f := range facts {
			if !yield(f, nil) {
				return
			}
		}
		if err != nil {
			yield(store.Fact{}, err)
		}
	}
}

func importer(t *testing.T, s store.Store) Importer {
	t.Helper()
	im, ok := s.(Importer)
	if !ok {
		t.Fatalf("%T does not implement Import", s)
	}
	return im
}

func importKeepsEveryField(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	want := ExportedFacts(25)
	// Ids need not grow with seqs (another store, another clock).
	want[3].ID, want[20].ID = want[20].ID, want[3].ID
	if err := importer(t, s).Import(ctx, Facts(want, nil)); err != nil {
		t.Fatalf("import: %v", err)
	}
	got, err := s.Range(ctx, 0, 0, 100)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("range after import = %v, %v;\nwant %v", got, err, want)
	}
	for _, f := range want {
		if g, err := s.Get(ctx, f.ID); err != nil || !reflect.DeepEqual(g, f) {
			t.Fatalf("get %s = %+v, %v; want %+v", f.ID, g, err, f)
		}
	}
	if before, err := s.Before(ctx, 0, 1); err != nil || len(before) != 1 || before[0] != want[24] {
		t.Fatalf("before(0, 1) = %v, %v; want the last imported fact", before, err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Count != 25 || st.LastSeq != 25 {
		t.Fatalf("stats = %+v, %v; want 25 facts up to seq 25", st, err)
	}
	next := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "after import")})
	if next.Facts[0].Seq != 26 {
		t.Fatalf("first append after the import got seq %d, want 26", next.Facts[0].Seq)
	}
}

func importIntoNonEmptyStoreFails(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, store.Options{})
	had := MustAppend(t, s, store.AppendRequest{Drafts: Drafts(1, "already here")}).Facts[0]
	err := importer(t, s).Import(ctx, Facts(ExportedFacts(3), nil))
	if !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("import into a store holding a fact: err = %v, want store.ErrNotEmpty", err)
	}
	got, err := s.Range(ctx, 0, 0, 10)
	if err != nil || len(got) != 1 || got[0] != had {
		t.Fatalf("after a refused import the store holds %v, %v; want only %v", got, err, had)
	}
}

// importIsAllOrNothing: whatever stops an import, after more facts than
// any backend writes at once, the store is left empty and can take a good
// import.
func importIsAllOrNothing(t *testing.T, open Opener) {
	const n = 12_000
	good := ExportedFacts(n)
	last := good[n-1]
	bad := errors.New("line 12001: not JSON")
	blank := last
	blank.Seq, blank.ID, blank.Info = n+1, uuid.New().String(), " "
	dup := last
	dup.Seq, dup.Info = n+1, "same id as the fact before"
	cases := []struct {
		name  string
		facts iter.Seq2[store.Fact, error]
		check func(error) bool
	}{
		{"the input fails", Facts(good, bad), func(err error) bool { return errors.Is(err, bad) }},
		{"a seq goes back", Facts(append(good[:n:n], withSeq(good[0], n-1)), nil), func(err error) bool { return err != nil }},
		{"an invalid fact", Facts(append(good[:n:n], blank), nil), func(err error) bool { return err != nil }},
		{"an id twice", Facts(append(good[:n:n], dup), nil), func(err error) bool {
			var d *store.DuplicateIDError
			return errors.As(err, &d) && d.ID == last.ID && d.Seq == n+1
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Options{})
			err := importer(t, s).Import(ctx, c.facts)
			if err == nil || !c.check(err) {
				t.Fatalf("import: err = %v, not the expected refusal", err)
			}
			if st, err := s.Stats(ctx); err != nil || st.Count != 0 || st.LastSeq != 0 {
				t.Fatalf("stats after a refused import = %+v, %v; want an empty store", st, err)
			}
			if _, err := s.Get(ctx, good[0].ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("get of the first fact after a refused import: err = %v, want store.ErrNotFound", err)
			}
			again := ExportedFacts(3)
			if err := importer(t, s).Import(ctx, Facts(again, nil)); err != nil {
				t.Fatalf("import into the store a refused import left: %v", err)
			}
			if got, err := s.Range(ctx, 0, 0, 10); err != nil || !reflect.DeepEqual(got, again) {
				t.Fatalf("range = %v, %v; want %v", got, err, again)
			}
		})
	}
}

func withSeq(f store.Fact, seq uint64) store.Fact {
	f.Seq, f.ID = seq, uuid.New().String()
	return f
}
