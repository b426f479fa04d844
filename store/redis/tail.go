package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// Tail loop settings. The block time only bounds how long one XREAD waits
// when nothing happens; Close interrupts it by closing the connection.
//
// A backlog (facts committed by other instances while this one could not
// reach Redis) is reported in batches of tailBatch with a tailPace pause
// between full batches. Listeners queue what they are given in bounded
// buffers (a subscriber that falls client_buffer events behind is dropped
// as too slow); handing them a whole backlog at once would drop every
// subscriber of the instance right after an outage, although none of them
// is slow. At 100 facts per millisecond a backlog still drains far faster
// than facts are published.
const (
	tailBlock      = 5 * time.Second // also how often an idle loop checks the epoch
	tailBatch      = 100
	tailPace       = time.Millisecond
	tailMinBackoff = 50 * time.Millisecond
	tailMaxBackoff = time.Second
)

// position is where a tail loop stands: the epoch of the stream it reads,
// the last seq it reported and the last entry of the deletions stream it
// read.
type position struct {
	epoch string
	last  uint64
	del   string
}

// head reads the stream's epoch and last seq, as of one moment, with the
// seqs seen so far as the floor (see floorLua): a head behind them is a
// loss, which the script marks with a new epoch.
func (r *Store) head(ctx context.Context) (position, error) {
	keys := []string{r.keys.stream, r.keys.ids, r.keys.epoch, r.keys.deletions}
	reply, err := r.scripts.head.Run(ctx, r.rdb, keys, r.seen.Load()).StringSlice()
	if err != nil {
		return position{}, r.wrap("read head", err)
	}
	if len(reply) != 3 {
		return position{}, fmt.Errorf("read head: unexpected script reply %q", reply)
	}
	last, err := seqOf(reply[1])
	if err != nil {
		return position{}, fmt.Errorf("read head: %w", err)
	}
	r.note(last)
	return position{epoch: reply[0], last: last, del: reply[2]}, nil
}

// tail reports every fact after pos to onAppend, in seq order, exactly
// once. It is the only caller of onAppend and onReset, so calls never
// overlap. On an error (Redis down, restarting, loading its AOF) it waits
// with a bounded backoff and reads again from the last seq it reported, so
// an outage leaves no gap. When known is false, Redis has not answered
// yet: it first waits for the head, then lets the store serve.
//
// A fact of another epoch, or a new epoch found while idle, means Redis
// lost facts this loop reported (a restart without persistence, or an
// older copy of its data: the head script gives a stream behind the seqs
// seen a new epoch). It then calls onReset and goes on from the head it
// found, which is never below the last seq it reported: the seqs after a
// loss go on above every seq the instances had seen. It ends when the
// store closes.
func (r *Store) tail(pos position, known bool) {
	defer close(r.tailDone)
	if !known {
		var ok bool
		if pos, ok = r.awaitHead(); !ok {
			return
		}
		close(r.started)
	}
	backoff := tailMinBackoff
	for r.ctx.Err() == nil {
		streams, err := r.tailRdb.XRead(r.ctx, &goredis.XReadArgs{
			Streams: []string{r.keys.stream, r.keys.deletions, streamID(pos.last), pos.del},
			Count:   tailBatch,
			Block:   r.tailBlock,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			// Nothing new within tailBlock. A Redis that lost its data
			// may hand out seqs up to ours again without a word; the
			// epoch tells.
			err = r.checkEpoch(&pos)
			if err == nil {
				continue
			}
		}
		var facts []store.Fact
		var dels []goredis.XMessage
		stale := false
		if err == nil {
			facts, dels, stale, err = r.tailFacts(streams, pos.epoch)
		}
		if err != nil {
			if !r.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, tailMaxBackoff)
			continue
		}
		backoff = tailMinBackoff
		if len(facts) > 0 {
			r.onAppend(facts)
			pos.last = facts[len(facts)-1].Seq
			r.note(pos.last)
		}
		// A deletion comes after the facts read with it: a fact deleted
		// before this read is not among them, so no stream gets a fact
		// after the deletion of it.
		if len(dels) > 0 && !stale {
			if r.opts.OnDelete != nil {
				for _, f := range deletionsOf(dels, pos.epoch) {
					r.opts.OnDelete(f)
				}
			}
			pos.del = dels[len(dels)-1].ID
		}
		if stale {
			pos.epoch = "" // no head has it: the reset happens whatever the key says
			if err := r.checkEpoch(&pos); err != nil && !r.sleep(backoff) {
				return
			}
			continue
		}
		// A full batch means more is waiting: let listeners drain first.
		if len(facts) == tailBatch && !r.sleep(tailPace) {
			return
		}
	}
}

// checkEpoch reads the head and, when its epoch is not pos's, reports the
// reset and moves pos to that head. A stream behind pos (a Redis back from
// an older copy of its data, which kept the epoch) gets a new epoch too:
// the head script raises it to the seqs seen, pos among them.
func (r *Store) checkEpoch(pos *position) error {
	ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
	head, err := r.head(ctx)
	cancel()
	if err != nil {
		return err
	}
	if head.epoch != pos.epoch {
		if r.onReset != nil {
			r.onReset()
		}
		*pos = head
	}
	return nil
}

// awaitHead reads the head, retrying with the tail's backoff until Redis
// answers; false if the store closed first.
func (r *Store) awaitHead() (position, bool) {
	backoff := tailMinBackoff
	for {
		ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
		pos, err := r.head(ctx)
		cancel()
		if err == nil {
			return pos, true
		}
		if !r.sleep(backoff) {
			return position{}, false
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

// tailFacts decodes what XREAD returned: the facts, up to the first entry
// of another epoch than the one given (stale is then true), and the
// entries of the deletions stream. Entries written before epochs existed
// carry none and are taken as they are.
func (r *Store) tailFacts(streams []goredis.XStream, epoch string) (facts []store.Fact, dels []goredis.XMessage, stale bool, err error) {
	for _, s := range streams {
		if s.Stream == r.keys.deletions {
			dels = append(dels, s.Messages...)
			continue
		}
		for _, m := range s.Messages {
			if e, ok := m.Values["epoch"].(string); ok && e != epoch {
				return facts, dels, true, nil
			}
			f, err := decodeEntry(m)
			if err != nil {
				return nil, nil, false, err
			}
			facts = append(facts, f)
		}
	}
	return facts, dels, false, nil
}

// sleep waits for d and reports false if the store closed meanwhile.
func (r *Store) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}
