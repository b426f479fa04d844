package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"factstream/store"
)

// Bounds of group commit. A group holds at most maxGroup requests and,
// unless its first request alone is larger, maxGroupBytes of facts: the
// script holds Redis's only thread while it runs, so a call must stay
// short for every other client of that Redis. A request larger than
// maxRequestBytes is refused: it would hold Redis for tens of
// milliseconds on its own, and no request the HTTP layer accepts with its
// default bounds comes near it. Four calls in flight let the next group
// leave while others wait for Redis' fsync: Redis takes the calls that
// reach it together in one turn of its loop, under one fsync, so a call
// sent early shares an fsync instead of waiting for one of its own
// (measured against two with bench/run.sh cluster, appendfsync always;
// BenchmarkAppend, with no HTTP, does the same either way).
const (
	maxGroup        = 512
	callsInFlight   = 4
	maxGroupBytes   = 1 << 20
	maxRequestBytes = 16 << 20
	// factOverhead is what one fact adds to a call besides its fields:
	// the field names and the lengths of the arguments.
	factOverhead = 64
)

// pending is one append waiting for the writer. The writer sets err, or
// replay, or the seqs of facts, then closes ok.
type pending struct {
	req      store.AppendRequest
	facts    []store.Fact // ids and created_at made by Append, seqs by the writer
	size     int          // bytes the request adds to a call
	deadline time.Time    // when its caller gives up on it
	replay   *replayOf
	err      error
	ok       chan struct{}
}

// replayOf is where an earlier append with the same idempotency key
// committed its facts.
type replayOf struct {
	first, last uint64
	batch       bool
}

func requestSize(facts []store.Fact) int {
	n := 0
	for _, f := range facts {
		n += len(f.ID) + len(f.Info) + len(f.Source) + len(store.TimeLayout) + factOverhead
	}
	return n
}

// writer gathers the appends waiting when a call can be sent into that
// call, so concurrent publishes share round trips and fsyncs. At most
// callsInFlight calls are in flight at once: while they wait for Redis
// (for its fsync, with appendfsync always), the next group gathers, and
// Redis takes the calls that reach it together in one turn of its loop,
// under one fsync. Seqs are assigned by Redis as it runs each call, so
// they follow the order of commits whichever call gets there first.
//
// It is the only goroutine that sends appends to Redis, and it ends when
// the store closes, after Close has waited for every append in flight,
// once its calls have returned.
func (r *Store) writer() {
	slots := make(chan struct{}, callsInFlight)
	var calls sync.WaitGroup
	defer calls.Wait()
	var carry *pending // the request that did not fit in the last group
	for {
		select {
		case slots <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		first := carry
		if first == nil {
			select {
			case first = <-r.reqs:
			case <-r.ctx.Done():
				return
			}
		}
		if r.holdGroup != nil {
			r.holdGroup()
		}
		var group []*pending
		group, carry = r.gather(first)
		calls.Go(func() {
			defer func() { <-slots }()
			r.commit(group)
		})
	}
}

// gather returns first and the appends already waiting behind it, within
// the group's bounds, and the first request that did not fit, if any. It
// does not yield to let more arrive, as the bbolt store's writer does:
// under HTTP load the handlers' turn on a busy core delayed every call by
// more than the fsync it could have saved, and a call that leaves early
// shares Redis' next fsync with the calls in flight anyway.
func (r *Store) gather(first *pending) (group []*pending, carry *pending) {
	group = []*pending{first}
	size := first.size
	for len(group) < maxGroup {
		select {
		case p := <-r.reqs:
			if size+p.size > maxGroupBytes {
				return group, p
			}
			group = append(group, p)
			size += p.size
		default:
			return group, nil
		}
	}
	return group, nil
}

// commit sends group in one script call and answers each request. A
// request refused before the call (too large, or out of time) fails alone;
// one the script refuses (an idempotency key reused with another body)
// fails alone too, and the others of the call commit with gapless seqs. A
// call that fails fails every request in it, as a lost reply may hide a
// commit: each gets store.ErrUnavailable.
func (r *Store) commit(group []*pending) {
	defer func() {
		for _, p := range group {
			close(p.ok)
		}
	}()
	now := time.Now()
	sent := make([]*pending, 0, len(group))
	deadline := time.Time{}
	for _, p := range group {
		switch {
		case p.size > r.maxRequestBytes:
			p.err = fmt.Errorf("append to redis: %w", &store.TooLargeError{Size: p.size, Max: r.maxRequestBytes})
		case !p.deadline.IsZero() && !now.Before(p.deadline):
			p.err = r.wrap("append: wait for the writer", context.DeadlineExceeded)
		default:
			sent = append(sent, p)
			if !p.deadline.IsZero() && (deadline.IsZero() || p.deadline.Before(deadline)) {
				deadline = p.deadline
			}
		}
	}
	if len(sent) == 0 {
		return
	}
	// The call ends by the earliest deadline of its requests, so that none
	// waits for its answer longer than its caller would.
	ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
	defer cancel()
	if !deadline.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, deadline)
		defer c2()
	}
	keys, args := r.appendArgs(sent)
	reply, err := r.scripts.append.Run(ctx, r.rdb, keys, args...).Slice()
	if err == nil {
		err = applyReplies(sent, reply)
	}
	if err != nil {
		err = r.wrap("append", err)
		if maybeExecuted(err) {
			err = fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)
			// The call may have committed facts that no trim follows.
			r.oweTrim()
		}
		for _, p := range sent {
			p.err, p.replay = err, nil
		}
		return
	}
	for _, p := range sent {
		if p.err == nil && p.replay == nil {
			r.note(p.facts[len(p.facts)-1].Seq)
		}
	}
	r.commits.Add(1)
	r.appends.Add(uint64(len(sent)))
}

// Commits returns the script calls that committed appends since the store
// was opened and the appends they held: their ratio is how many publishes
// shared each round trip (and, with appendfsync always, each fsync).
func (r *Store) Commits() (commits, appends uint64) {
	return r.commits.Load(), r.appends.Load()
}

// appendArgs lays out the keys and arguments of appendLua for reqs.
func (r *Store) appendArgs(reqs []*pending) (keys []string, args []any) {
	keys = []string{r.keys.stream, r.keys.ids, r.keys.epoch}
	n := 3
	for _, p := range reqs {
		n += 4 + 4*len(p.facts)
	}
	args = make([]any, 0, n)
	args = append(args, r.seen.Load(), store.IdempotencyTTL.Milliseconds(), len(reqs))
	for _, p := range reqs {
		key, hash := 0, ""
		if p.req.Idem != nil {
			keys = append(keys, r.keys.idem+p.req.Idem.Key)
			key, hash = len(keys), hex.EncodeToString(p.req.Idem.Hash[:])
		}
		batch := "0"
		if p.req.Batch {
			batch = "1"
		}
		args = append(args, key, hash, batch, len(p.facts))
		for _, f := range p.facts {
			args = append(args, f.ID, f.Info, f.Source, f.CreatedAt.Format(store.TimeLayout))
		}
	}
	return keys, args
}

// applyReplies hands each request its part of the script's reply. An
// error means the reply does not have the script's shape, and then no
// request can be told anything it could trust.
func applyReplies(reqs []*pending, reply []any) error {
	if len(reply) != len(reqs) {
		return fmt.Errorf("%d replies to %d requests", len(reply), len(reqs))
	}
	for i, p := range reqs {
		fields, err := replyStrings(reply[i])
		if err != nil {
			return err
		}
		switch {
		case len(fields) == 2 && fields[0] == "ok":
			first, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return fmt.Errorf("first seq %q: %w", fields[1], err)
			}
			for j := range p.facts {
				p.facts[j].Seq = first + uint64(j)
			}
		case len(fields) == 4 && fields[0] == "replay":
			lo, err1 := strconv.ParseUint(fields[1], 10, 64)
			hi, err2 := strconv.ParseUint(fields[2], 10, 64)
			if err1 != nil || err2 != nil || lo == 0 || hi < lo {
				return fmt.Errorf("idempotency record names seqs %q..%q", fields[1], fields[2])
			}
			p.replay = &replayOf{first: lo, last: hi, batch: fields[3] == "1"}
		case len(fields) == 1 && fields[0] == "mismatch":
			p.err = store.ErrIdempotencyMismatch
		default:
			return fmt.Errorf("unexpected script reply %q", fields)
		}
	}
	return nil
}

func replyStrings(v any) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("script reply %v is not a list", v)
	}
	out := make([]string, len(items))
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("script reply %v holds a %T", v, item)
		}
		out[i] = s
	}
	return out, nil
}
