package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
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
	tailBlock      = 5 * time.Second
	tailBatch      = 100
	tailPace       = time.Millisecond
	tailMinBackoff = 50 * time.Millisecond
	tailMaxBackoff = time.Second
)

// tail reports every fact after seq last to onAppend, in seq order, exactly
// once. It is the only caller of onAppend, so calls never overlap. On an
// error (Redis down, restarting, loading its AOF) it waits with a bounded
// backoff and reads again from the last seq it reported, so an outage leaves
// no gap. When known is false, Redis has not answered yet: it first waits
// for the head, then lets the store serve. It ends when the store closes.
func (r *Redis) tail(last uint64, known bool) {
	defer close(r.tailDone)
	if !known {
		var ok bool
		if last, ok = r.awaitHead(); !ok {
			return
		}
		close(r.started)
	}
	backoff := tailMinBackoff
	for r.ctx.Err() == nil {
		streams, err := r.tailRdb.XRead(r.ctx, &redis.XReadArgs{
			Streams: []string{r.keys.stream, streamID(last)},
			Count:   tailBatch,
			Block:   tailBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within tailBlock
		}
		var facts []Fact
		if err == nil {
			facts, err = tailFacts(streams)
		}
		if err != nil {
			if !r.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, tailMaxBackoff)
			continue
		}
		backoff = tailMinBackoff
		if len(facts) == 0 {
			continue
		}
		r.onAppend(facts)
		last = facts[len(facts)-1].Seq
		// A full batch means more is waiting: let listeners drain first.
		if len(facts) == tailBatch && !r.sleep(tailPace) {
			return
		}
	}
}

// awaitHead reads the last seq, retrying with the tail's backoff until
// Redis answers; false if the store closed first.
func (r *Redis) awaitHead() (uint64, bool) {
	backoff := tailMinBackoff
	for {
		ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
		st, err := r.stats(ctx)
		cancel()
		if err == nil {
			return st.LastSeq, true
		}
		if !r.sleep(backoff) {
			return 0, false
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

func tailFacts(streams []redis.XStream) ([]Fact, error) {
	var facts []Fact
	for _, s := range streams {
		fs, err := decodeEntries(s.Messages)
		if err != nil {
			return nil, err
		}
		facts = append(facts, fs...)
	}
	return facts, nil
}

// sleep waits for d and reports false if the store closed meanwhile.
func (r *Redis) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}
