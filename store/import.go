package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrNotEmpty means a store asked to import facts already holds some: an
// import never mixes with what a store has.
var ErrNotEmpty = errors.New("the store is not empty")

// ParseFactLine reads one line of an export (the JSON of one fact, as
// every endpoint writes it) and checks it as the store would have made
// it: every field present, no other field, a canonical UUID, a seq of at
// least 1, a created_at with a time zone, and info and source as valid
// as a publish requires.
func ParseFactLine(line []byte) (Fact, error) {
	var v struct {
		ID        *string `json:"id"`
		Seq       *uint64 `json:"seq"`
		Info      *string `json:"info"`
		Source    *string `json:"source"`
		CreatedAt *string `json:"created_at"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return Fact{}, fmt.Errorf("not a fact in JSON: %w", err)
	}
	if dec.More() {
		return Fact{}, errors.New("more than one JSON value on the line")
	}
	var missing []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"id", v.ID != nil}, {"seq", v.Seq != nil}, {"info", v.Info != nil}, {"source", v.Source != nil}, {"created_at", v.CreatedAt != nil}} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Fact{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	at, err := time.Parse(time.RFC3339Nano, *v.CreatedAt)
	if err != nil {
		return Fact{}, fmt.Errorf("created_at: %w", err)
	}
	f := Fact{ID: *v.ID, Seq: *v.Seq, Info: *v.Info, Source: *v.Source, CreatedAt: at.UTC()}
	return f, f.Validate()
}

// Validate checks a fact as a store would have committed it, so that an
// imported fact is one the service could have stored.
func (f Fact) Validate() error {
	id, err := uuid.Parse(f.ID)
	if err != nil || id.String() != f.ID {
		return fmt.Errorf("id %q: must be a UUID in its canonical form", f.ID)
	}
	if f.Seq == 0 {
		return errors.New("seq: must be at least 1")
	}
	if f.CreatedAt.IsZero() {
		return errors.New("created_at: must be set")
	}
	d := Draft{Info: f.Info, Source: f.Source}
	if d.Normalize() != d {
		return errors.New("info and source: must not have surrounding white space")
	}
	if errs := d.Validate(""); len(errs) > 0 {
		return fmt.Errorf("%s: %s", errs[0].Field, errs[0].Detail)
	}
	return nil
}

// ImportOrder checks that next may follow prev (the zero Fact for the
// first) in an import: seqs strictly increase.
func ImportOrder(prev, next Fact) error {
	if next.Seq <= prev.Seq {
		return fmt.Errorf("seq %d does not follow seq %d: seqs must strictly increase", next.Seq, prev.Seq)
	}
	return nil
}

// Checked passes facts on as an import takes them: each one valid, with a
// seq above the one before. The first fact that is not ends the sequence
// with its error, so every backend refuses the same input the same way.
func Checked(facts iter.Seq2[Fact, error]) iter.Seq2[Fact, error] {
	return func(yield func(Fact, error) bool) {
		var prev Fact
		for f, err := range facts {
			if err == nil {
				if verr := f.Validate(); verr != nil {
					err = fmt.Errorf("fact seq %d: %w", f.Seq, verr)
				} else {
					err = ImportOrder(prev, f)
				}
			}
			if err != nil {
				yield(Fact{}, err)
				return
			}
			prev = f
			if !yield(f, nil) {
				return
			}
		}
	}
}

// DuplicateIDError is what an import reports for a fact whose id an
// earlier fact of the same import has.
type DuplicateIDError struct {
	ID  string
	Seq uint64 // the seq of the later fact
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("fact seq %d: id %s appears twice", e.Seq, e.ID)
}
