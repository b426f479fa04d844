package memory

import (
	"context"
	"fmt"
	"iter"

	"factstream/store"
)

// Import loads exported facts into this empty store, keeping their ids,
// seqs, texts and times, all or nothing: it takes them all, checked,
// before the store holds any. It refuses a store that holds facts
// (store.ErrNotEmpty), seqs that do not strictly increase, an id seen
// twice (*store.DuplicateIDError) and an invalid fact, and stops at the
// first error facts yields. The facts are not reported to OnAppend.
//
// The memory store indexes facts by seq, so it takes only seqs 1, 2, 3…
// without holes.
func (m *Store) Import(ctx context.Context, facts iter.Seq2[store.Fact, error]) error {
	if st, _ := m.Stats(ctx); st.LastSeq != 0 {
		return store.ErrNotEmpty
	}
	var all []store.Fact
	seen := make(map[string]struct{})
	var prev store.Fact
	for f, err := range store.Checked(facts) {
		if err != nil {
			return err
		}
		if f.Seq != prev.Seq+1 {
			return fmt.Errorf("fact seq %d after seq %d: the memory store takes no holes in seqs", f.Seq, prev.Seq)
		}
		if _, dup := seen[f.ID]; dup {
			return &store.DuplicateIDError{ID: f.ID, Seq: f.Seq}
		}
		seen[f.ID] = struct{}{}
		prev = f
		all = append(all, f)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.ErrClosed
	}
	if m.facts.last() != 0 {
		return store.ErrNotEmpty
	}
	for _, f := range all {
		m.index(f)
		m.facts.add(f)
	}
	return nil
}
