package store

import "time"

// idemRecord remembers what an idempotent append committed. The facts of one
// append have contiguous seqs, so a range is enough to replay them.
type idemRecord struct {
	Hash  [32]byte  `json:"hash"`
	First uint64    `json:"first"`
	Last  uint64    `json:"last"`
	Batch bool      `json:"batch"`
	At    time.Time `json:"at"`
}

func (r idemRecord) expired(now time.Time) bool {
	return now.Sub(r.At) >= IdempotencyTTL
}

// replayOf decides whether req replays an earlier append recorded as rec
// (found reports whether a record exists for its key).
func replayOf(req AppendRequest, rec idemRecord, found bool, now time.Time) (bool, error) {
	if req.Idem == nil || !found || rec.expired(now) {
		return false, nil
	}
	if rec.Hash != req.Idem.Hash {
		return false, ErrIdempotencyMismatch
	}
	return true, nil
}

// newFacts builds the facts of req starting right after last.
func newFacts(req AppendRequest, last uint64, now time.Time) ([]Fact, error) {
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

func recordOf(req AppendRequest, facts []Fact, now time.Time) idemRecord {
	return idemRecord{
		Hash:  req.Idem.Hash,
		First: facts[0].Seq,
		Last:  facts[len(facts)-1].Seq,
		Batch: req.Batch,
		At:    now,
	}
}
