package bolt

import (
	"testing"

	"factstream/store"
	"factstream/store/storetest"
)

func TestBoltImportContract(t *testing.T) {
	storetest.RunImport(t, func(t *testing.T, opts store.Options) store.Store {
		return mustOpen(t, t.TempDir()+"/facts.db", opts)
	})
}

// TestBoltImportSurvivesReopen: imported facts are in the file, and the
// file goes on numbering after them.
func TestBoltImportSurvivesReopen(t *testing.T) {
	path := t.TempDir() + "/facts.db"
	s := mustOpen(t, path, store.Options{})
	want := storetest.ExportedFacts(5)
	if err := s.Import(t.Context(), storetest.Facts(want, nil)); err != nil {
		t.Fatalf("import: %v", err)
	}
	s.Close()
	s = mustOpen(t, path, store.Options{})
	got, err := s.Range(t.Context(), 0, 0, 10)
	if err != nil || len(got) != 5 || got[4] != want[4] {
		t.Fatalf("after reopening: %v, %v; want the 5 imported facts", got, err)
	}
	if res := storetest.MustAppend(t, s, store.AppendRequest{Drafts: storetest.Drafts(1, "next")}); res.Facts[0].Seq != 6 {
		t.Fatalf("append after reopening got seq %d, want 6", res.Facts[0].Seq)
	}
}
