package handlers

import (
	"context"

	"factstream/sse"
	"factstream/store"
)

// Bounds of one array event of a snapshot or a catch-up: however many facts
// a client has to load, the server holds about one array of them at a
// time, read from the store as the client takes the one before.
const (
	arrayMaxFacts = 1000
	// arrayMaxBytes bounds an array's data; a single fact larger than
	// that goes alone.
	arrayMaxBytes = 256 << 10
	// firstPage is how many facts the first read of a range asks for,
	// before their size is known.
	firstPage = 64
)

// sendRange writes the facts after the cursor up to upTo as array events
// of at most arrayMaxFacts facts and arrayMaxBytes of data, each with the
// id of its last fact, except the last, whose id is upTo: facts missing at
// the end of the range (deleted) are covered by it. It starts with page, a
// first page already read (last: no more facts are kept up to upTo after
// it), then reads the store a page at a time, sized from the facts read so
// far so that a page holds about one array.
func (s *stream) sendRange(ctx context.Context, page []store.Fact, last bool, upTo uint64) error {
	limit := firstPage
	for s.cur.Last < upTo {
		if len(page) == 0 {
			if last {
				return s.array(nil, upTo)
			}
			var err error
			if page, err = s.facts.Range(ctx, s.cur.Last, upTo, limit); err != nil {
				return err
			}
			last = len(page) < limit
			continue
		}
		n, size := s.encodeArray(page)
		id := page[n-1].Seq
		if n == len(page) && last {
			id = upTo
		}
		if err := s.writeArray(id); err != nil {
			return err
		}
		clear(page[:n]) // let the facts sent go
		page = page[n:]
		if per := size / n; per > 0 {
			limit = max(1, min(arrayMaxFacts, arrayMaxBytes/per))
		}
	}
	return nil
}

// encodeArray encodes the first facts of page that fit in one array into
// s.data, and returns how many and the bytes they took.
func (s *stream) encodeArray(page []store.Fact) (n, size int) {
	s.data = append(s.data[:0], '[')
	for i, f := range page {
		if i == arrayMaxFacts {
			break
		}
		mark := len(s.data)
		if i > 0 {
			s.data = append(s.data, ',')
		}
		s.data = f.AppendJSON(s.data)
		if i > 0 && len(s.data)+1 > arrayMaxBytes {
			s.data = s.data[:mark]
			break
		}
		n = i + 1
	}
	size = len(s.data) - 1
	s.data = append(s.data, ']')
	return n, size
}

// writeArray writes s.data as one event with id, after whatever s.buf
// already holds (the retry line), under one write deadline.
func (s *stream) writeArray(id uint64) error {
	s.buf = sse.AppendEvent(s.buf, "", id, func(dst []byte) []byte { return append(dst, s.data...) })
	s.cur.Cover(id)
	s.sent++
	err := s.flush(s.buf)
	if cap(s.data) > 2*arrayMaxBytes {
		s.data = nil // a single huge fact: do not keep its buffer
	}
	if cap(s.buf) > 2*arrayMaxBytes {
		s.buf = nil
	}
	return err
}
