package store

import "time"

// IdempotencyRecord remembers what an idempotent append committed, for the
// backends to store under the key. The facts of one append have contiguous
// seqs, so a range is enough to replay them.
type IdempotencyRecord struct {
	Hash  [32]byte  `json:"hash"`
	First uint64    `json:"first"`
	Last  uint64    `json:"last"`
	Batch bool      `json:"batch"`
	At    time.Time `json:"at"`
}

// Expired reports whether the record is older than IdempotencyTTL at now.
func (r IdempotencyRecord) Expired(now time.Time) bool {
	return now.Sub(r.At) >= IdempotencyTTL
}

// ReplayOf decides whether req replays an earlier append recorded as rec
// (found reports whether a record exists for its key). The same key with
// another body is ErrIdempotencyMismatch.
func ReplayOf(req AppendRequest, rec IdempotencyRecord, found bool, now time.Time) (bool, error) {
	if req.Idem == nil || !found || rec.Expired(now) {
		return false, nil
	}
	if rec.Hash != req.Idem.Hash {
		return false, ErrIdempotencyMismatch
	}
	return true, nil
}

// NewFacts builds the facts of req, with new ids, seqs starting right after
// last and created_at now.
func NewFacts(req AppendRequest, last uint64, now time.Time) ([]Fact, error) {
	facts := make([]Fact, len(req.Drafts))
	for i, d := range req.Drafts {
		f, err := newFact(last+uint64(i)+1, d, now)
		if err != nil {
			return nil, err
		}
		facts[i] = f
	}
	return facts, nil
}

// NewIdempotencyRecord is the record of req committing facts (at least one)
// at now. req.Idem must be set.
func NewIdempotencyRecord(req AppendRequest, facts []Fact, now time.Time) IdempotencyRecord {
	return IdempotencyRecord{
		Hash:  req.Idem.Hash,
		First: facts[0].Seq,
		Last:  facts[len(facts)-1].Seq,
		Batch: req.Batch,
		At:    now,
	}
}
